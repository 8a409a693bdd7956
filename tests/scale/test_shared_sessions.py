"""Two real ``sesame-voice serve`` replicas (Piper) sharing a real ``redis-server`` and a voices folder.

Sessions continue on whichever replica a request reaches; a replica killed mid-session loses
nothing it acknowledged; one speech at a time holds across replicas; Redis going away is a 503
with a reason and coming back is business as usual; a voice created on one replica speaks on the other.
"""

from __future__ import annotations

import asyncio
import io
import json
import signal

import aiohttp
import numpy as np
import pytest
import soundfile as sf
from redis_server import RedisServer, needs_redis
from replicas import free_port, spawn_server, stop, wait_for

from support import SENTENCES

pytestmark = needs_redis
LONG_TEXT = " ".join(SENTENCES * 6)
TIMEOUT = aiohttp.ClientTimeout(total=120)


def _replica(root, name: str, redis: RedisServer, voices) -> tuple[str, object]:
    port = free_port()
    process = spawn_server(
        root / name,
        port,
        SESSION_STORE=redis.url,
        SESSION_STORE_TIMEOUT="1",
        SESSION_LOCK_SECONDS="3",
        VOICES_DIR=str(voices),
        VOICES_POLL_INTERVAL="0.5",
        # CSM enabled (it cannot load without weights here) so that the API can create cloned
        # voices; Piper speaks them as their fallback, as for a dropped-in clip.
        DISABLED_PLUGINS="whisper",
    )
    return f"http://127.0.0.1:{port}", process


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(redis, {"A": url, "B": url}, spawn) — spawn(name) starts one more replica of the same setup."""
    root = tmp_path_factory.mktemp("shared")
    redis = RedisServer(root / "redis")
    redis.start()
    voices = root / "voices"
    voices.mkdir()
    processes = []

    def spawn(name: str) -> tuple[str, object]:
        """Start a replica (wait for ``/health/ready`` before use)."""
        url, process = _replica(root, name, redis, voices)
        processes.append(process)
        return url, process

    try:
        urls = {}
        for name in ("A", "B"):
            urls[name], process = spawn(name)
            asyncio.run(wait_for(f"{urls[name]}/health/ready", process, timeout=180))
        yield redis, urls, spawn
    finally:
        for process in processes:
            stop(process)
        redis.stop()


async def _json(http, method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    async with http.request(method, url, json=body) as response:
        return response.status, (await response.json() if response.status != 204 else {})


async def _speak(http, base: str, session_id: str, text: str) -> tuple[int, bytes, dict]:
    async with http.post(f"{base}/v1/sessions/{session_id}/speak", json={"text": text}) as response:
        return response.status, await response.read(), dict(response.headers)


def _audio(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert len(samples) / rate > 0.5 and np.abs(samples).max() > 0.05
    return samples, rate


async def _next_json(ws) -> dict:
    while True:
        message = await ws.receive(timeout=120)
        if message.type == aiohttp.WSMsgType.TEXT:
            return json.loads(message.data)
        assert message.type == aiohttp.WSMsgType.BINARY, message


async def test_a_session_continues_on_whichever_replica_a_request_reaches(cluster):
    _, urls, _ = cluster
    a, b = urls["A"], urls["B"]
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        status, session = await _json(http, "POST", f"{a}/v1/sessions", {"speaker": 0})
        assert status == 201
        sid = session["id"]
        status, turn = await _json(
            http, "POST", f"{b}/v1/sessions/{sid}/turns", {"text": "I had a long day.", "speaker": 1}
        )
        assert status == 201
        status, audio, headers = await _speak(http, a, sid, SENTENCES[0])
        assert status == 200 and headers["X-Sesame-Provider"] == "piper"
        _, rate = _audio(audio)
        for replica in (a, b):
            status, seen = await _json(http, "GET", f"{replica}/v1/sessions/{sid}")
            assert status == 200
            assert [(t["id"], t["text"]) for t in seen["turns"]] == [
                (turn["id"], "I had a long day."),
                (headers["X-Sesame-Turn-Id"], SENTENCES[0]),
            ]
            spoken = seen["turns"][1]
            assert spoken["generated"] and spoken["sample_rate"] == rate and spoken["audio_seconds"] > 0.5
        status, listed = await _json(http, "GET", f"{b}/v1/sessions")
        assert sid in [s["id"] for s in listed["sessions"]]


async def test_a_websocket_rejoins_on_the_other_replica(cluster):
    _, urls, _ = cluster
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        async with http.ws_connect(f"{urls['A']}/ws?keep=true") as ws:
            welcome = await _next_json(ws)
            assert welcome["type"] == "welcome" and welcome["kept"] is True
            sid = welcome["session_id"]
            await ws.send_json({"type": "add_turn", "text": "Good morning.", "speaker": 1})
            assert (await _next_json(ws))["type"] == "turn_added"
            await ws.send_json({"type": "speak", "text": SENTENCES[1]})
            assert (await _next_json(ws))["type"] == "audio_start"
            done = await _next_json(ws)
            assert done["type"] == "done" and done["kept"] is True
            await ws.send_json({"type": "history"})
            before = (await _next_json(ws))["session"]["turns"]
        async with http.ws_connect(f"{urls['B']}/v1/sessions/{sid}/ws") as ws:
            welcome = await _next_json(ws)
            assert welcome["session_id"] == sid and welcome["turns"] == 2
            await ws.send_json({"type": "history"})
            after = (await _next_json(ws))["session"]["turns"]
    assert after == before and [t["text"] for t in after] == ["Good morning.", SENTENCES[1]]


async def test_one_speech_at_a_time_across_replicas(cluster):
    _, urls, _ = cluster
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        _, session = await _json(http, "POST", f"{urls['A']}/v1/sessions")
        sid = session["id"]
        async with http.ws_connect(f"{urls['A']}/v1/sessions/{sid}/ws") as ws:
            await _next_json(ws)
            await ws.send_json({"type": "speak", "text": LONG_TEXT})
            assert (await _next_json(ws))["type"] == "audio_start"
            status, busy = await _json(http, "POST", f"{urls['B']}/v1/sessions/{sid}/speak", {"text": "Me too."})
            done = await _next_json(ws)
        assert (status, busy["code"]) == (409, "session_busy") and done["type"] == "done"
        status, audio, _ = await _speak(http, urls["B"], sid, "Now me.")  # released: B may speak
        assert status == 200
        _audio(audio)


async def test_a_replica_killed_mid_session_loses_nothing_acknowledged(cluster):
    _, urls, spawn = cluster
    c, process = spawn("C")
    await wait_for(f"{c}/health/ready", process, timeout=180)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        _, session = await _json(http, "POST", f"{c}/v1/sessions")
        sid = session["id"]
        acknowledged = []
        for index in range(3):
            status, turn = await _json(http, "POST", f"{c}/v1/sessions/{sid}/turns", {"text": f"Turn {index}."})
            assert status == 201
            acknowledged.append(turn["id"])
        async with http.ws_connect(f"{c}/v1/sessions/{sid}/ws") as ws:
            await _next_json(ws)
            await ws.send_json({"type": "speak", "text": LONG_TEXT})
            assert (await _next_json(ws))["type"] == "audio_start"
            process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(process.wait, 30)
        status, seen = await _json(http, "GET", f"{urls['B']}/v1/sessions/{sid}")
        assert status == 200 and [t["id"] for t in seen["turns"]] == acknowledged
        # The dead replica's speaking lock expires (SESSION_LOCK_SECONDS=3): B is busy until then, never forever.
        statuses = []
        for _ in range(120):
            status, audio, _ = await _speak(http, urls["B"], sid, "Still here.")
            statuses.append(status)
            if status != 409:
                break
            await asyncio.sleep(0.25)
        assert statuses[-1] == 200 and set(statuses[:-1]) <= {409}
        _audio(audio)
        _, seen = await _json(http, "GET", f"{urls['A']}/v1/sessions/{sid}")
        assert [t["text"] for t in seen["turns"]] == ["Turn 0.", "Turn 1.", "Turn 2.", "Still here."]


async def test_redis_down_is_a_503_with_a_reason_and_back_up_works_again(cluster):
    redis, urls, _ = cluster
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        _, session = await _json(http, "POST", f"{urls['A']}/v1/sessions")
        sid = session["id"]
        assert (await _json(http, "POST", f"{urls['A']}/v1/sessions/{sid}/turns", {"text": "Before."}))[0] == 201
        redis.stop()
        try:
            for method, url, body in (
                ("POST", f"{urls['B']}/v1/sessions/{sid}/turns", {"text": "During."}),
                ("POST", f"{urls['A']}/v1/sessions/{sid}/speak", {"text": "During."}),
                ("GET", f"{urls['B']}/v1/sessions", None),
                ("POST", f"{urls['A']}/v1/sessions", {}),
            ):
                async with http.request(method, url, json=body) as response:
                    answer = await response.json()
                    assert response.status == 503 and response.headers["Retry-After"] == "1", answer
                assert answer["code"] == "session_store_unavailable" and "unavailable" in answer["detail"]
            async with http.get(f"{urls['A']}/health/live") as response:
                assert response.status == 200  # the process itself is fine
        finally:
            redis.start()
        status, turn = await _json(http, "POST", f"{urls['B']}/v1/sessions/{sid}/turns", {"text": "After."})
        assert status == 201
        status, audio, _ = await _speak(http, urls["A"], sid, "Back again.")
        assert status == 200
        _audio(audio)
        _, seen = await _json(http, "GET", f"{urls['B']}/v1/sessions/{sid}")
    # The refused turns were never stored; everything acknowledged before and after survived the restart.
    assert [t["text"] for t in seen["turns"]] == ["Before.", "After.", "Back again."]


async def test_a_voice_created_on_one_replica_speaks_on_the_other(cluster):
    _, urls, _ = cluster
    body = {"model": "tts-1", "input": SENTENCES[2], "voice": "conversational", "response_format": "wav"}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        async with http.post(f"{urls['A']}/v1/audio/speech", json=body) as response:
            assert response.status == 200
            clip = await response.read()
        form = aiohttp.FormData()
        form.add_field("name", "shared")
        form.add_field("transcript", SENTENCES[2])
        form.add_field("file", clip, filename="clip.wav", content_type="audio/wav")
        async with http.post(f"{urls['A']}/v1/audio/voices", data=form) as response:
            assert response.status == 201, await response.text()
        for _ in range(240):  # B's watcher polls the shared folder every VOICES_POLL_INTERVAL (0.5 s)
            async with http.get(f"{urls['B']}/v1/audio/voices") as response:
                if "shared" in [v["id"] for v in (await response.json())["data"]]:
                    break
            await asyncio.sleep(0.25)
        else:
            raise AssertionError("replica B never listed the voice created on A")
        speech = {**body, "voice": "shared", "input": "Hello from the other replica."}
        async with http.post(f"{urls['B']}/v1/audio/speech", json=speech) as response:
            assert response.status == 200 and response.headers["X-Sesame-Voice"] == "shared"
            _audio(await response.read())
