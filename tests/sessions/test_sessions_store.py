"""The in-memory store through the ``SessionStore`` interface: bounds, the one-speech lock, expiry, errors."""

from __future__ import annotations

import numpy as np
import pytest

from sesame_voice import Conflict, InvalidRequest, NotFound
from sesame_voice.http.routes import error_status
from sesame_voice_sessions import MemorySessionStore, SessionLimits, SessionStore, Turn
from sesame_voice_sessions.models import SessionBusy, SessionLimitReached, UnknownSession


def _store(**limits) -> tuple[MemorySessionStore, list[float]]:
    clock = [1000.0]
    values = {
        "idle_seconds": 60.0,
        "max_sessions": 2,
        "max_turns": 3,
        "max_audio_seconds": 2.0,
        "overflow": "drop_oldest",
        "persist": False,
        **limits,
    }
    return MemorySessionStore(SessionLimits(**values), clock=lambda: clock[0]), clock


def _turn(text: str, seconds: float = 0.0) -> Turn:
    audio = np.zeros(int(seconds * 8000), np.float32) if seconds else None
    return Turn(text=text, audio=audio, sample_rate=8000 if seconds else None)


def test_the_memory_store_implements_the_interface():
    store, _ = _store()
    assert isinstance(store, SessionStore)
    assert not isinstance(object(), SessionStore)


async def test_errors_are_404_and_409_by_the_core_mapping():
    store, _ = _store()
    await store.create(session_id="a")
    with pytest.raises(InvalidRequest) as taken:
        await store.create(session_id="a")
    assert taken.value.code == "session_exists" and error_status(taken.value) == 400
    await store.create()
    with pytest.raises(SessionLimitReached) as full:
        await store.create()
    with pytest.raises(UnknownSession) as unknown:
        await store.get("nope")
    assert isinstance(full.value, Conflict) and error_status(full.value) == 409
    assert isinstance(unknown.value, NotFound) and error_status(unknown.value) == 404
    with pytest.raises(UnknownSession):
        await store.delete("nope")
    await store.delete("a")
    assert len(await store.list()) == 1 and len(store.ids()) == 1


async def test_one_speech_at_a_time_and_a_speaking_session_never_expires():
    store, clock = _store()
    session = await store.create()
    async with store.speaking(session.id) as speaking:
        assert speaking.speaking
        with pytest.raises(SessionBusy) as busy:
            async with store.speaking(session.id):
                pass
        assert error_status(busy.value) == 409
        clock[0] += 3600
        assert await store.expire() == []  # it speaks: kept however long that takes
    assert not (await store.get(session.id)).speaking
    async with store.speaking(session.id):  # released: it may speak again
        pass
    clock[0] += 61
    assert await store.expire() == [session.id]
    with pytest.raises(UnknownSession, match="expired"):
        await store.get(session.id)


async def test_turns_roll_within_the_bounds_or_are_refused():
    store, _ = _store()
    session = await store.create()
    for index in range(5):
        await store.add_turn(session.id, _turn(f"t{index}", 0.75))
    kept = await store.get(session.id)
    assert [t.text for t in kept.turns] == ["t3", "t4"] and kept.audio_seconds == 1.5 and kept.dropped_turns == 3
    with pytest.raises(SessionLimitReached, match="SESSION_MAX_AUDIO_SECONDS"):
        await store.add_turn(session.id, _turn("long", 2.5))
    refusing, _ = _store(overflow="refuse")
    other = await refusing.create()
    for text in ("a", "b", "c"):
        await refusing.add_turn(other.id, _turn(text))
    with pytest.raises(SessionLimitReached, match="3 turns"):
        await refusing.add_turn(other.id, _turn("d"))
    assert [t.text for t in (await refusing.get(other.id)).turns] == ["a", "b", "c"]
