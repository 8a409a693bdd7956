"""Helpers for the CSM tests: clip files and collecting a job's audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

RATE = 24_000


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
