"""Float32 audio from the engine → 16-bit PCM in one fixed format per answer."""

from __future__ import annotations

import numpy as np

from sesame_voice.audio import StreamResampler, to_pcm16

WIDTH = 2
"""Bytes per sample: 16-bit PCM, what Home Assistant and every satellite expect."""
CHANNELS = 1


class PcmConverter:
    """Keeps one output rate (the first chunk's) for a whole answer, resampling later chunks.

    Home Assistant builds one WAV from the first ``audio-start``, so a later sentence served at a
    different rate (a fallback provider, another voice) must be resampled, never re-announced.
    """

    def __init__(self) -> None:
        self.rate: int | None = None
        self._resampler: StreamResampler | None = None

    def convert(self, samples: np.ndarray, sample_rate: int) -> bytes:
        """PCM bytes at ``self.rate`` (fixed by the first call)."""
        if self.rate is None:
            self.rate = int(sample_rate)
        tail = b""
        if sample_rate == self.rate:
            if self._resampler is not None:
                tail = self.flush()
            return tail + to_pcm16(samples)
        if self._resampler is None or self._resampler.in_rate != sample_rate:
            tail = self.flush()
            self._resampler = StreamResampler(sample_rate, self.rate)
        return tail + to_pcm16(self._resampler.process(samples))

    def flush(self) -> bytes:
        """The resampler's delayed tail, if one is running."""
        resampler, self._resampler = self._resampler, None
        return to_pcm16(resampler.flush()) if resampler is not None else b""
