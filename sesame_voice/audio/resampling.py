"""Chunk-by-chunk resampling (soxr) whose joins are seamless."""

from __future__ import annotations

import numpy as np
import soxr

from .pcm import as_mono


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """A whole mono float32 signal at ``to_rate`` (soxr, high quality); the same array if the rates match."""
    x = np.asarray(samples, dtype=np.float32)
    if int(from_rate) == int(to_rate) or x.size == 0:
        return x
    return np.ascontiguousarray(soxr.resample(x, int(from_rate), int(to_rate), quality="HQ"), dtype=np.float32)


class StreamResampler:
    """Chunk-by-chunk float32 mono resampler over ``soxr.ResampleStream``; joins are seamless."""

    def __init__(self, in_rate: int, out_rate: int):
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        self._stream = (
            None
            if self.in_rate == self.out_rate
            else soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality="HQ")
        )

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Resample the next chunk; the output may lag the input by the filter's delay."""
        x = as_mono(samples)
        if self._stream is None:
            return x
        return np.asarray(self._stream.resample_chunk(x, last=False), dtype=np.float32).reshape(-1)

    def flush(self) -> np.ndarray:
        """Return the delayed tail; call once, after the last ``process``."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        tail = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        return np.asarray(tail, dtype=np.float32).reshape(-1)
