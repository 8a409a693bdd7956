"""CSM provider vs stock mlx-audio generation, like for like: same machine, model, clips, text and chunk size.

Builds a CSM of the chosen size with random weights (speed does not depend on the values) in the
real checkpoint format. Both sides speak the same text with a voice clip, streaming chunks of the
same number of 80 ms frames, ``--frames`` frames per request:

* cold: the first request with a clip never seen before (each run gets its own new clip);
* warm: the same clip again right after.

Per request it measures the time to first audio, model and codec (Mimi decoding) milliseconds per
frame, and the real-time factor; the table shows mean ± standard deviation over ``--runs`` runs.
One untimed request per side warms each process up first (MLX's first-use allocations).

    python benchmarks/csm.py --size small            # minutes on 2 CPU cores
    python benchmarks/csm.py --size full --frames 12 # CSM-1B architecture (Llama-1B + 100M decoder)

On Linux, mlx[cpu] ships a reference BLAS; ``LD_PRELOAD=libopenblas.so.0`` makes every matmul ~8x faster.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

FRAME_SECONDS = 0.08
SAMPLES_PER_FRAME = 1920
TEXT = "Hello, this is a benchmark of streaming speech with a cloned voice."
TRANSCRIPT = "This is the transcript of a ten second voice clip used for cloning."


def write_clip(folder: Path, seconds: float, index: int) -> Path:
    """A voice-like test clip; each index gives different content (a new clip to both sides)."""
    import soundfile as sf

    rate = 24_000
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(index)
    pitch = 120 + 10 * index
    audio = 0.25 * np.sin(2 * np.pi * pitch * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.03 * rng.standard_normal(len(t))
    path = folder / f"clip-{index}.wav"
    sf.write(str(path), audio.astype(np.float32), rate)
    return path


class Timers:
    """Per-call wall times of the model's frame step and the codec's decode, instrumented the same on both sides."""

    def __init__(self) -> None:
        self.model: list[float] = []
        self.codec: list[float] = []

    def wrap(self, name: str, function):
        import mlx.core as mx

        calls = getattr(self, name)

        def run(*args, **kwargs):
            tick = time.perf_counter()
            result = function(*args, **kwargs)
            mx.eval(result)
            calls.append(time.perf_counter() - tick)
            return result

        return run


def measure(produce, timers: Timers) -> dict:
    """Run one request (``produce`` yields sample counts) and time it.

    ``model_ms``: mean frame step from the second frame on (the first one also runs the prompt's
    prefill, which is in the time to first audio); ``codec_ms``: Mimi decoding per frame.
    """
    timers.model.clear()
    timers.codec.clear()
    begin = time.perf_counter()
    first, samples = None, 0
    for count in produce():
        if first is None and count:
            first = time.perf_counter() - begin
        samples += count
    total = time.perf_counter() - begin
    frames = max(samples // SAMPLES_PER_FRAME, 1)
    steady = timers.model[1:] or timers.model
    return {
        "ttfa_s": first or float("nan"),
        "model_ms": 1000 * statistics.fmean(steady),
        "codec_ms": 1000 * sum(timers.codec) / frames,
        "rtf": total / (frames * FRAME_SECONDS),
        "frames": frames,
    }


def provider_side(settings, frames: int, chunk: int):
    """``request(clip)`` for the sesame-voice provider."""
    from sesame_voice.api.types import ProviderJob, SynthesisRequest, Voice
    from sesame_voice_csm import CsmProvider

    provider = CsmProvider(settings)
    started = time.perf_counter()
    provider.ensure_loaded()
    load = time.perf_counter() - started
    timers, generator = Timers(), provider.backend.generator
    generator.step = timers.wrap("model", generator.step)
    decoder = generator.model.streaming_decoder
    decoder.decode_frames = timers.wrap("codec", decoder.decode_frames)

    def request(clip: Path) -> dict:
        params = {"prompt_audio": str(clip), "prompt_text": TRANSCRIPT, "seed": 0, "first_chunk_frames": chunk}
        job = ProviderJob(
            sentences=[TEXT],
            voice=Voice(name="clone", provider="csm"),
            params=params,
            request=SynthesisRequest(text=TEXT, max_audio_length_ms=int(frames * FRAME_SECONDS * 1000)),
        )

        def produce():
            for audio in provider.synthesize(job):
                yield len(audio.samples)

        return measure(produce, timers)

    return request, load


def stock_side(model_dir: Path, mimi_file: Path, frames: int, chunk: int):
    """``request(clip)`` for stock mlx-audio ``Model.generate(ref_audio=…, stream=True)``."""
    import mlx.core as mx
    from mlx_audio.lm.sample_utils import make_sampler
    from mlx_audio.tts.models.sesame import sesame
    from mlx_audio.tts.utils import load_model

    from sesame_voice_csm.mlx.loading import load_mimi, load_tokenizer

    started = time.perf_counter()
    tokenizer, codec = load_tokenizer(model_dir, True), load_mimi(mimi_file)
    with (
        mock.patch.object(sesame, "load_llama3_tokenizer", lambda *_: tokenizer),
        mock.patch.object(sesame.Mimi, "from_pretrained", lambda *_: codec),
    ):  # stock would fetch these from the hub
        model = load_model(model_dir, strict=True)
    load = time.perf_counter() - started
    timers = Timers()
    model.model.generate_frame = timers.wrap("model", model.model.generate_frame)
    model._streaming_decoder.decode_frames = timers.wrap("codec", model._streaming_decoder.decode_frames)

    def request(clip: Path) -> dict:
        def produce():
            mx.random.seed(0)
            for result in model.generate(
                text=TEXT,
                ref_audio=str(clip),
                ref_text=TRANSCRIPT,
                stream=True,
                streaming_interval=chunk * FRAME_SECONDS + 1e-6,
                voice_match=False,
                max_audio_length_ms=frames * FRAME_SECONDS * 1000,
                sampler=make_sampler(temp=0.9, top_k=50),
                verbose=False,
            ):
                yield int(result.samples)

        with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):  # stock prints a tqdm bar
            return measure(produce, timers)

    return request, load


def run_side(name: str, request, work: Path, first_clip: int, args) -> dict:
    request(write_clip(work, args.clip_seconds, 999 + first_clip))  # untimed warm-up of the process
    cold, warm = [], []
    for run in range(args.runs):
        clip = write_clip(work, args.clip_seconds, first_clip + run)
        cold.append(request(clip))
        warm.append(request(clip))
        if not args.quiet:
            print(f"  {name} run {run}: cold {_short(cold[-1])} | warm {_short(warm[-1])}", flush=True)
    return {"cold": cold, "warm": warm}


def _short(result: dict) -> str:
    return " ".join(f"{k}={v:.3g}" for k, v in result.items())


def _stat(results: list[dict], key: str) -> tuple[float, float]:
    values = [r[key] for r in results]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def print_table(provider: dict, stock: dict, loads: tuple[float, float]) -> None:
    rows = [
        ("time to first audio (s)", "ttfa_s"),
        ("model ms per frame (steady)", "model_ms"),
        ("codec ms per frame", "codec_ms"),
        ("real-time factor", "rtf"),
    ]
    print()
    print(f"| {'':34s} | {'provider':>17s} | {'stock mlx-audio':>17s} | {'ratio':>5s} |")
    print(f"| {'-' * 34} | {'-' * 17:>17s} | {'-' * 17:>17s} | {'-' * 5} |")
    for when in ("cold", "warm"):
        for label, key in rows:
            (pm, ps), (sm, ss) = _stat(provider[when], key), _stat(stock[when], key)
            print(f"| {when + ': ' + label:34s} | {pm:8.3f} ± {ps:6.3f} | {sm:8.3f} ± {ss:6.3f} | {pm / sm:5.2f} |")
    print(f"| {'load (s)':34s} | {loads[0]:17.1f} | {loads[1]:17.1f} | {loads[0] / loads[1]:5.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "small", "full"), default="small")
    parser.add_argument("--frames", type=int, default=24, help="80 ms frames generated per request")
    parser.add_argument("--chunk-frames", type=int, default=6, help="frames per streamed chunk, both sides")
    parser.add_argument("--runs", type=int, default=3, help="timed cold + warm request pairs per side")
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--workdir", type=Path, help="keep/reuse the random checkpoint here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import mlx_audio.tts.models.sesame.sesame  # noqa: F401 - imported before either load is timed
    import transformers  # noqa: F401

    from sesame_voice.config import Settings

    work = args.workdir or Path(tempfile.mkdtemp(prefix="csm-bench-"))
    model_dir, mimi_file = work / "model", work / "mimi" / "tokenizer-e351c8d8-checkpoint125.safetensors"
    if not (model_dir / "model.safetensors").is_file() or not mimi_file.is_file():
        print(f"writing a random {args.size} CSM checkpoint into {work} …", flush=True)
        import subprocess  # in a child process, so the weights it built do not stay in this one's memory

        code = (
            f"from sesame_voice_csm.mlx.testing import write_checkpoint; write_checkpoint({str(work)!r}, {args.size!r})"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
    import shutil

    shutil.rmtree(work / "cache", ignore_errors=True)
    budget_ms = int(args.frames * FRAME_SECONDS * 1000)
    settings = Settings(
        cache_dir=work / "cache",
        voices_dir=work,
        plugins={
            "csm": {
                "model_id": str(model_dir),
                "mimi": str(mimi_file),
                "chunk_frames": args.chunk_frames,
                "frame_budget_base_ms": budget_ms,
                "watermark": False,
            }
        },
    )
    print(
        f"size={args.size} frames={args.frames} chunk={args.chunk_frames} frames (both sides) "
        f"clip={args.clip_seconds:.0f}s runs={args.runs}",
        flush=True,
    )
    request, provider_load = provider_side(settings, args.frames, args.chunk_frames)
    provider = run_side("provider", request, work, 0, args)
    del request
    import gc

    import mlx.core as mx

    gc.collect()
    mx.clear_cache()
    request, stock_load = stock_side(model_dir, mimi_file, args.frames, args.chunk_frames)
    stock = run_side("stock", request, work, 0, args)  # the same clips, in the same order
    print_table(provider, stock, (provider_load, stock_load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
