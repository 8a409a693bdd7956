"""Decoding audio to float samples: the six response formats, and any file PyAV reads (uploads)."""

from __future__ import annotations

import io

import av
import numpy as np

from sesame_voice.api.errors import InvalidRequest

from . import uploads
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
    with av.open(io.BytesIO(data), mode="r") as container:
        if not container.streams.audio:
            raise ValueError(f"no audio stream in the {fmt} data")
        return _decode_container(container)


def _decode_container(container, max_seconds: float | None = None, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Every frame of the first audio stream as float32 mono (channels averaged) and its rate.

    With ``rate``, FFmpeg mixes down to mono and resamples while decoding (less memory for long files).
    """
    resampler = av.AudioResampler(format="fltp", layout="mono" if rate else None, rate=rate)
    parts: list[np.ndarray] = []
    stream = container.streams.audio[0]
    rate = rate or stream.codec_context.sample_rate or stream.rate or 0
    decoded = 0
    for frame in _frames(container, stream):
        for out in resampler.resample(frame):
            rate = out.sample_rate
            parts.append(out.to_ndarray().mean(axis=0))
            decoded += out.samples
            if max_seconds is not None and decoded > max_seconds * rate:
                raise InvalidRequest(
                    f"the audio is longer than {max_seconds:.0f} s", param="file", code="audio_too_long"
                )
    samples = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    return samples, int(rate)


def _frames(container, stream):
    """The stream's decoded frames, then None (which flushes the resampler)."""
    yield from container.decode(stream)
    yield None


def _check_allowed(container, data: bytes) -> None:
    """Refuse containers and codecs outside the upload allow-list, and files their container says are cut."""
    name = container.format.name
    if uploads.container_refused(name):
        raise InvalidRequest(
            f"audio files in the {name} container are not accepted; "
            "send WAV, MP3, FLAC, OGG, WebM, M4A, AAC, AIFF or CAF",
            param="file",
            code="unsupported_audio_format",
        )
    if not container.streams.audio:
        raise InvalidRequest("the file has no audio stream", param="file", code="invalid_audio_file")
    codec = container.streams.audio[0].codec_context.name
    if uploads.codec_refused(codec):
        raise InvalidRequest(
            f"audio coded as {codec} is not accepted; use PCM, MP3, FLAC, Vorbis, Opus, AAC or ALAC",
            param="file",
            code="unsupported_audio_format",
        )
    if (why := uploads.truncation(name, data)) is not None:
        raise InvalidRequest(f"the audio file is truncated: {why}", param="file", code="truncated_audio")


def decode_file(data: bytes, max_seconds: float | None = None, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode an audio file of any format PyAV (FFmpeg) reads to float32 mono and its sample rate
    (``rate`` if given: resampled while decoding).

    Raises ``InvalidRequest`` for empty data, data that is not audio, a corrupt or truncated file
    (decoding fails, or the header promises more than the data holds) and audio longer than
    ``max_seconds``.
    """
    if not data:
        raise InvalidRequest("the audio file is empty", param="file", code="empty_audio")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, EOFError) as err:
        if uploads.looks_like_mp4(data):  # its index (moov) usually comes last: a cut file has none
            raise InvalidRequest(
                f"the MP4/M4A file is truncated or corrupt ({err})", param="file", code="truncated_audio"
            ) from None
        raise InvalidRequest(
            f"the file is not audio that can be decoded ({err})", param="file", code="invalid_audio_file"
        ) from None
    with container:
        _check_allowed(container, data)
        try:
            samples, rate = _decode_container(container, max_seconds, rate)
        except (av.FFmpegError, ValueError, EOFError) as err:
            if isinstance(err, InvalidRequest):
                raise
            raise InvalidRequest(
                f"the audio file is corrupt or truncated ({err})", param="file", code="truncated_audio"
            ) from None
        promised = (container.duration or 0) / 1e6
    if rate <= 0 or samples.size == 0:
        raise InvalidRequest("the audio file holds no samples", param="file", code="empty_audio")
    decoded = samples.size / rate
    if promised - decoded > max(0.5, 0.1 * promised):
        raise InvalidRequest(
            f"the audio file is truncated: its header promises {promised:.1f} s, the data holds {decoded:.1f} s",
            param="file",
            code="truncated_audio",
        )
    return samples, rate
