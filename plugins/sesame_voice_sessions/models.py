"""What a conversation is made of: sessions holding turns, and the errors every store raises."""

from __future__ import annotations

import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sesame_voice import Conflict, ContextSegment, InvalidRequest, NotFound

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class UnknownSession(NotFound):
    """No session of that id: never created, deleted, or expired after being idle (HTTP 404)."""

    code = "session_not_found"


class SessionLimitReached(Conflict):
    """A bound on sessions, turns or audio would be exceeded (HTTP 409)."""

    code = "session_limit"


class SessionBusy(Conflict):
    """The session is already speaking; cancel that first (HTTP 409)."""

    code = "session_busy"


def new_id() -> str:
    """A short random id, safe in URLs and file names."""
    return secrets.token_urlsafe(12)


def check_session_id(session_id: str | None) -> None:
    """InvalidRequest unless ``session_id`` is None or 1-64 letters, digits, '-' or '_'."""
    if session_id is not None and not (isinstance(session_id, str) and SESSION_ID.match(session_id)):
        raise InvalidRequest("session id must be 1-64 letters, digits, '-' or '_'", param="session")


@dataclass
class Turn:
    """One utterance of a conversation."""

    text: str
    speaker: int = 0
    audio: np.ndarray | None = None
    """Mono samples, if the turn has audio: int16 PCM as the stores keep it (float32 also accepted)."""
    sample_rate: int | None = None
    id: str = field(default_factory=new_id)
    created: float = field(default_factory=time.time)
    generated: bool = False
    """True for turns the server spoke."""
    transcribed: bool = False
    """True when ``text`` came from the speech-to-text service."""
    stored_seconds: float = 0.0
    """Length of audio a store holds but did not load (``audio`` None); see ``audio_seconds``."""
    interrupted: bool = False
    """True for a reply cut short (barge-in, cancel): it holds what was spoken before."""

    @property
    def audio_seconds(self) -> float:
        """Length of the turn's audio in seconds (0 without audio)."""
        if self.audio is not None and self.sample_rate:
            return len(self.audio) / float(self.sample_rate)
        return self.stored_seconds

    def samples(self) -> np.ndarray | None:
        """The audio as float32 samples (from the stored PCM16), or None."""
        if self.audio is None or self.audio.dtype != np.int16:
            return self.audio
        return self.audio.astype(np.float32) / 32768.0

    def segment(self) -> ContextSegment:
        """The turn as context for a provider."""
        return ContextSegment(text=self.text, speaker=self.speaker, audio=self.samples(), sample_rate=self.sample_rate)

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (no samples)."""
        return {
            "id": self.id,
            "text": self.text,
            "speaker": self.speaker,
            "created": self.created,
            "audio_seconds": round(self.audio_seconds, 3),
            "sample_rate": self.sample_rate,
            "generated": self.generated,
            "transcribed": self.transcribed,
            "interrupted": self.interrupted,
        }


@dataclass
class Session:
    """A conversation: its turns, oldest first, and the voice it speaks with."""

    id: str
    voice: str | None = None
    speaker: int = 0
    created: float = field(default_factory=time.time)
    last_active: float = field(default_factory=time.time)
    turns: deque[Turn] = field(default_factory=deque)
    audio_seconds: float = 0.0
    dropped_turns: int = 0
    """Turns removed to stay within the bounds (overflow ``drop_oldest``)."""
    speaking: bool = False

    def context(self) -> list[ContextSegment]:
        """The history as context segments, oldest first (the engine trims it to the provider's window)."""
        return [turn.segment() for turn in self.turns]

    def describe(self, with_turns: bool = False) -> dict[str, Any]:
        """JSON-ready summary, with the turns if asked."""
        info = {
            "id": self.id,
            "voice": self.voice,
            "speaker": self.speaker,
            "created": self.created,
            "last_active": self.last_active,
            "turn_count": len(self.turns),
            "audio_seconds": round(self.audio_seconds, 3),
            "dropped_turns": self.dropped_turns,
            "speaking": self.speaking,
        }
        if with_turns:
            info["turns"] = [turn.describe() for turn in self.turns]
        return info
