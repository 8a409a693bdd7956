"""A session store in Redis or Valkey, shared by every replica that names the same URL (docs/sessions.md).

Each operation is one Lua script (``redis_scripts``): atomic, one round trip, durable in Redis
before the caller is answered. Idle expiry is Redis's own TTL; "one speech at a time" is a lock
key with an expiry that the speaking replica renews, so a replica that dies mid-speech frees the
session within ``lock_seconds``. Every call has a deadline: an unreachable, restarting or stalled
Redis is a 503 ``session_store_unavailable`` with the reason, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from sesame_voice import InvalidRequest, ProviderUnavailable, deadline

from . import redis_scripts
from .models import Session, SessionBusy, SessionLimitReached, Turn, UnknownSession, new_id
from .store import SessionLimits

_LOGGER = logging.getLogger(__name__)
PREFIX = "sesame-voice:session:"
MAX_CONNECTIONS = 32
"""Connections to Redis per replica; a call waits (up to the timeout) for a free one."""


class SessionStoreUnavailable(ProviderUnavailable):
    """The shared session store cannot be reached or did not answer in time (HTTP 503)."""

    code = "session_store_unavailable"


def redacted(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisSessionStore:
    """A :class:`~.store.SessionStore` in Redis/Valkey at ``url`` (``redis://``, ``rediss://``, ``unix://``)."""

    def __init__(
        self,
        limits: SessionLimits,
        url: str,
        timeout: float = 2.0,
        lock_seconds: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import redis.asyncio as redis  # optional dependency: pip install 'sesame-voice[redis]'
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.limits = limits
        self.url = url
        self.timeout = timeout
        self.lock_seconds = lock_seconds
        self.clock = clock
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        # No retries: a write whose answer was lost is reported, never silently sent twice.
        self.client = redis.Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))
        self._scripts = {
            name: self.client.register_script(getattr(redis_scripts, name))
            for name in ("CREATE", "GET", "ADD_TURN", "DELETE", "ACQUIRE", "RENEW", "RELEASE", "EXPIRE")
        }
        self._ids: list[str] = []

    # -- plumbing -----------------------------------------------------------------
    @property
    def _idle_ms(self) -> int:
        return max(1, int(self.limits.idle_seconds * 1000))

    @staticmethod
    def _keys(session_id: str) -> list[str]:
        base = f"{PREFIX}{{{session_id}}}:"
        return [base + "meta", base + "turns", base + "audio", base + "lock", PREFIX + "index"]

    async def call(self, what: str, operation):
        """Await ``operation`` (a coroutine on the client) within the timeout; Redis errors become a 503."""
        from redis.exceptions import RedisError

        try:
            async with deadline(self.timeout):  # not wait_for: it can swallow the caller's cancellation
                return await operation
        except (RedisError, OSError, TimeoutError, asyncio.TimeoutError) as err:
            reason = f"{type(err).__name__}: {err}" if str(err) else f"no answer within {self.timeout:g} s"
            _LOGGER.warning("Session store %s failed (%s): %s", redacted(self.url), what, reason)
            raise SessionStoreUnavailable(
                f"the session store ({redacted(self.url)}) is unavailable ({what}: {reason}); "
                "the request was not completed (a change whose answer timed out may still have been "
                "stored: read the session before repeating it)"
            ) from None

    async def _script(self, name: str, session_id: str, *args):
        now = self.clock()
        argv = [session_id, repr(now), self._idle_ms, *args]
        return await self.call(name.lower(), self._scripts[name](keys=self._keys(session_id), args=argv))

    def _unknown(self, session_id: str) -> UnknownSession:
        return UnknownSession(
            f"no session {session_id!r}: it was never created, was deleted, or expired after "
            f"{self.limits.idle_seconds:g} s idle",
            param="session",
        )

    # -- lifecycle -------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def running(self):
        """Check Redis answers (a warning if not: requests get 503 until it does), refresh ``ids`` in the background."""
        try:
            await self.call("ping", self.client.ping())
            _LOGGER.info("Sessions are kept in %s", redacted(self.url))
        except SessionStoreUnavailable as err:
            _LOGGER.warning("%s", err)
        sweeper = asyncio.create_task(self._sweep(), name="sessions-redis-expiry")
        try:
            yield self
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await self.client.aclose()

    async def _sweep(self) -> None:
        interval = min(10.0, max(0.5, self.limits.idle_seconds / 4))
        while True:
            with contextlib.suppress(SessionStoreUnavailable):
                await self.expire()
                self._ids = await self.call("index", self.client.zrange(PREFIX + "index", 0, -1))
                self._ids = [i.decode() for i in self._ids]
            await asyncio.sleep(interval)

    async def expire(self) -> list[str]:
        now = self.clock()
        cutoff = repr(now - self.limits.idle_seconds)
        script = self._scripts["EXPIRE"](keys=[PREFIX + "index"], args=[PREFIX, cutoff, repr(now)])
        gone = [i.decode() for i in await self.call("expire", script)]
        for sid in gone:
            _LOGGER.info("Session %s expired after %.0f s idle", sid, self.limits.idle_seconds)
        return gone

    def ids(self) -> list[str]:
        return list(self._ids)

    # -- sessions --------------------------------------------------------------------
    async def create(self, voice: str | None = None, speaker: int = 0, session_id: str | None = None) -> Session:
        session_id = session_id or new_id()
        cutoff = repr(self.clock() - self.limits.idle_seconds)
        result = await self._script("CREATE", session_id, cutoff, self.limits.max_sessions, voice or "", speaker)
        if result == -1:
            raise InvalidRequest(f"session {session_id!r} already exists", param="session", code="session_exists")
        if result == -2:
            raise SessionLimitReached(
                f"{self.limits.max_sessions} sessions are open, the most allowed (MAX_SESSIONS); "
                "delete one or wait for idle ones to expire"
            )
        if session_id not in self._ids:
            self._ids.append(session_id)
        now = self.clock()
        return Session(id=session_id, voice=voice, speaker=speaker, created=now, last_active=now)

    async def get(self, session_id: str, audio: bool = True) -> Session:
        if not isinstance(session_id, str):
            raise self._unknown(session_id)
        loaded = await self._script("GET", session_id, "1" if audio else "0")
        if loaded is None:
            raise self._unknown(session_id)
        return _session(session_id, *loaded)

    async def list(self) -> list[Session]:
        await self.expire()
        ids = [i.decode() for i in await self.call("list", self.client.zrange(PREFIX + "index", 0, -1))]
        self._ids = ids
        pipe = self.client.pipeline(transaction=False)
        for sid in ids:
            meta, turns, _, lock, _ = self._keys(sid)
            pipe.hgetall(meta).lrange(turns, 0, -1).exists(lock)
        replies = await self.call("list", pipe.execute()) if ids else []
        sessions = []
        for index, sid in enumerate(ids):
            meta, turns, lock = replies[3 * index : 3 * index + 3]
            if meta:  # expired between the two calls
                sessions.append(_session(sid, _flat(meta), turns, [], lock))
        return sorted(sessions, key=lambda s: s.created)

    async def delete(self, session_id: str) -> None:
        if not isinstance(session_id, str) or not await self._script("DELETE", session_id):
            raise self._unknown(session_id)
        with contextlib.suppress(ValueError):
            self._ids.remove(session_id)

    # -- turns -----------------------------------------------------------------------
    async def add_turn(self, session_id: str, turn: Turn) -> Turn:
        limits = self.limits
        seconds = turn.audio_seconds
        if seconds > limits.max_audio_seconds:
            raise SessionLimitReached(
                f"the turn has {seconds:.1f} s of audio; a session keeps at most "
                f"{limits.max_audio_seconds:g} s (SESSION_MAX_AUDIO_SECONDS)",
                param="audio",
            )
        header = json.dumps({**turn.describe(), "seconds": seconds})
        pcm = b"" if turn.audio is None else _pcm16(turn.audio)
        refuse = "1" if limits.overflow == "refuse" else "0"
        args = (header, pcm, repr(seconds), limits.max_turns, repr(limits.max_audio_seconds), refuse)
        status, _ = await self._script("ADD_TURN", session_id, *args)
        if status == -1:
            raise self._unknown(session_id)
        if status in (-2, -3):
            what = f"{limits.max_turns} turns" if status == -2 else f"{limits.max_audio_seconds:g} s of audio"
            raise SessionLimitReached(f"session {session_id} already holds {what}, its limit; start a new session")
        return turn

    @contextlib.asynccontextmanager
    async def speaking(self, session_id: str):
        """Hold the session's lock (renewed in the background) while the caller speaks."""
        if not isinstance(session_id, str):
            raise self._unknown(session_id)
        token = secrets.token_hex(16)
        lock_ms = max(1, int(self.lock_seconds * 1000))
        loaded = await self._script("ACQUIRE", session_id, token, lock_ms)
        if loaded == -1:
            raise self._unknown(session_id)
        if loaded == 0:
            raise SessionBusy(f"session {session_id} is already speaking; cancel it or wait for it to finish")
        session = _session(session_id, *loaded)
        session.speaking = True
        renewer = asyncio.create_task(self._renew(session_id, token, lock_ms), name=f"session-lock-{session_id}")
        try:
            yield session
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            with contextlib.suppress(SessionStoreUnavailable):  # the lock expires by itself
                await self._script("RELEASE", session_id, token)

    async def _renew(self, session_id: str, token: str, lock_ms: int) -> None:
        interval = min(self.lock_seconds, self.limits.idle_seconds) / 3
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(SessionStoreUnavailable):
                if not await self._script("RENEW", session_id, token, lock_ms):
                    _LOGGER.warning("Session %s: the speaking lock was lost (expired or deleted)", session_id)
                    return


def _pcm16(audio: np.ndarray) -> bytes:
    if audio.dtype == np.int16:
        return audio.astype("<i2", copy=False).tobytes()
    return np.clip(np.rint(audio * 32767.0), -32768, 32767).astype("<i2").tobytes()


def _flat(pairs) -> list:
    """HGETALL's dict as the flat list a script returns."""
    return [item for pair in pairs.items() for item in pair] if isinstance(pairs, dict) else pairs


def _session(session_id: str, meta, headers, audio, lock) -> Session:
    """A Session of what a script loaded (audio: one PCM16 blob per turn, or none at all)."""
    fields = {meta[i].decode(): meta[i + 1].decode() for i in range(0, len(meta), 2)}
    session = Session(
        id=session_id,
        voice=fields.get("voice") or None,
        speaker=int(fields.get("speaker", 0)),
        created=float(fields.get("created", 0)),
        last_active=float(fields.get("last_active", 0)),
        dropped_turns=int(fields.get("dropped_turns", 0)),
        speaking=bool(lock),
    )
    for index, raw in enumerate(headers):
        item = json.loads(raw)
        pcm = audio[index] if index < len(audio) else b""
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16) if pcm else None
        turn = Turn(
            text=item["text"],
            speaker=item["speaker"],
            audio=samples,
            sample_rate=item["sample_rate"],
            id=item["id"],
            created=item["created"],
            generated=item["generated"],
            transcribed=item["transcribed"],
            interrupted=bool(item.get("interrupted", False)),
            stored_seconds=float(item.get("seconds", 0.0)),
        )
        session.turns.append(turn)
        session.audio_seconds += turn.audio_seconds
    return session
