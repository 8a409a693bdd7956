"""Conversation sessions: turns (text, speaker, audio) that condition every generation, bounded and expiring.

A session's history becomes the ``context`` of each request it speaks; the engine keeps the newest
turns the serving provider's window holds. Every frontend reaches sessions through
``server.sessions`` (a :class:`SessionStore`); see docs/sessions.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import numpy as np

from sesame_voice.api.errors import InvalidRequest
from sesame_voice.api.types import ContextSegment, SynthesisRequest
from sesame_voice.config import ConfigError
from sesame_voice.http.context import transcribe_audio

_LOGGER = logging.getLogger(__name__)
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
OVERFLOW_POLICIES = ("drop_oldest", "refuse")


class UnknownSession(InvalidRequest):
    """No session of that id: never created, deleted, or expired after being idle."""

    code = "session_not_found"


class SessionLimitReached(InvalidRequest):
    """A bound on sessions, turns or audio would be exceeded."""

    code = "session_limit"


class SessionBusy(InvalidRequest):
    """The session is already speaking; cancel that first."""

    code = "session_busy"


def new_id() -> str:
    """A short random id, safe in URLs and file names."""
    return secrets.token_urlsafe(12)


@dataclass
class Turn:
    """One utterance of a conversation."""

    text: str
    speaker: int = 0
    audio: np.ndarray | None = None
    """Mono float32 samples, if the turn has audio."""
    sample_rate: int | None = None
    id: str = field(default_factory=new_id)
    created: float = field(default_factory=time.time)
    generated: bool = False
    """True for turns the server spoke."""
    transcribed: bool = False
    """True when ``text`` came from the speech-to-text service."""

    @property
    def audio_seconds(self) -> float:
        """Length of the turn's audio in seconds (0 without audio)."""
        return len(self.audio) / float(self.sample_rate) if self.audio is not None and self.sample_rate else 0.0

    def segment(self) -> ContextSegment:
        """The turn as context for a provider."""
        return ContextSegment(text=self.text, speaker=self.speaker, audio=self.audio, sample_rate=self.sample_rate)

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (no samples)."""
        return {"id": self.id, "text": self.text, "speaker": self.speaker, "created": self.created,
                "audio_seconds": round(self.audio_seconds, 3), "sample_rate": self.sample_rate,
                "generated": self.generated, "transcribed": self.transcribed}


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

    def describe(self, with_turns: bool = False) -> dict[str, Any]:
        """JSON-ready summary, with the turns if asked."""
        info = {"id": self.id, "voice": self.voice, "speaker": self.speaker, "created": self.created,
                "last_active": self.last_active, "turn_count": len(self.fair_lock),
                "audio_seconds": round(self.audio_seconds, 3), "dropped_turns": self.dropped_turns,
                "speaking": self.speaking}
        if with_turns:
            info["turns"] = [turn.describe() for turn in self.fair_lock]
        return info


@dataclass(frozen=True)
class SessionLimits:
    """Bounds of the session store (core settings SESSION_IDLE_SECONDS, MAX_SESSIONS, …)."""

    idle_seconds: float
    max_sessions: int
    max_turns: int
    max_audio_seconds: float
    overflow: str
    persist: bool

    @classmethod
    def from_settings(cls, settings) -> "SessionLimits":
        """Limits from Settings; ConfigError names a bad setting."""
        limits = cls(settings.session_idle_seconds, settings.max_sessions, settings.session_max_turns,
                     settings.session_max_audio_seconds, settings.session_overflow, settings.sessions_persist)
        for name, value in (("SESSION_IDLE_SECONDS", limits.idle_seconds), ("MAX_SESSIONS", limits.max_sessions),
                            ("SESSION_MAX_TURNS", limits.max_turns),
                            ("SESSION_MAX_AUDIO_SECONDS", limits.max_audio_seconds)):
            if not value > 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        if limits.overflow not in OVERFLOW_POLICIES:
            raise ConfigError(f"SESSION_OVERFLOW must be one of {', '.join(OVERFLOW_POLICIES)}, got {limits.overflow!r}")
        return limits


class SpokenTurn:
    """A session speaking: iterate it for the audio; once fully iterated, ``turn`` joins the history."""

    def __init__(self, turn_id: str, synthesis, max_seconds: float) -> None:
        self.id = turn_id
        self.synthesis = synthesis
        self.turn: Turn | None = None
        self.finished = False
        self._chunks: list[np.ndarray] = []
        self._seconds = 0.0
        self._max_seconds = max_seconds

    @property
    def sample_rate(self) -> int:
        """Rate of the audio being generated."""
        return self.synthesis.sample_rate

    @property
    def voice(self):
        """The Voice speaking."""
        return self.synthesis.voice

    @property
    def provider(self) -> str:
        """Name of the provider serving."""
        return self.synthesis.provider

    @property
    def fell_back_from(self) -> list[str]:
        """Providers skipped before the one serving."""
        return self.synthesis.fell_back_from

    def __aiter__(self) -> AsyncIterator:
        return self._iterate()

    async def _iterate(self):
        async for chunk in self.synthesis:
            self._seconds += chunk.duration
            if self._seconds <= self._max_seconds:
                self._chunks.append(chunk.samples)
            yield chunk
        self.finished = True

    def audio(self) -> np.ndarray | None:
        """Everything generated, or None if it was longer than a session may keep."""
        if self._seconds > self._max_seconds or not self._chunks:
            return None
        return np.concatenate(self._chunks).astype(np.float32, copy=False)


class SessionStore:
    """Every session of one server, in memory (optionally saved to ``folder`` at shutdown)."""

    def __init__(self, limits: SessionLimits, engine, folder: Path | None = None,
                 speech_to_text: Any = None, clock: Callable[[], float] = time.time) -> None:
        self.limits = limits
        self.engine = engine
        self.folder = folder
        self.speech_to_text = speech_to_text
        """Returns the server's speech-to-text service (``transcribe(samples, sample_rate)``) or None."""
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    # -- lifecycle ---------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def running(self):
        """Load saved sessions, expire idle ones in the background, save them on the way out."""
        if self.limits.persist and self.folder is not None:
            await asyncio.to_thread(self.load)
        sweeper = asyncio.create_task(self._sweep(), name="sessions-expiry")
        try:
            yield self
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            if self.limits.persist and self.folder is not None:
                await asyncio.to_thread(self.save)

    async def _sweep(self) -> None:
        interval = min(60.0, max(0.5, self.limits.idle_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            self.expire()

    def expire(self) -> list[str]:
        """Delete sessions idle longer than the limit (never one that is speaking); return their ids."""
        cutoff = self.clock() - self.limits.idle_seconds
        gone = [sid for sid, s in self._sessions.items() if s.last_active < cutoff and not s.speaking]
        for sid in gone:
            del self._sessions[sid]
            _LOGGER.info("Session %s expired after %.0f s idle", sid, self.limits.idle_seconds)
        return gone

    # -- sessions ----------------------------------------------------------------
    def create(self, voice: str | None = None, speaker: int = 0, session_id: str | None = None) -> Session:
        """A new, empty session; SessionLimitReached when MAX_SESSIONS are open."""
        self.expire()
        if session_id is not None and not SESSION_ID.match(session_id):
            raise InvalidRequest("session id must be 1-64 letters, digits, '-' or '_'", param="session")
        if session_id in self._sessions:
            raise InvalidRequest(f"session {session_id!r} already exists", param="session", code="session_exists")
        if len(self._sessions) >= self.limits.max_sessions:
            raise SessionLimitReached(f"{len(self._sessions)} sessions are open, the most allowed (MAX_SESSIONS); "
                                      "delete one or wait for idle ones to expire")
        now = self.clock()
        session = Session(id=session_id or new_id(), voice=voice, speaker=speaker, created=now, last_active=now)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: Any) -> Session:
        """The session (marked active); UnknownSession if it does not exist or expired."""
        self.expire()
        session = self._sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None:
            raise UnknownSession(f"no session {session_id!r}: it was never created, was deleted, or expired after "
                                 f"{self.limits.idle_seconds:g} s idle", param="session")
        session.last_active = self.clock()
        return session

    def list(self) -> list[Session]:
        """Open sessions, oldest first."""
        self.expire()
        return list(self._sessions.values())

    def delete(self, session_id: str) -> None:
        """Forget a session; UnknownSession if there is none."""
        self.get(session_id)
        del self._sessions[session_id]

    # -- turns -------------------------------------------------------------------
    async def add_turn(self, session_id: str, text: str | None = None, speaker: int = 0,
                       audio: np.ndarray | None = None, sample_rate: int | None = None) -> Turn:
        """Append a turn; audio without text is transcribed by the server's speech-to-text service."""
        session = self.get(session_id)
        transcribed = False
        if text is not None and not isinstance(text, str):
            raise InvalidRequest("text must be a string", param="text")
        if not (text or "").strip():
            if audio is None or not len(audio):
                raise InvalidRequest("a turn needs text, audio, or both", param="text", code="empty_turn")
            text = await transcribe_audio(self.speech_to_text, audio, int(sample_rate or 0))
            transcribed = True
        turn = Turn(text=text.strip(), speaker=speaker, audio=audio, sample_rate=sample_rate if audio is not None else None,
                    transcribed=transcribed)
        self._append(session, turn)
        return turn

    def _append(self, session: Session, turn: Turn) -> None:
        limits = self.limits
        if turn.audio_seconds > limits.max_audio_seconds:
            raise SessionLimitReached(f"the turn has {turn.audio_seconds:.1f} s of audio; a session keeps at most "
                                      f"{limits.max_audio_seconds:g} s (SESSION_MAX_AUDIO_SECONDS)", param="audio")
        over_turns = len(session.turns) + 1 > limits.max_turns
        over_audio = session.audio_seconds + turn.audio_seconds > limits.max_audio_seconds
        if (over_turns or over_audio) and limits.overflow == "refuse":
            what = f"{limits.max_turns} turns" if over_turns else f"{limits.max_audio_seconds:g} s of audio"
            raise SessionLimitReached(f"session {session.id} already holds {what}, its limit; start a new session")
        session.turns.append(turn)
        session.audio_seconds += turn.audio_seconds
        while len(session.turns) > limits.max_turns or session.audio_seconds > limits.max_audio_seconds + 1e-9:
            old = session.turns.popleft()
            session.audio_seconds -= old.audio_seconds
            session.dropped_turns += 1
        session.last_active = self.clock()

    def context(self, session: Session) -> list[ContextSegment]:
        """The session's history as context segments, oldest first (the engine trims to the window)."""
        return [turn.segment() for turn in session.turns]

    @contextlib.asynccontextmanager
    async def speak(self, session_id: str, text: str, speaker: int | None = None, voice: str | None = None,
                    frontend: str = "", sampling: dict | None = None, **request_fields: Any):
        """``async with store.speak(id, text) as spoken: async for chunk in spoken: ...``

        Generates ``text`` as ``speaker`` conditioned on the history; when the audio has been
        iterated to the end, the turn (text + audio) joins the history as ``spoken.turn``.
        """
        session = self.get(session_id)
        if session.speaking:
            raise SessionBusy(f"session {session.id} is already speaking; cancel it or wait for it to finish")
        speaker = session.speaker if speaker is None else speaker
        request = SynthesisRequest(text=text, voice=voice or session.voice, context=self.context(session),
                                   sampling={**(sampling or {}), "speaker": speaker}, frontend=frontend,
                                   **request_fields)
        session.speaking = True
        try:
            async with self.engine.synthesis(request) as synthesis:
                spoken = SpokenTurn(new_id(), synthesis, self.limits.max_audio_seconds)
                yield spoken
            if spoken.finished and self._sessions.get(session.id) is session:
                audio = spoken.audio()
                turn = Turn(text=request.text, speaker=speaker, audio=audio,
                            sample_rate=spoken.sample_rate if audio is not None else None, id=spoken.id,
                            generated=True)
                self._append(session, turn)
                spoken.turn = turn
        finally:
            session.speaking = False
            session.last_active = self.clock()

    # -- persistence -------------------------------------------------------------
    def save(self) -> int:
        """Write every session to ``folder`` (one .npz each); return how many."""
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob("*.npz"):
            if stale.stem not in self._sessions:
                stale.unlink(missing_ok=True)
        for session in self._sessions.values():
            meta = session.describe(with_turns=True)
            arrays = {f"audio_{i}": t.audio for i, t in enumerate(session.turns) if t.audio is not None}
            arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
            with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".tmp", delete=False) as handle:
                np.savez(handle, **arrays)
            os.replace(handle.name, self.folder / f"{session.id}.npz")
        return len(self._sessions)

    def load(self) -> int:
        """Read sessions saved by ``save``, skipping expired or unreadable files; return how many."""
        assert self.folder is not None
        cutoff = self.clock() - self.limits.idle_seconds
        for file in sorted(self.folder.glob("*.npz")) if self.folder.is_dir() else []:
            try:
                with np.load(file, allow_pickle=False) as data:
                    meta = json.loads(bytes(data["meta"]).decode())
                    audio = {key: np.array(data[key], dtype=np.float32) for key in data.files if key != "meta"}
                if meta["last_active"] < cutoff or not SESSION_ID.match(meta["id"]):
                    continue
                session = Session(id=meta["id"], voice=meta.get("voice"), speaker=int(meta.get("speaker", 0)),
                                  created=meta["created"], last_active=meta["last_active"],
                                  dropped_turns=int(meta.get("dropped_turns", 0)))
                for i, item in enumerate(meta["turns"]):
                    samples = audio.get(f"audio_{i}")
                    turn = Turn(text=item["text"], speaker=item["speaker"], audio=samples,
                                sample_rate=item["sample_rate"] if samples is not None else None, id=item["id"],
                                created=item["created"], generated=item["generated"], transcribed=item["transcribed"])
                    session.turns.append(turn)
                    session.audio_seconds += turn.audio_seconds
            except (OSError, ValueError, KeyError, TypeError) as err:
                _LOGGER.warning("Ignoring unreadable saved session %s: %s", file.name, err)
                continue
            if len(self._sessions) < self.limits.max_sessions:
                self._sessions[session.id] = session
        return len(self._sessions)
