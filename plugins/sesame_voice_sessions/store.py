"""The interface every session store implements, and the bounds it keeps.

Callers (the REST and WebSocket API, the OpenAI ``session`` extension, other plugins through the
``sessions`` service) only ever use a store through :class:`SessionStore`, so another backend (a
shared one for several replicas, ``redis_store``) is a new class plus a name in ``STORES`` or a URL
scheme in ``make_store``, nothing else.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .models import Session, Turn


@dataclass(frozen=True)
class SessionLimits:
    """Bounds a store enforces (settings ``SESSION_IDLE_SECONDS``, ``MAX_SESSIONS``, …)."""

    idle_seconds: float
    max_sessions: int
    max_turns: int
    max_audio_seconds: float
    overflow: str
    """``drop_oldest`` turns make room for a new one, or ``refuse`` it (SessionLimitReached)."""
    persist: bool

    @classmethod
    def from_options(cls, options) -> "SessionLimits":
        """The limits of the plugin's ``SessionSettings``."""
        return cls(
            options.idle_seconds,
            options.max_sessions,
            options.max_turns,
            options.max_audio_seconds,
            options.overflow,
            options.persist,
        )


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions live. Every operation is async; errors are ``models.UnknownSession`` (404),
    ``SessionLimitReached`` and ``SessionBusy`` (409), ``InvalidRequest`` (400)."""

    limits: SessionLimits

    def running(self) -> AbstractAsyncContextManager[object]:
        """Lives as long as the server: load what was kept, expire idle sessions, keep them on the way out."""

    async def create(self, voice: str | None = None, speaker: int = 0, session_id: str | None = None) -> Session:
        """A new, empty session (id given or made up); SessionLimitReached at ``max_sessions``,
        InvalidRequest ``session_exists`` for a taken id."""

    async def get(self, session_id: str, audio: bool = True) -> Session:
        """The session with its turns, marked active; UnknownSession if it does not exist or expired.

        With ``audio=False`` a store may leave ``Turn.audio`` unloaded (``audio_seconds`` still right):
        for answers that only describe the session."""

    async def list(self) -> list[Session]:
        """Open sessions, oldest first."""

    async def delete(self, session_id: str) -> None:
        """Forget a session; UnknownSession if there is none."""

    async def add_turn(self, session_id: str, turn: Turn) -> Turn:
        """Append ``turn`` (audio: int16 PCM at the rate the service chose) within the bounds (dropping
        the oldest turns or refusing, per ``overflow``); SessionLimitReached for a turn with more
        audio than a session keeps. Durable when it returns (in a shared store: for every replica)."""

    def speaking(self, session_id: str) -> AbstractAsyncContextManager[Session]:
        """``async with store.speaking(id) as session``: the session's one speech at a time.

        SessionBusy if it already speaks (on any connection, on any replica the store serves);
        a speaking session never expires."""

    async def expire(self) -> list[str]:
        """Delete sessions idle longer than ``idle_seconds`` (never one that speaks); their ids."""

    def ids(self) -> list[str]:
        """Ids of the open sessions as this server last saw them; synchronous, for ``/health`` and
        ``/openapi.json`` (a shared backend may answer from a cache)."""
