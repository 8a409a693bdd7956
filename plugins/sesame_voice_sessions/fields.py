"""Fields of the session API's JSON requests, checked with errors that name them."""

from __future__ import annotations

from typing import Any

from sesame_voice import InvalidRequest
from sesame_voice.config import RESPONSE_FORMATS
from sesame_voice.http.context import decode_base64_audio, parse_speaker

MAX_AUDIO_MS = 600_000


def optional_str(body: dict, name: str) -> str | None:
    """``body[name]`` if it is a non-empty string, None if absent or empty."""
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string", param=name)
    return value or None


def speaker(body: dict, default: int | None = 0) -> int | None:
    """The ``speaker`` id, or ``default`` when absent."""
    value = body.get("speaker")
    return default if value is None else parse_speaker(value, "speaker")


def max_audio_ms(body: dict) -> int | None:
    """``max_audio_length_ms``: an integer of 80 ms to 10 minutes, or None."""
    value = body.get("max_audio_length_ms")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise InvalidRequest("max_audio_length_ms must be an integer", param="max_audio_length_ms")
    if not 80 <= value <= MAX_AUDIO_MS:
        raise InvalidRequest(
            f"max_audio_length_ms must be between 80 and {MAX_AUDIO_MS}, got {value}", param="max_audio_length_ms"
        )
    return int(value)


def speech_text(body: dict) -> str:
    """The ``text`` to speak."""
    text = body.get("text")
    if not isinstance(text, str):
        raise InvalidRequest("text must be a string", param="text", code="missing_required_parameter")
    return text


def audio_format(value: Any) -> str:
    """The answer's audio ``format`` (``wav`` when absent)."""
    fmt = "wav" if value in (None, "") else value
    if not isinstance(fmt, str) or fmt.lower() not in RESPONSE_FORMATS:
        raise InvalidRequest(
            f"format must be one of {', '.join(RESPONSE_FORMATS)}", param="format", code="unsupported_format"
        )
    return fmt.lower()


async def add_turn(sessions, session_id: str, body: dict):
    """Add the turn a request describes (``text``, ``speaker``, ``audio`` as base64 WAV) to the session."""
    audio = rate = None
    if body.get("audio") not in (None, ""):
        audio, rate = decode_base64_audio(body["audio"], "audio", sessions.max_upload_seconds)
    return await sessions.add_turn(
        session_id, text=optional_str(body, "text"), speaker=speaker(body), audio=audio, sample_rate=rate
    )
