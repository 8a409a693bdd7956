"""Seed 003's conversation server: a session over a WebSocket (the sessions plugin's ``/v1/sessions/{id}/ws`` and
the legacy plugin's ``/ws``), with a real aiohttp WebSocket client."""

from __future__ import annotations

import asyncio
import json
import tracemalloc

import aiohttp
import numpy as np
from conversation_fakes import GatedProvider, allocated, sine, wav_b64

UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}
"""Headers of a WebSocket handshake, to see the HTTP answer to a refused one."""


async def _next_json(ws) -> dict:
    message = await ws.receive(timeout=60)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


async def _speak(ws, **fields) -> tuple[dict, list[bytes], dict]:
    """Send speak; return audio_start, the binary frames and the done message."""
    await ws.send_json({"type": "speak", **fields})
    start = await _next_json(ws)
    assert start["type"] == "audio_start", start
    frames = []
    while True:
        message = await ws.receive(timeout=60)
        if message.type == aiohttp.WSMsgType.BINARY:
            frames.append(message.data)
            continue
        return start, frames, json.loads(message.data)


async def test_conversation_over_a_websocket(url, recorder):
    async with aiohttp.ClientSession() as client:
        async with client.ws_connect(f"{url}/ws?keep=true") as ws:  # keep: the session outlives the socket
            welcome = await _next_json(ws)
            assert welcome["kept"] is True
            assert welcome["type"] == "welcome" and welcome["audio"]["frame_samples"] == 1920
            assert welcome["audio"]["encoding"] == "f32le" and welcome["audio"]["sample_rate"] == 24000
            sid = welcome["session_id"]
            await ws.send_json(
                {
                    "type": "add_turn",
                    "text": "I feel calm today.",
                    "speaker": 1,
                    "audio": wav_b64(sine(0.5, 16000), 16000),
                    "request_id": 7,
                }
            )
            added = await _next_json(ws)
            assert added["type"] == "turn_added" and added["request_id"] == 7 and added["turn"]["speaker"] == 1
            start, frames, done = await _speak(ws, text="That is good to hear. Tell me more.", speaker=0)
            assert start["provider"] == "recorder"
            assert done["type"] == "done" and done["frames"] == len(frames) and done["kept"] is True
            assert all(len(frame) == 1920 * 4 for frame in frames)
            audio = np.frombuffer(b"".join(frames), dtype="<f4")
            assert len(audio) == -(-6000 * len(list(recorder.jobs[-1].sentences)) // 1920) * 1920
            assert [s.text for s in recorder.jobs[-1].request.context] == ["I feel calm today."]
            await ws.send_json({"type": "history"})
            history = await _next_json(ws)
            turns = history["session"]["turns"]
            assert [t["id"] for t in turns][-1] == done["turn_id"] and turns[-1]["generated"] is True
        # The session outlives the socket: reconnect by id and keep talking.
        async with client.ws_connect(f"{url}/v1/sessions/{sid}/ws") as ws:
            welcome = await _next_json(ws)
            assert welcome["session_id"] == sid and welcome["turns"] == 2
            _, frames, done = await _speak(ws, text="Go on.", max_audio_length_ms=160)
            assert len(frames) == 2  # 160 ms: two 80 ms frames
            assert [s.text for s in recorder.jobs[-1].request.context][-1] == "That is good to hear. Tell me more."


async def test_first_frame_arrives_before_generation_ends_and_cancel_keeps_no_turn(url, sessions):
    session = await sessions.create(voice="gated")
    async with aiohttp.ClientSession() as client:
        async with client.ws_connect(f"{url}/ws/{session.id}") as ws:
            await _next_json(ws)
            await ws.send_json({"type": "speak", "text": "Wait for it."})
            assert (await _next_json(ws))["type"] == "audio_start"
            first = await ws.receive(timeout=60)
            assert first.type == aiohttp.WSMsgType.BINARY and len(first.data) == 7680
            assert not GatedProvider.finished.is_set()  # the provider is still held at its gate
            await ws.send_json({"type": "speak", "text": "Overlapping."})
            while (message := await ws.receive(timeout=60)).type == aiohttp.WSMsgType.BINARY:
                pass
            assert json.loads(message.data)["code"] == "session_busy"
            await ws.send_json({"type": "cancel"})
            while (message := await ws.receive(timeout=60)).type == aiohttp.WSMsgType.BINARY:
                pass
            cancelled = json.loads(message.data)
            assert cancelled["type"] == "cancelled" and cancelled["turn_id"]
            assert len((await sessions.get(session.id)).turns) == 0  # a cancelled turn never joins the history
            await ws.send_json({"type": "cancel"})
            assert (await _next_json(ws))["code"] == "not_speaking"
            GatedProvider.gate.set()
            _, frames, done = await _speak(ws, text="Now all of it.")
            assert done["type"] == "done" and len(frames) == 5  # 2 × 4800 samples → 5 frames of 1920
            assert [t.id for t in (await sessions.get(session.id)).turns] == [done["turn_id"]]


async def test_wrong_messages_get_error_messages_and_the_socket_stays_open(url, sessions):
    bad = [
        ("not json", "invalid_json"),
        (json.dumps([1, 2]), "invalid_message"),
        (json.dumps({"type": "dance"}), "invalid_message"),
        (json.dumps({"type": "speak"}), "missing_required_parameter"),
        (json.dumps({"type": "speak", "text": "x", "voice": "ghost"}), "voice_not_found"),
        (json.dumps({"type": "speak", "text": "   "}), "empty_input"),
        (json.dumps({"type": "add_turn", "text": "t", "audio": "***"}), "invalid_base64"),
        (json.dumps({"type": "add_turn", "text": "t", "audio": "aGVsbG8="}), "invalid_audio"),
        (json.dumps({"type": "add_turn", "text": "t", "speaker": True}), "unknown_speaker"),
        (json.dumps({"type": "add_turn"}), "empty_turn"),
        (json.dumps({"type": "add_turn", "audio": wav_b64(sine(0.3, 16000), 16000)}), "transcript_required"),
    ]
    async with aiohttp.ClientSession() as client:
        async with client.ws_connect(f"{url}/ws") as ws:
            sid = (await _next_json(ws))["session_id"]
            for data, code in bad:
                await ws.send_str(data)
                error = await _next_json(ws)
                assert error["type"] == "error" and error["code"] == code and error["message"], (data, error)
            await ws.send_bytes(b"\x00\x01")  # microphone audio before its format was declared
            assert (await _next_json(ws))["code"] == "audio_format_required"
            other = await sessions.create()
            await sessions.delete(sid)  # deleted (or expired) under an open socket
            await ws.send_json({"type": "add_turn", "text": "hello"})
            assert (await _next_json(ws))["code"] == "session_not_found"
            assert len((await sessions.get(other.id)).turns) == 0  # other sessions untouched
        async with client.ws_connect(f"{url}/ws/{other.id}") as ws:
            await _next_json(ws)
            await ws.send_json({"type": "add_turn", "text": "The socket still works."})
            assert (await _next_json(ws))["type"] == "turn_added"
        async with client.get(f"{url}/ws/no-such-session", headers=UPGRADE) as response:
            assert response.status == 404 and (await response.json())["code"] == "session_not_found"
        before = len(await sessions.list())
        async with client.get(f"{url}/ws") as response:  # plain HTTP: no session is made for it
            assert response.status == 400 and (await response.json())["code"] == "websocket_expected"
        assert len(await sessions.list()) == before


async def test_a_session_survives_1000_turns_within_its_bounds_with_flat_memory(start_sessions):
    # No CSM or Wyoming: their start-up imports would land inside the measured interval.
    async with start_sessions(
        sessions={"max_turns": 40, "max_audio_seconds": 10.0}, disabled_plugins=("csm", "wyoming")
    ) as server:
        url = f"http://127.0.0.1:{server.http_port}"
        audio = wav_b64(sine(0.5, 16000), 16000)
        async with aiohttp.ClientSession() as client:
            async with client.ws_connect(f"{url}/ws?keep=1") as ws:
                sid = (await _next_json(ws))["session_id"]

                async def turns(count: int, start: int) -> None:
                    for index in range(start, start + count):
                        if index % 50 == 49:
                            _, _, done = await _speak(ws, text=f"Reply {index}.")
                            assert done["type"] == "done"
                        else:
                            await ws.send_json({"type": "add_turn", "text": f"Turn {index}.", "audio": audio})
                            assert (await _next_json(ws))["type"] == "turn_added"

                await turns(200, 0)
                # Every provider's preload (Piper's takes seconds) ends before the measured interval.
                for _ in range(1200):
                    if all(p.state not in ("idle", "loading") for p in server.providers.values()):
                        break
                    await asyncio.sleep(0.1)
                tracemalloc.start()
                await turns(50, 200)
                after_250 = allocated()
                await turns(750, 250)
                after_1000 = allocated()
                tracemalloc.stop()
        session = await server.service("sessions").get(sid)
        assert len(session.turns) <= 40 and session.audio_seconds <= 10.0
        assert session.dropped_turns + len(session.turns) == 1000
        assert session.turns[-1].text == "Reply 999." and session.turns[-1].generated
        assert len(server.providers["recorder"].jobs[-1].request.context) <= 40
    # 750 more turns (6 MB of audio sent) may not grow what stays allocated by more than 1 MB.
    assert after_1000 - after_250 < 1_000_000, (after_250, after_1000)


async def test_websocket_session_limit_is_refused_before_upgrade(start_sessions):
    async with start_sessions(sessions={"max_sessions": 1}) as server:
        url = f"http://127.0.0.1:{server.http_port}"
        async with aiohttp.ClientSession() as client:
            async with client.ws_connect(f"{url}/ws") as ws:
                await _next_json(ws)
                async with client.get(f"{url}/ws", headers=UPGRADE) as response:
                    assert response.status == 409 and (await response.json())["code"] == "session_limit"
                await ws.send_json({"type": "history"})
                assert (await _next_json(ws))["type"] == "history"  # the first client is untouched


async def test_sessions_a_socket_made_end_with_it_so_40_connections_fit_in_32(start_sessions):
    async with start_sessions() as server:
        url, sessions = f"http://127.0.0.1:{server.http_port}", server.service("sessions")
        assert sessions.limits.max_sessions == 32
        async with aiohttp.ClientSession() as client:
            for index in range(40):
                async with client.ws_connect(f"{url}/ws") as ws:
                    welcome = await _next_json(ws)
                    assert welcome["kept"] is False
                    await ws.send_json({"type": "add_turn", "text": f"Hello {index}."})
                    assert (await _next_json(ws))["type"] == "turn_added"
                sid = welcome["session_id"]
                for _ in range(100):  # the server notices the close a moment after the client
                    if sid not in [s.id for s in await sessions.list()]:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"the session of connection {index} outlived its socket")
            async with client.ws_connect(f"{url}/ws?keep=true") as ws:
                kept = (await _next_json(ws))["session_id"]
            async with client.ws_connect(f"{url}/ws/{kept}") as ws:  # joined by id: never deleted on close
                assert (await _next_json(ws))["session_id"] == kept
        await asyncio.sleep(0.2)
        assert [s.id for s in await sessions.list()] == [kept]
