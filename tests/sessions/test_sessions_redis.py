"""Two servers in one process sharing a real ``redis-server`` (the recording provider shows each job's
context): a turn added on one is in the context of a speech on the other; uploads are kept compact."""

from __future__ import annotations

import aiohttp
import numpy as np
import pytest
import redis
from conversation_fakes import sine, wav_b64
from redis_server import REDIS_SERVER, RedisServer


@pytest.fixture
def redis_url(tmp_path):
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server.url
    server.stop()


async def _post(http, url: str, body: dict) -> tuple[int, dict]:
    async with http.post(url, json=body) as response:
        return response.status, await response.json() if response.content_type == "application/json" else {}


async def test_a_turn_added_on_one_server_is_context_on_the_other(start_sessions, redis_url):
    async with start_sessions(sessions={"store": redis_url}) as a, start_sessions(sessions={"store": redis_url}) as b:
        url_a, url_b = (f"http://127.0.0.1:{s.http_port}" for s in (a, b))
        async with aiohttp.ClientSession() as http:
            status, session = await _post(http, f"{url_a}/v1/sessions", {})
            assert status == 201
            sid = session["id"]
            upload = wav_b64(sine(1.0, 48000), 48000)
            status, turn = await _post(
                http, f"{url_b}/v1/sessions/{sid}/turns", {"text": "Hi from B.", "speaker": 1, "audio": upload}
            )
            # Kept at the recorder's context rate (16 kHz), as 16-bit PCM: a third of the 48 kHz upload.
            assert status == 201 and turn["sample_rate"] == 16000 and turn["audio_seconds"] == 1.0
            async with http.post(f"{url_a}/v1/sessions/{sid}/speak", json={"text": "Hello from A."}) as response:
                assert response.status == 200
                await response.read()
        context = a.providers["recorder"].jobs[-1].request.context
        assert [(s.text, s.speaker) for s in context] == [("Hi from B.", 1)]
        assert context[0].sample_rate == 16000 and len(context[0].audio) == 16000
        assert context[0].audio.dtype == np.float32 and 0.45 < float(np.abs(context[0].audio).max()) < 0.55
        raw = redis.Redis.from_url(redis_url)
        assert len(raw.lindex(f"sesame-voice:session:{{{sid}}}:audio", 0)) == 32000
        assert [t.text for t in (await b.service("sessions").get(sid)).turns] == ["Hi from B.", "Hello from A."]
        assert len(b.service("sessions").store.ids()) <= 1  # the background refresh may not have run yet


async def test_the_memory_store_keeps_uploads_compact_too(start_sessions):
    async with start_sessions() as server:
        sessions = server.service("sessions")
        session = await sessions.create(voice="recorder")
        turn = await sessions.add_turn(session.id, text="Loud.", audio=sine(1.0, 192000), sample_rate=192000)
        assert turn.sample_rate == 16000 and turn.audio.dtype == np.int16 and len(turn.audio) == 16000
