"""Both stores (memory, and Redis on a real ``redis-server``) through the ``SessionStore`` interface:
bounds, the one-speech lock, expiry, errors, audio kept as PCM16."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest
from redis_server import REDIS_SERVER, RedisServer

from sesame_voice import Conflict, InvalidRequest, NotFound
from sesame_voice.http.routes import error_status
from sesame_voice_sessions import MemorySessionStore, SessionLimits, SessionStore, Turn
from sesame_voice_sessions.models import SessionBusy, SessionLimitReached, UnknownSession


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(params=["memory", "redis"])
def make_store(request):
    """``make_store(**limits) -> (store, clock)``: each test runs on both stores (Redis flushed first)."""
    url = None
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        import redis

        redis.Redis.from_url(url).flushall()

    def make(**limits):
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
        if url is None:
            return MemorySessionStore(SessionLimits(**values), clock=lambda: clock[0]), clock
        from sesame_voice_sessions.redis_store import RedisSessionStore

        return RedisSessionStore(SessionLimits(**values), url, clock=lambda: clock[0]), clock

    return make


def _turn(text: str, seconds: float = 0.0) -> Turn:
    audio = np.zeros(int(seconds * 8000), np.int16) if seconds else None
    return Turn(text=text, audio=audio, sample_rate=8000 if seconds else None)


def test_both_stores_implement_the_interface(make_store):
    store, _ = make_store()
    assert isinstance(store, SessionStore)
    assert not isinstance(object(), SessionStore)


async def test_errors_are_404_and_409_by_the_core_mapping(make_store):
    store, _ = make_store()
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


async def test_one_speech_at_a_time_and_a_speaking_session_never_expires(make_store):
    store, clock = make_store()
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


async def test_turns_roll_within_the_bounds_or_are_refused(make_store):
    store, _ = make_store()
    session = await store.create()
    for index in range(5):
        await store.add_turn(session.id, _turn(f"t{index}", 0.75))
    kept = await store.get(session.id)
    assert [t.text for t in kept.turns] == ["t3", "t4"] and kept.audio_seconds == 1.5 and kept.dropped_turns == 3
    with pytest.raises(SessionLimitReached, match="SESSION_MAX_AUDIO_SECONDS"):
        await store.add_turn(session.id, _turn("long", 2.5))
    refusing, _ = make_store(overflow="refuse")
    other = await refusing.create()
    for text in ("a", "b", "c"):
        await refusing.add_turn(other.id, _turn(text))
    with pytest.raises(SessionLimitReached, match="3 turns"):
        await refusing.add_turn(other.id, _turn("d"))
    assert [t.text for t in (await refusing.get(other.id)).turns] == ["a", "b", "c"]


async def test_audio_is_kept_as_pcm16_and_read_back_exactly(make_store):
    store, _ = make_store()
    session = await store.create()
    tone = np.rint(8000 * np.sin(np.arange(4000) / 5.0)).astype(np.int16)
    await store.add_turn(session.id, Turn(text="hum", audio=tone, sample_rate=8000))
    await store.add_turn(session.id, Turn(text="words only"))
    turns = list((await store.get(session.id)).turns)
    assert turns[0].audio.dtype == np.int16 and np.array_equal(turns[0].audio, tone)
    assert turns[0].audio_seconds == 0.5 and turns[1].audio is None and turns[1].audio_seconds == 0
    segment = turns[0].segment()
    assert segment.audio.dtype == np.float32 and np.allclose(segment.audio * 32768, tone)
    described = (await store.get(session.id, audio=False)).describe(with_turns=True)
    assert [t["audio_seconds"] for t in described["turns"]] == [0.5, 0]


async def test_redis_keeps_two_bytes_a_sample_with_idle_ttls(make_store, request):
    if request.node.callspec.params["make_store"] != "redis":
        pytest.skip("what Redis holds")
    import redis

    store, _ = make_store()
    session = await store.create()
    await store.add_turn(session.id, Turn(text="hum", audio=np.ones(24000, np.int16), sample_rate=24000))
    raw = redis.Redis.from_url(store.url)
    key = f"sesame-voice:session:{{{session.id}}}:"
    assert len(raw.lindex(key + "audio", 0)) == 48000
    assert 0 < raw.pttl(key + "meta") <= 60_000 and 0 < raw.pttl(key + "audio") <= 60_000


async def test_a_lock_left_by_a_crashed_replica_expires(make_store, request):
    if request.node.callspec.params["make_store"] != "redis":
        pytest.skip("the lock of a shared store")
    import redis

    store, _ = make_store()
    session = await store.create()
    redis.Redis.from_url(store.url).set(f"sesame-voice:session:{{{session.id}}}:lock", "dead-replica", px=300)
    with pytest.raises(SessionBusy):
        async with store.speaking(session.id):
            pass
    for _ in range(200):
        try:
            async with store.speaking(session.id) as speaking:
                assert speaking.id == session.id
                break
        except SessionBusy:
            await asyncio.sleep(0.05)
    else:
        raise AssertionError("the crashed replica's lock never expired")


async def test_an_unreachable_or_silent_redis_is_a_503_not_a_hang():
    from sesame_voice_sessions.redis_store import RedisSessionStore, SessionStoreUnavailable

    limits = SessionLimits(60.0, 2, 3, 2.0, "drop_oldest", False)
    silent = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)  # accepts, never answers
    port = silent.sockets[0].getsockname()[1]
    async with silent:
        for url in (f"redis://127.0.0.1:{port}/0", f"redis://:secret@127.0.0.1:{_closed_port()}/0"):
            store = RedisSessionStore(limits, url, timeout=0.5)
            with pytest.raises(SessionStoreUnavailable) as failed:
                await store.create()
            assert error_status(failed.value) == 503 and failed.value.code == "session_store_unavailable"
            assert "unavailable" in str(failed.value) and "secret" not in str(failed.value)
            await store.client.aclose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_store_url_redis_cannot_serve_is_refused_at_start():
    from sesame_voice.config import ConfigError, Settings
    from sesame_voice_sessions import SessionSettings, make_store
    from sesame_voice_sessions.redis_store import RedisSessionStore

    def options(store: str) -> SessionSettings:
        return SessionSettings.from_settings(Settings(plugins={"sessions": {"store": store}}))

    with pytest.raises(ConfigError, match="SESSION_STORE"):
        options("http://localhost:6379")
    with pytest.raises(ConfigError, match="must be one of memory"):
        make_store(options("elsewhere"), Settings())
    store = make_store(options("rediss://:pw@cache.example:6380/2"), Settings())
    assert isinstance(store, RedisSessionStore) and store.timeout == 2.0 and store.lock_seconds == 15.0
