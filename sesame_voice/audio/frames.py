"""Fixed-size frames of a stream: resample to one rate, cut whole frames, pad the last with silence."""

from __future__ import annotations

import numpy as np

from sesame_voice.api.types import FRAME_SAMPLES

from .resampling import StreamResampler

FRAME_RATE = 24000
"""The rate of the 80 ms frames (``FRAME_SAMPLES`` samples each)."""


class Framer:
    """Resamples audio to ``rate`` and cuts it into whole ``frame_samples`` frames; ``flush`` zero-pads the last.

    By default the 80 ms frames of 1920 samples at 24 kHz (Mimi's frame, the old voice loops' packet).
    """

    def __init__(self, input_rate: int, rate: int = FRAME_RATE, frame_samples: int = FRAME_SAMPLES) -> None:
        self._resampler = StreamResampler(input_rate, rate)
        self._frame = frame_samples
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        """The whole frames now available."""
        return self._cut(self._resampler.process(samples))

    def flush(self) -> list[np.ndarray]:
        """The remaining frames, the last padded with silence."""
        frames = self._cut(self._resampler.flush())
        if len(self._pending):
            frames.append(np.concatenate([self._pending, np.zeros(self._frame - len(self._pending), np.float32)]))
            self._pending = np.zeros(0, dtype=np.float32)
        return frames

    def _cut(self, samples: np.ndarray) -> list[np.ndarray]:
        data = np.concatenate([self._pending, np.clip(samples, -1.0, 1.0).astype(np.float32)])
        whole = len(data) // self._frame * self._frame
        self._pending = data[whole:]
        return [data[i : i + self._frame] for i in range(0, whole, self._frame)]
