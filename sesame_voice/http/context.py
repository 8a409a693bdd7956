"""Conversation context in requests: base64/WAV context audio, segments and speaker numbers, within limits."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sesame_voice.api.errors import InvalidRequest
from sesame_voice.api.stt import SpeechToTextUnavailable
from sesame_voice.api.types import ContextSegment

MIN_RATE, MAX_RATE = 4000, 192000
"""Sample rates context audio may have; anything in between is resampled."""


@dataclass(frozen=True)
class ContextLimits:
    """Bounds on the context one request may carry."""

    max_segments: int = 32
    max_segment_seconds: float = 60.0
    max_total_seconds: float = 300.0
    max_text_chars: int = 4096


def decode_base64_audio(
    data: Any, param: str, max_seconds: float, raw_rate: int | None = None
) -> tuple[np.ndarray, int]:
    """Float32 mono samples and their rate from base64 WAV (or raw float32 LE at ``raw_rate``, if given).

    Raises InvalidRequest naming ``param`` for malformed base64, audio that is not WAV (nor raw
    float32 where allowed), a rate outside 4–192 kHz, or audio longer than ``max_seconds``.
    """
    if not isinstance(data, str):
        raise InvalidRequest(f"{param} must be a base64 string", param=param, code="invalid_audio")
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{param} is not valid base64", param=param, code="invalid_base64") from None
    if not raw:
        raise InvalidRequest(f"{param} is empty", param=param, code="invalid_audio")
    if raw[:4] == b"RIFF" and raw[8:12] == b"WAVE":
        samples, rate = _read_wav(raw, param)
    elif raw_rate is not None:
        if len(raw) % 4:
            raise InvalidRequest(
                f"{param} is neither a WAV file nor raw float32 samples (length {len(raw)} is not a multiple of 4)",
                param=param,
                code="invalid_audio",
            )
        samples, rate = np.frombuffer(raw, dtype="<f4").astype(np.float32), raw_rate
        if not np.isfinite(samples).all() or (samples.size and float(np.abs(samples).max()) > 8.0):
            raise InvalidRequest(f"{param} is not float32 audio in [-1, 1]", param=param, code="invalid_audio")
    else:
        raise InvalidRequest(
            f"{param} is not a WAV file (base64 of a RIFF/WAVE file expected)", param=param, code="invalid_audio"
        )
    if not MIN_RATE <= rate <= MAX_RATE:
        raise InvalidRequest(
            f"{param} has sample rate {rate} Hz; use {MIN_RATE}-{MAX_RATE} Hz", param=param, code="invalid_sample_rate"
        )
    seconds = len(samples) / float(rate)
    if seconds > max_seconds:
        raise InvalidRequest(
            f"{param} is {seconds:.1f} s long; the limit is {max_seconds:g} s", param=param, code="audio_too_long"
        )
    return samples, int(rate)


def _read_wav(raw: bytes, param: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(raw)) as handle:
            if handle.format != "WAV":
                raise RuntimeError(handle.format)
            rate = handle.samplerate
            samples = handle.read(dtype="float32", always_2d=True)
    except Exception as err:  # noqa: BLE001 - libsndfile raises several kinds
        raise InvalidRequest(f"{param} is not a readable WAV file ({err})", param=param, code="invalid_audio") from None
    return np.ascontiguousarray(samples.mean(axis=1), dtype=np.float32), int(rate)


def parse_segments(
    items: Any,
    param: str,
    limits: ContextLimits,
    raw_rate: int | None = None,
    require_text: bool = True,
    default_speaker: int = 0,
    speakers: range | None = None,
) -> list[ContextSegment]:
    """ContextSegments from a JSON list of ``{text, speaker, audio}`` as clients send them."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise InvalidRequest(f"{param} must be a list", param=param)
    if len(items) > limits.max_segments:
        raise InvalidRequest(
            f"{param} has {len(items)} segments; the limit is {limits.max_segments}",
            param=param,
            code="too_many_segments",
        )
    segments: list[ContextSegment] = []
    total = 0.0
    for index, item in enumerate(items):
        where = f"{param}[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidRequest(f"{where} must be an object with text, speaker and audio", param=param)
        text = item.get("text")
        if text is None and not require_text:
            text = ""
        if not isinstance(text, str) or (require_text and not text.strip()):
            raise InvalidRequest(f"{where}.text must be a non-empty string", param=param)
        if len(text) > limits.max_text_chars:
            raise InvalidRequest(
                f"{where}.text is longer than {limits.max_text_chars} characters", param=param, code="segment_too_large"
            )
        speaker = parse_speaker(item.get("speaker", default_speaker), f"{where}.speaker", speakers)
        audio = rate = None
        if item.get("audio") not in (None, ""):
            audio, rate = decode_base64_audio(item["audio"], f"{where}.audio", limits.max_segment_seconds, raw_rate)
            total += len(audio) / rate
            if total > limits.max_total_seconds:
                raise InvalidRequest(
                    f"{param} carries more than {limits.max_total_seconds:g} s of audio",
                    param=param,
                    code="segment_too_large",
                )
        segments.append(ContextSegment(text=text.strip(), speaker=speaker, audio=audio, sample_rate=rate))
    return segments


async def read_segments(items: Any, param: str, limits: ContextLimits, **options: Any) -> list[ContextSegment]:
    """``parse_segments`` in a worker thread: base64 and WAV decoding of long context never blocks the loop."""
    if not items:
        return parse_segments(items, param, limits, **options)
    return await asyncio.to_thread(parse_segments, items, param, limits, **options)


async def read_base64_audio(
    data: Any, param: str, max_seconds: float, raw_rate: int | None = None
) -> tuple[np.ndarray, int]:
    """``decode_base64_audio`` in a worker thread."""
    return await asyncio.to_thread(decode_base64_audio, data, param, max_seconds, raw_rate)


def parse_speaker(value: Any, param: str, allowed: range | None = None) -> int:
    """A speaker id from JSON or a form field; InvalidRequest if it is not an allowed integer."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if not isinstance(value, int):
        raise InvalidRequest(f"{param} must be an integer speaker id", param=param, code="unknown_speaker")
    if allowed is not None and value not in allowed:
        raise InvalidRequest(
            f"{param} {value} is unknown; speakers are {allowed.start}-{allowed.stop - 1}",
            param=param,
            code="unknown_speaker",
        )
    if value < 0:
        raise InvalidRequest(f"{param} must not be negative", param=param, code="unknown_speaker")
    return value


async def transcribe_audio(service, samples: np.ndarray, rate: int, param: str = "text") -> str:
    """Words of ``samples`` from the server's speech-to-text service.

    Without a speech-to-text provider (none installed, or none could load) the client is asked for
    the text: InvalidRequest ``transcript_required``; audio without words: ``transcript_empty``.
    """
    try:
        if service is None:
            raise SpeechToTextUnavailable("no speech-to-text service")
        result = await service.transcribe(samples, rate)
    except SpeechToTextUnavailable as err:
        raise InvalidRequest(
            f"audio came without its text, and the server cannot transcribe it ({err}); send the text with the audio",
            param=param,
            code="transcript_required",
        ) from None
    if not result.text.strip():
        raise InvalidRequest(
            "no words were recognised in the audio; send its text", param=param, code="transcript_empty"
        )
    return result.text.strip()
