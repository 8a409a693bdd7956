"""Decoding any of the six response formats back to float samples (tests, voice clips, CLI)."""

from __future__ import annotations

import io

import av
import numpy as np

from .formats import PCM_SAMPLE_RATE, check_format
from .pcm import from_pcm16


def decode_audio(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    """Decode bytes of one of the six formats to float32 mono and its sample rate.

    ``pcm`` is taken as 16-bit little-endian mono at 24 kHz; the rest is decoded by PyAV,
    which also reads streamed files whose header carries no length. Channels are averaged.
    """
    check_format(fmt)
    if fmt == "pcm":
        return from_pcm16(data), PCM_SAMPLE_RATE
    resampler = av.AudioResampler(format="fltp")  # keep rate and channels; planar float
    parts: list[np.ndarray] = []
    rate = 0
    with av.open(io.BytesIO(data), mode="r") as container:
        if not container.streams.audio:
            raise ValueError(f"no audio stream in the {fmt} data")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate or 0
        frames = list(container.decode(stream)) + [None]
        for frame in frames:
            for out in resampler.resample(frame):
                rate = out.sample_rate
                parts.append(out.to_ndarray().mean(axis=0))
    samples = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    return samples, int(rate)
