"""Microphone audio streamed to the session WebSocket as binary messages: the declared format, the
turn being spoken (bounded) and the server's end-of-turn detection (the shared energy VAD)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sesame_voice import InvalidRequest
from sesame_voice.audio import EnergyVad, from_pcm16
from sesame_voice.audio.vad import SPEECH_START_MS

ENCODINGS = {"s16le": 2, "f32le": 4}
"""Binary message encodings: 16-bit or 32-bit float little-endian PCM, mono."""
MIN_RATE, MAX_RATE = 8000, 48000
MAX_MESSAGE_SECONDS = 2.0
"""One binary message carries at most this much audio (a microphone sends 20-100 ms)."""
TURN_DETECTION_DEFAULTS = {"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 500, "prefix_padding_ms": 300}


@dataclass(frozen=True)
class AudioIn:
    """The format the client declared with ``audio_in``, and its turn detection (None: manual)."""

    encoding: str
    sample_rate: int
    turn_detection: dict | None

    def wire(self) -> dict:
        return {"encoding": self.encoding, "sample_rate": self.sample_rate, "turn_detection": self.turn_detection}


def _number(value, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidRequest(f"{name} must be a number from {low:g} to {high:g}", param=name)
    return value


def parse_audio_in(message: dict) -> AudioIn:
    """The ``audio_in`` message: ``encoding`` (s16le, f32le), ``sample_rate``, ``turn_detection``."""
    encoding = message.get("encoding", "s16le")
    if encoding not in ENCODINGS:
        raise InvalidRequest(
            f"encoding must be one of {', '.join(ENCODINGS)}", param="encoding", code="unsupported_audio_format"
        )
    rate = message.get("sample_rate")
    if isinstance(rate, bool) or not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
        raise InvalidRequest(
            f"sample_rate must be an integer from {MIN_RATE} to {MAX_RATE}",
            param="sample_rate",
            code="unsupported_audio_format",
        )
    detection = message.get("turn_detection", {})
    if detection is not None:
        if not isinstance(detection, dict) or detection.get("type", "server_vad") != "server_vad":
            raise InvalidRequest("turn_detection must be null or {type: server_vad, ...}", param="turn_detection")
        limits = {"threshold": (0, 1), "silence_duration_ms": (100, 10000), "prefix_padding_ms": (0, 5000)}
        detection = {**TURN_DETECTION_DEFAULTS, **{k: v for k, v in detection.items() if k in limits}}
        for key, (low, high) in limits.items():
            _number(detection[key], f"turn_detection.{key}", low, high)
    return AudioIn(encoding, rate, detection)


@dataclass(frozen=True)
class MicEvent:
    """``speech_started`` / ``speech_stopped`` at ``ms`` of the stream; a stop carries the turn's ``audio``."""

    kind: str
    ms: int
    audio: np.ndarray | None = None


class Microphone:
    """Decodes binary messages, keeps the current turn's audio (at most ``max_seconds``) and finds its end."""

    def __init__(self, audio_in: AudioIn, max_seconds: float) -> None:
        self.format = audio_in
        self.rate = audio_in.sample_rate
        self.max_samples = int(max_seconds * self.rate)
        detection = audio_in.turn_detection
        self.vad = self._new_vad()
        self._origin_ms = 0
        """Stream time at which the current detector started (it restarts after a dropped turn)."""
        self.prefix_samples = int(detection["prefix_padding_ms"] * self.rate / 1000) if detection else 0
        self.start_samples = SPEECH_START_MS * self.rate // 1000 + self.rate // 50
        """Speech the detector hears before it decides (plus a frame in progress)."""
        self._buffer = bytearray()
        """float32 samples of the turn so far (with VAD: from the prefix padding before speech on)."""
        self._buffer_start = 0
        """Stream position (samples) of the buffer's first sample."""

    def _new_vad(self) -> EnergyVad | None:
        detection = self.format.turn_detection
        if detection is None:
            return None
        return EnergyVad(self.rate, detection["threshold"], int(detection["silence_duration_ms"]))

    @property
    def in_speech(self) -> bool:
        return self.vad is not None and self.vad.in_speech

    def decode(self, data: bytes) -> np.ndarray:
        """Samples of one binary message; InvalidRequest for a torn sample or an oversize message."""
        width = ENCODINGS[self.format.encoding]
        if len(data) % width:
            raise InvalidRequest(
                f"{self.format.encoding} audio has a multiple of {width} bytes, got {len(data)}", code="invalid_audio"
            )
        if len(data) // width > MAX_MESSAGE_SECONDS * self.rate:
            raise InvalidRequest(
                f"one binary message carries at most {MAX_MESSAGE_SECONDS:g} s of audio; send it in smaller pieces",
                code="audio_message_too_large",
            )
        if width == 2:
            return from_pcm16(data)
        samples = np.frombuffer(data, dtype="<f4").astype(np.float32)
        if not np.all(np.isfinite(samples)):
            raise InvalidRequest("float audio holds NaN or infinite samples", code="invalid_audio")
        return np.clip(samples, -1.0, 1.0)

    def feed(self, data: bytes) -> list[MicEvent]:
        """Take one binary message; the speech starts and stops it completed (stops carry the turn)."""
        samples = self.decode(data)
        if len(self._buffer) // 4 + samples.size > self.max_samples:
            self.reset()
            raise InvalidRequest(
                f"the turn is longer than {self.max_samples / self.rate:g} s; its audio was dropped",
                code="audio_buffer_full",
            )
        self._buffer.extend(samples.astype("<f4").tobytes())
        if self.vad is None:
            return []
        events = []
        for change in self.vad.feed(samples):
            ms = self._origin_ms + change.ms
            if change.kind == "speech_started":
                self._drop_before(ms * self.rate // 1000 - self.prefix_samples)
                events.append(MicEvent("speech_started", ms))
            else:
                events.append(MicEvent("speech_stopped", ms, self._take_until(ms)))
        if not self.vad.in_speech:  # nobody speaks: keep the prefix padding (and speech not yet confirmed)
            self._drop_before(self._buffer_start + len(self._buffer) // 4 - self.prefix_samples - self.start_samples)
        return events

    def _drop_before(self, position: int) -> None:
        """Forget the buffered samples before stream ``position``."""
        excess = min(position - self._buffer_start, len(self._buffer) // 4)
        if excess > 0:
            del self._buffer[: excess * 4]
            self._buffer_start += excess

    def _take_until(self, ms: int) -> np.ndarray:
        end = max(0, ms * self.rate // 1000 - self._buffer_start)
        audio = np.frombuffer(bytes(self._buffer[: end * 4]), dtype="<f4").copy()
        del self._buffer[: end * 4]
        self._buffer_start += end
        return audio

    def commit(self) -> np.ndarray:
        """Everything buffered, as a turn (the client ends the turn itself)."""
        audio = np.frombuffer(bytes(self._buffer), dtype="<f4").copy()
        self._buffer_start += audio.size
        self._buffer.clear()
        return audio

    def reset(self) -> None:
        """Drop the buffered audio; the detector starts afresh."""
        self._buffer_start += len(self._buffer) // 4
        self._buffer.clear()
        self.vad = self._new_vad()
        self._origin_ms = self._buffer_start * 1000 // self.rate
