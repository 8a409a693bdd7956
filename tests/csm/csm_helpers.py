"""Helpers for the CSM tests: clip files and collecting a job's audio."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sesame_voice.api.types import ContextSegment, ProviderJob, SynthesisRequest, Voice

RATE = 24_000
FAST_BUDGET = {"frame_budget_base_ms": 160, "frame_budget_per_char_ms": 8}
"""Per-group budgets small enough that random weights (which never say EOS) stop quickly."""


def require(module: str, distribution: str, extra: str):
    """``module``, imported; the suite is skipped only when ``distribution`` is not installed at all.

    Installed but not importable (a broken install, a missing native library) fails the suite instead
    of turning it into skips: this is how CI learns that mlx (``mlx[cpu]`` on Linux) or torch broke.
    """
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{distribution} is not installed (pip install 'sesame-voice[{extra}]')", allow_module_level=True)
    return importlib.import_module(module)


def job(
    sentences=("Hello there.",), context: list[ContextSegment] | None = None, max_ms: int | None = None, **params
) -> ProviderJob:
    """A CSM provider job for ``sentences`` with voice ``params``."""
    sentences = list(sentences)
    request = SynthesisRequest(text=" ".join(sentences), context=list(context or []), max_audio_length_ms=max_ms)
    return ProviderJob(sentences=sentences, voice=Voice(name="test", provider="csm"), params=params, request=request)


def write_clip(path: Path, seconds: float = 1.2, seed: int = 0, transcript: str | None = "a short test clip") -> Path:
    """A noisy tone (distinct content per seed) as a 24 kHz wav, with its transcript next to it."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(int(RATE * seconds)) / RATE
    samples = 0.3 * np.sin(2 * np.pi * (180 + 20 * seed) * t) + 0.05 * rng.standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples.astype(np.float32), RATE)
    if transcript is not None:
        path.with_suffix(".txt").write_text(transcript)
    return path


def collect(provider, job) -> np.ndarray:
    """All audio of a job, concatenated."""
    chunks = list(provider.synthesize(job))
    return np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)


def started(provider, job):
    """(audio chunks, this job's stats) of ``job`` generated as ``synthesize`` generates it (without waiting
    for admission: for one test thread); the stats fill while the chunks are read."""
    generation = provider.start(job)
    return provider.chunks(generation, job), generation.stats


def run(provider, job):
    """(all audio of ``job``, its stats)."""
    chunks, stats = started(provider, job)
    chunks = list(chunks)
    return (np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)), stats


def load_without(modules: list[str], cache_dir: Path, backend: str, model_id: Path, **plugin) -> str:
    """stdout of a fresh interpreter that hides ``modules``, then loads the csm provider on ``backend``."""
    plugin = {"backend": backend, "model_id": str(model_id), **plugin}
    hidden = "; ".join(f"sys.modules[{name!r}] = None" for name in modules)
    code = (
        f"import sys\n{hidden}\n"
        "from sesame_voice.config import Settings\n"
        "from sesame_voice import ProviderUnavailable\n"
        "import sesame_voice_csm\n"
        f"p = sesame_voice_csm.CsmProvider(Settings(cache_dir={str(cache_dir)!r}, plugins={{'csm': {plugin!r}}}))\n"
        "try:\n"
        "    p.ensure_loaded()\n"
        "except ProviderUnavailable as err:\n"
        "    print('UNAVAILABLE', err)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "UNAVAILABLE" in result.stdout, result.stderr
    return result.stdout


async def loaded_csm(server):
    """The server's CSM provider once its start-up load has ended (the engine serves a still-loading
    CSM voice from its fallback, so a test that wants CSM's own audio waits for it)."""
    import asyncio

    provider = server.engine.workers["csm"].provider
    for _ in range(600):
        if provider.state in ("ready", "failed"):
            break
        await asyncio.sleep(0.1)
    return provider
