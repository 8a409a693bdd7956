"""Float samples and 16-bit PCM: the one conversion every frontend and encoder shares."""

from __future__ import annotations

import numpy as np

PCM_SCALE = 32767.0
"""Full scale of a float sample written as int16 (so +1.0 and -1.0 map to ±32767)."""


def as_mono(samples: np.ndarray) -> np.ndarray:
    """A float32 1-D copy of ``samples`` with NaN as silence; (n, 1) and (1, n) shapes allowed."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim > 1 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {x.shape}")
    return np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)


def to_pcm16(samples: np.ndarray) -> bytes:
    """Little-endian 16-bit PCM of float samples (NaN silent, clipped to [-1, 1])."""
    x = as_mono(samples)
    return np.clip(np.rint(x * PCM_SCALE), -32768, 32767).astype("<i2").tobytes()


def from_pcm16(data: bytes) -> np.ndarray:
    """Float32 samples of little-endian 16-bit PCM bytes (a trailing odd byte is ignored)."""
    usable = len(data) - len(data) % 2
    return np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
