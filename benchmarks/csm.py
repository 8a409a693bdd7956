"""CSM provider vs stock mlx-audio generation, same machine, same random-weight model, same run.

Builds a CSM of the chosen size with random weights (speed does not depend on the values) in the
real checkpoint formats, a 10-second voice clip, then measures for the provider and for stock
``Model.generate(ref_audio=…, stream=True)``: time to first audio with that clone (the provider's
second use of it: prompt tokens and KV cache reused), milliseconds per 80 ms frame in steady state
(generation + Mimi decoding, between first and last chunk), and the real-time factor.

    python benchmarks/csm.py --size small          # minutes on 2 CPU cores
    python benchmarks/csm.py --size full --frames 12   # CSM-1B architecture (Llama-1B + 100M decoder)

On Linux, mlx[cpu] ships a reference BLAS; ``LD_PRELOAD=libopenblas.so.0`` makes every matmul ~8x faster.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FRAME_SECONDS = 0.08


def _clip(folder: Path, seconds: float) -> Path:
    import soundfile as sf

    rate = 24_000
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(0)
    audio = 0.25 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.03 * rng.standard_normal(len(t))
    path = folder / "clone.wav"
    sf.write(str(path), audio.astype(np.float32), rate)
    path.with_suffix(".txt").write_text("This is the transcript of a ten second voice clip used for cloning.")
    return path


def run_provider(settings, clip: Path, text: str, frames: int, runs: int, quiet: bool) -> dict:
    from sesame_voice.types import ProviderJob, SynthesisRequest, Voice

    from sesame_voice_csm import CsmProvider

    provider = CsmProvider(settings)  # noqa: F841 - dropped when this function returns
    started = time.perf_counter()
    provider.ensure_loaded()
    load = time.perf_counter() - started
    params = {"prompt_audio": str(clip), "prompt_text": clip.with_suffix(".txt").read_text(), "seed": 0}
    results = []
    for index in range(runs + 1):  # the first use encodes the clip and fills the prompt cache
        request = SynthesisRequest(text=text, max_audio_length_ms=int(frames * FRAME_SECONDS * 1000))
        job = ProviderJob(sentences=[text], voice=Voice(name="clone", provider="csm"), params=params, request=request)
        begin = time.perf_counter()
        arrivals, samples = [], 0
        for chunk in provider.synthesize(job):
            arrivals.append((time.perf_counter() - begin, samples // 1920))
            samples += len(chunk.samples)
        total = time.perf_counter() - begin
        results.append(_summary(arrivals, samples // 1920, total, cold=index == 0))
        stats = provider.generator.stats
        results[-1].update(model_ms=round(1000 * stats.frame_seconds / max(stats.frames, 1), 1),
                           decode_ms=round(1000 * stats.decode_seconds / max(stats.frames, 1), 1))
        if not quiet:
            print(f"  provider run {index} ({'cold clone' if index == 0 else 'warm clone'}): {results[-1]}")
    return {"load": load, "cold": results[0], "warm": _mean(results[1:])}


def run_stock(model_dir: Path, mimi_file: Path, clip: Path, text: str, frames: int, runs: int, quiet: bool) -> dict:
    import mlx.core as mx
    from mlx_audio.lm.sample_utils import make_sampler
    from mlx_audio.tts.utils import load_model

    from sesame_voice_csm.loading import _sources, load_mimi, load_tokenizer

    started = time.perf_counter()
    with _sources(load_tokenizer(model_dir, True), load_mimi(mimi_file)):  # stock would fetch these from the hub
        model = load_model(model_dir, strict=True)
    load = time.perf_counter() - started
    ref_text = clip.with_suffix(".txt").read_text()
    results = []
    for index in range(runs + 1):
        mx.random.seed(0)
        begin = time.perf_counter()
        arrivals, produced = [], 0
        for result in model.generate(text=text, ref_audio=str(clip), ref_text=ref_text, stream=True,
                                     streaming_interval=0.5, max_audio_length_ms=frames * FRAME_SECONDS * 1000,
                                     sampler=make_sampler(temp=0.9, top_k=50), verbose=False):
            if result.samples:
                arrivals.append((time.perf_counter() - begin, produced))
                produced += result.samples // 1920
        total = time.perf_counter() - begin
        results.append(_summary(arrivals, produced, total, cold=index == 0))
        if not quiet:
            print(f"  stock run {index}: {results[-1]}")
    return {"load": load, "cold": results[0], "warm": _mean(results[1:])}


def _summary(arrivals: list[tuple[float, int]], frames: int, total: float, cold: bool) -> dict:
    first_time, first_frames = arrivals[0][0], arrivals[1][1] if len(arrivals) > 1 else frames
    last_time = arrivals[-1][0]
    steady_frames = frames - first_frames  # generated between the first and the last chunk
    steady = (last_time - first_time) / steady_frames if steady_frames > 0 else float("nan")
    audio = frames * FRAME_SECONDS
    return {"ttfa_s": round(first_time, 3), "ms_per_frame": round(1000 * steady, 1),
            "rtf": round(total / audio, 2) if audio else float("nan"), "frames": frames, "chunks": len(arrivals)}


def _mean(items: list[dict]) -> dict:
    return {key: round(statistics.fmean(item[key] for item in items), 3) for key in items[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "small", "full"), default="small")
    parser.add_argument("--frames", type=int, default=24, help="80 ms frames generated per run (no EOS: random weights)")
    parser.add_argument("--runs", type=int, default=2, help="timed runs after the first (cold) one")
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--workdir", type=Path, help="keep/reuse the random checkpoint here")
    parser.add_argument("--compile", action="store_true", help="provider: mx.compile the depth decoder")
    parser.add_argument("--quantize", type=int, choices=(4, 8), help="provider: quantise backbone/decoder weights")
    parser.add_argument("--first-chunk-frames", type=int, default=2)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from sesame_voice.config import Settings
    work = args.workdir or Path(tempfile.mkdtemp(prefix="csm-bench-"))
    model_dir, mimi_file = work / "model", work / "mimi" / "tokenizer-e351c8d8-checkpoint125.safetensors"
    if not (model_dir / "model.safetensors").is_file() or not mimi_file.is_file():
        print(f"writing a random {args.size} CSM checkpoint into {work} …", flush=True)
        import subprocess  # in a child process, so the weights it built do not stay in this one's memory

        code = f"from sesame_voice_csm.testing import write_checkpoint; write_checkpoint({str(work)!r}, {args.size!r})"
        subprocess.run([sys.executable, "-c", code], check=True)
    clip = _clip(work, args.clip_seconds)
    text = "Hello, this is a benchmark of streaming speech with a cloned voice."
    budget_ms = int(args.frames * FRAME_SECONDS * 1000)
    settings = Settings(model_id=str(model_dir), cache_dir=work / "cache", voices_dir=work,
                        plugins={"csm": {"mimi": str(mimi_file), "compile": args.compile,
                                         "quantize_bits": args.quantize, "first_chunk_frames": args.first_chunk_frames,
                                         "chunk_frames": 6, "frame_budget_base_ms": budget_ms}})
    import shutil

    shutil.rmtree(work / "cache", ignore_errors=True)
    print(f"size={args.size} frames={args.frames} clip={args.clip_seconds:.0f}s runs={args.runs}", flush=True)
    provider = run_provider(settings, clip, text, args.frames, args.runs, args.quiet)
    import gc

    import mlx.core as mx

    gc.collect()
    mx.clear_cache()
    stock = run_stock(model_dir, mimi_file, clip, text, args.frames, args.runs, args.quiet)
    p, s = provider["warm"], stock["warm"]
    print()
    print(f"{'':28s}{'provider':>12s}{'stock':>12s}{'ratio':>10s}")
    rows = [("time to first audio (s)", p["ttfa_s"], s["ttfa_s"]),
            ("ms per 80 ms frame", p["ms_per_frame"], s["ms_per_frame"]),
            ("real-time factor", p["rtf"], s["rtf"])]
    for label, mine, theirs in rows:
        print(f"{label:28s}{mine:12.3f}{theirs:12.3f}{mine / theirs:10.2f}")
    print(f"{'first use of the clone: TTFA':28s}{provider['cold']['ttfa_s']:12.3f}{stock['cold']['ttfa_s']:12.3f}")
    print(f"{'load (s)':28s}{provider['load']:12.1f}{stock['load']:12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
