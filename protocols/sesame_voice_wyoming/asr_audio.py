"""Wyoming speech-to-text audio: converted off the event loop, and bounded in memory and in number."""

from __future__ import annotations

import numpy as np

from sesame_voice import InvalidRequest

WIDTHS = {1: np.int8, 2: np.dtype("<i2"), 4: np.dtype("<i4")}
"""Sample widths accepted (signed little-endian PCM, as the wyoming package's own converter reads them)."""
HELD_BYTES_PER_SAMPLE = 4
"""An utterance is held as float32 mono."""
INLINE_BYTES = 16384
"""A chunk this small that needs no resampling is converted on the event loop (tens of
microseconds): a thread hand-off per chunk costs more, and a burst of chunks sent faster than real
time (a client replaying a recording) otherwise leaves a queue of hand-offs behind ``audio-stop``."""


def pcm_to_float(audio: bytes, width: int, channels: int) -> np.ndarray:
    """Signed PCM bytes → float32 mono (channels averaged); InvalidRequest for formats it cannot read."""
    if width not in WIDTHS:
        raise InvalidRequest(
            f"sample width {width} is not supported (use 1, 2 or 4 bytes; 2 is usual)",
            param="width",
            code="unsupported_audio_format",
        )
    frame = width * channels
    usable = len(audio) - len(audio) % frame
    samples = np.frombuffer(audio[:usable], dtype=WIDTHS[width]).astype(np.float32)
    samples /= float(2 ** (8 * width - 1))
    return samples.reshape(-1, channels).mean(axis=1) if channels > 1 else samples


def chunk_samples(audio: bytes, width: int, channels: int, rate: int, target_rate: int) -> np.ndarray:
    """One ``audio-chunk``'s payload as float32 mono at ``target_rate`` (run it in a thread)."""
    samples = pcm_to_float(audio, width, channels)
    if rate != target_rate:
        import soxr

        samples = soxr.resample(samples, rate, target_rate).astype(np.float32)
    return samples


def converts_inline(payload_bytes: int, rate: int, target_rate: int) -> bool:
    """Whether a chunk is cheap enough to convert on the event loop (see ``INLINE_BYTES``)."""
    return rate == target_rate and payload_bytes <= INLINE_BYTES


def held_bytes(payload_bytes: int, width: int, channels: int, rate: int, target_rate: int) -> int:
    """Bytes a payload will take once held (float32 mono at ``target_rate``), known before converting it."""
    frames = payload_bytes // (width * channels)
    return int(np.ceil(frames * target_rate / rate)) * HELD_BYTES_PER_SAMPLE


class StreamSlots:
    """How many utterances all connections together may be receiving or transcribing at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def take(self) -> bool:
        """Take a slot; False when all ``limit`` are in use."""
        if self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    def give_back(self) -> None:
        self.in_use = max(0, self.in_use - 1)
