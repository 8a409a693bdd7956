"""The Realtime session's configuration: defaults, ``session.update`` (GA and beta shapes), its wire form."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import RealtimeError

SAMPLE_RATE = 24000
PCM_FORMAT = {"type": "audio/pcm", "rate": SAMPLE_RATE}
SERVER_VAD_DEFAULTS = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "create_response": True,
    "interrupt_response": True,
    "idle_timeout_ms": None,
}
SESSION_SECONDS = 3600


@dataclass
class SessionConfig:
    """What ``session.update`` sets; ``wire()`` is the session object of session.created/updated."""

    id: str
    model: str
    voice: str
    instructions: str = ""
    output_modalities: list[str] = field(default_factory=lambda: ["audio"])
    turn_detection: dict | None = field(default_factory=lambda: dict(SERVER_VAD_DEFAULTS))
    transcription: dict | None = None
    noise_reduction: dict | None = None
    speed: float = 1.0
    max_output_tokens: int | str = "inf"
    expires_at: int = field(default_factory=lambda: int(time.time()) + SESSION_SECONDS)

    def wire(self) -> dict:
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.id,
            "model": self.model,
            "output_modalities": list(self.output_modalities),
            "instructions": self.instructions,
            "audio": {
                "input": {
                    "format": dict(PCM_FORMAT),
                    "transcription": copy.deepcopy(self.transcription),
                    "noise_reduction": copy.deepcopy(self.noise_reduction),
                    "turn_detection": copy.deepcopy(self.turn_detection),
                },
                "output": {"format": dict(PCM_FORMAT), "voice": self.voice, "speed": self.speed},
            },
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": self.max_output_tokens,
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "include": None,
            "expires_at": self.expires_at,
        }


def _object(value: Any, param: str) -> dict:
    if not isinstance(value, dict):
        raise RealtimeError(f"{param} must be an object", param=param)
    return value


def check_format(value: Any, param: str) -> None:
    """Only 16-bit PCM at 24 kHz is spoken here (GA ``{"type": "audio/pcm", "rate": 24000}`` or beta ``pcm16``)."""
    if value is None or value == "pcm16":
        return
    if (
        isinstance(value, dict)
        and value.get("type", "audio/pcm") == "audio/pcm"
        and value.get("rate", SAMPLE_RATE) == SAMPLE_RATE
    ):
        return
    raise RealtimeError(
        f"{param}: only 16-bit PCM at 24000 Hz is supported ('audio/pcm', rate 24000, or 'pcm16')",
        param=param,
        code="unsupported_audio_format",
    )


def turn_detection(value: Any, param: str) -> dict | None:
    """``None`` (manual turns) or a server VAD configuration with OpenAI's defaults filled in."""
    if value is None:
        return None
    value = _object(value, param)
    kind = value.get("type", "server_vad")
    if kind not in ("server_vad", "semantic_vad"):
        raise RealtimeError(f"{param}.type must be 'server_vad' or 'semantic_vad'", param=f"{param}.type")
    result = {**SERVER_VAD_DEFAULTS, "type": kind}
    for key in ("create_response", "interrupt_response"):
        if value.get(key) is not None:
            if not isinstance(value[key], bool):
                raise RealtimeError(f"{param}.{key} must be a boolean", param=f"{param}.{key}")
            result[key] = value[key]
    if kind == "server_vad":
        limits = {"threshold": (0.0, 1.0), "prefix_padding_ms": (0, 5000), "silence_duration_ms": (100, 10000)}
        for key, (low, high) in limits.items():
            if value.get(key) is not None:
                number = value[key]
                if isinstance(number, bool) or not isinstance(number, (int, float)) or not low <= number <= high:
                    raise RealtimeError(f"{param}.{key} must be a number from {low} to {high}", param=f"{param}.{key}")
                result[key] = number
    return result


def apply_update(config: SessionConfig, session: Any, voice_exists) -> SessionConfig:
    """A new config with ``session`` (a ``session.update``'s object, GA or beta fields) applied.

    Raises ``RealtimeError`` (nothing changes) for bad or unsupported values. ``voice_exists(name)``
    raises for an unknown voice.
    """
    session = _object(session, "session")
    new = copy.deepcopy(config)
    kind = session.get("type", "realtime")
    if kind != "realtime":
        raise RealtimeError(
            "only 'realtime' sessions are supported (not transcription-only sessions)",
            param="session.type",
            code="unsupported_feature",
        )
    if session.get("tools"):
        raise RealtimeError(
            "tools (function calling, MCP) are not supported by this server",
            param="session.tools",
            code="unsupported_feature",
        )
    if "instructions" in session:
        if not isinstance(session["instructions"], (str, type(None))):
            raise RealtimeError("session.instructions must be a string", param="session.instructions")
        new.instructions = session["instructions"] or ""
    modalities = session.get("output_modalities", session.get("modalities"))
    if modalities is not None:
        if not isinstance(modalities, list) or not modalities or not set(modalities) <= {"audio", "text"}:
            raise RealtimeError("output_modalities must be ['audio'] or ['text']", param="session.output_modalities")
        new.output_modalities = ["audio"] if "audio" in modalities else ["text"]
    limit = session.get("max_output_tokens", session.get("max_response_output_tokens"))
    if limit is not None:
        if limit != "inf" and (isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 4096):
            raise RealtimeError("max_output_tokens must be 1-4096 or 'inf'", param="session.max_output_tokens")
        new.max_output_tokens = limit
    audio = _object(session.get("audio") or {}, "session.audio")
    audio_in = _object(audio.get("input") or {}, "session.audio.input")
    audio_out = _object(audio.get("output") or {}, "session.audio.output")
    check_format(audio_in.get("format"), "session.audio.input.format")
    check_format(session.get("input_audio_format"), "session.input_audio_format")
    check_format(audio_out.get("format"), "session.audio.output.format")
    check_format(session.get("output_audio_format"), "session.output_audio_format")
    for source, key, param in (
        (audio_in, "turn_detection", "session.audio.input.turn_detection"),
        (session, "turn_detection", "session.turn_detection"),
    ):
        if key in source:
            new.turn_detection = turn_detection(source[key], param)
    for source, key, param in (
        (audio_in, "transcription", "session.audio.input.transcription"),
        (session, "input_audio_transcription", "session.input_audio_transcription"),
    ):
        if key in source:
            value = source[key]
            if value is not None:
                value = _object(value, param)
                if not isinstance(value.get("language") or "", str) or not isinstance(value.get("prompt") or "", str):
                    raise RealtimeError(f"{param}: language and prompt must be strings", param=param)
            new.transcription = dict(value) if value else None
    if "noise_reduction" in audio_in:  # accepted and echoed; the server does not filter noise
        new.noise_reduction = audio_in["noise_reduction"]
    voice = audio_out.get("voice", session.get("voice"))
    if voice is not None:
        if isinstance(voice, dict):
            voice = voice.get("id")
        if not isinstance(voice, str) or not voice:
            raise RealtimeError("voice must be a voice name", param="session.audio.output.voice")
        voice_exists(voice)
        new.voice = voice
    speed = audio_out.get("speed", session.get("speed"))
    if speed is not None:
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0.25 <= speed <= 1.5:
            raise RealtimeError("speed must be a number from 0.25 to 1.5", param="session.audio.output.speed")
        new.speed = float(speed)
    return new
