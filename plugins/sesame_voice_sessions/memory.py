"""The default session store: every session in this process's memory, optionally kept in files across restarts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sesame_voice import InvalidRequest

from .models import SESSION_ID, Session, SessionBusy, SessionLimitReached, Turn, UnknownSession, new_id
from .store import SessionLimits

_LOGGER = logging.getLogger(__name__)


class MemorySessionStore:
    """A :class:`~.store.SessionStore` in memory; with ``limits.persist``, saved to ``folder`` (one
    ``ID.npz`` each) when the server stops and read back when it starts (expired ones skipped)."""

    def __init__(
        self, limits: SessionLimits, folder: Path | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.limits = limits
        self.folder = folder
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._loaded: asyncio.Future | None = None

    # -- lifecycle ---------------------------------------------------------------
    @property
    def _persistent(self) -> bool:
        return self.limits.persist and self.folder is not None

    async def _ready(self) -> None:
        """Read the saved sessions once, before the first operation (a request may beat the lifespan)."""
        if self._loaded is None:
            self._loaded = asyncio.ensure_future(asyncio.to_thread(self.load) if self._persistent else _nothing())
        await asyncio.shield(self._loaded)

    @contextlib.asynccontextmanager
    async def running(self):
        """Load saved sessions, expire idle ones in the background, save them on the way out."""
        await self._ready()
        sweeper = asyncio.create_task(self._sweep(), name="sessions-expiry")
        try:
            yield self
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            if self._persistent:
                await asyncio.to_thread(self.save)

    async def _sweep(self) -> None:
        interval = min(60.0, max(0.5, self.limits.idle_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            self._expire()

    async def expire(self) -> list[str]:
        await self._ready()
        return self._expire()

    def _expire(self) -> list[str]:
        cutoff = self.clock() - self.limits.idle_seconds
        gone = [sid for sid, s in self._sessions.items() if s.last_active < cutoff and not s.speaking]
        for sid in gone:
            del self._sessions[sid]
            _LOGGER.info("Session %s expired after %.0f s idle", sid, self.limits.idle_seconds)
        return gone

    # -- sessions ----------------------------------------------------------------
    async def create(self, voice: str | None = None, speaker: int = 0, session_id: str | None = None) -> Session:
        await self.expire()
        if session_id in self._sessions:
            raise InvalidRequest(f"session {session_id!r} already exists", param="session", code="session_exists")
        if len(self._sessions) >= self.limits.max_sessions:
            raise SessionLimitReached(
                f"{len(self._sessions)} sessions are open, the most allowed (MAX_SESSIONS); "
                "delete one or wait for idle ones to expire"
            )
        now = self.clock()
        session = Session(id=session_id or new_id(), voice=voice, speaker=speaker, created=now, last_active=now)
        self._sessions[session.id] = session
        return session

    async def get(self, session_id: str, audio: bool = True) -> Session:
        await self.expire()
        return self._get(session_id)

    def _get(self, session_id: str) -> Session:
        session = self._sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None:
            raise UnknownSession(
                f"no session {session_id!r}: it was never created, was deleted, or expired after "
                f"{self.limits.idle_seconds:g} s idle",
                param="session",
            )
        session.last_active = self.clock()
        return session

    async def list(self) -> list[Session]:
        await self.expire()
        return list(self._sessions.values())

    def ids(self) -> list[str]:
        return list(self._sessions)

    async def delete(self, session_id: str) -> None:
        await self.get(session_id)
        del self._sessions[session_id]

    # -- turns -------------------------------------------------------------------
    async def add_turn(self, session_id: str, turn: Turn) -> Turn:
        session = await self.get(session_id)
        limits = self.limits
        if turn.audio_seconds > limits.max_audio_seconds:
            raise SessionLimitReached(
                f"the turn has {turn.audio_seconds:.1f} s of audio; a session keeps at most "
                f"{limits.max_audio_seconds:g} s (SESSION_MAX_AUDIO_SECONDS)",
                param="audio",
            )
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
        return turn

    @contextlib.asynccontextmanager
    async def speaking(self, session_id: str):
        session = await self.get(session_id)
        if session.speaking:
            raise SessionBusy(f"session {session.id} is already speaking; cancel it or wait for it to finish")
        session.speaking = True
        try:
            yield session
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
        for session in list(self._sessions.values()):
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
                session = _read_session(file)
            except (OSError, ValueError, KeyError, TypeError) as err:
                _LOGGER.warning("Ignoring unreadable saved session %s: %s", file.name, err)
                continue
            if session.last_active < cutoff or not SESSION_ID.match(session.id):
                continue
            if len(self._sessions) < self.limits.max_sessions:
                self._sessions.setdefault(session.id, session)
        return len(self._sessions)


def _read_session(file: Path) -> Session:
    with np.load(file, allow_pickle=False) as data:
        meta = json.loads(bytes(data["meta"]).decode())
        audio = {key: _as_pcm16(data[key]) for key in data.files if key != "meta"}
    session = Session(
        id=str(meta["id"]),
        voice=meta.get("voice"),
        speaker=int(meta.get("speaker", 0)),
        created=meta["created"],
        last_active=meta["last_active"],
        dropped_turns=int(meta.get("dropped_turns", 0)),
    )
    for i, item in enumerate(meta["turns"]):
        samples = audio.get(f"audio_{i}")
        turn = Turn(
            text=item["text"],
            speaker=item["speaker"],
            audio=samples,
            sample_rate=item["sample_rate"] if samples is not None else None,
            id=item["id"],
            created=item["created"],
            generated=item["generated"],
            transcribed=item["transcribed"],
            interrupted=bool(item.get("interrupted", False)),
        )
        session.turns.append(turn)
        session.audio_seconds += turn.audio_seconds
    return session


def _as_pcm16(samples: np.ndarray) -> np.ndarray:
    """Saved audio as int16 PCM (files written before sessions kept PCM16 hold float32)."""
    if samples.dtype == np.int16:
        return np.array(samples)
    return np.clip(np.rint(np.asarray(samples, np.float32) * 32767.0), -32768, 32767).astype(np.int16)


async def _nothing() -> None:
    return None
