"""Conversation sessions over REST, the OpenAI extension, bounds, expiry, persistence and history trimming."""

from __future__ import annotations

import base64
import json

import aiohttp
import numpy as np
import pytest
from conversation_fakes import WordsStt, WordsSttPlugin, read_audio, sine, wav_b64


async def _call(method: str, url: str, **kwargs) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as client:
        async with client.request(method, url, **kwargs) as response:
            return response.status, dict(response.headers), await response.read()


async def _json(method: str, url: str, **kwargs) -> tuple[int, dict]:
    status, _, body = await _call(method, url, **kwargs)
    return status, json.loads(body) if body else {}


async def test_session_lifecycle_and_speaking_conditions_on_history(url, recorder):
    status, session = await _json("POST", f"{url}/v1/sessions", json={"speaker": 1})
    assert status == 201 and session["turns"] == [] and session["voice"] == "recorder"
    sid = session["id"]
    status, turn = await _json(
        "POST",
        f"{url}/v1/sessions/{sid}/turns",
        json={"text": "Hi there.", "speaker": 0, "audio": wav_b64(sine(1.0, 8000, 440), 8000)},
    )
    assert status == 201 and turn["audio_seconds"] == 1.0 and turn["sample_rate"] == 8000
    status, headers, audio = await _call("POST", f"{url}/v1/sessions/{sid}/speak", json={"text": "Hello back."})
    assert status == 200 and headers["Content-Type"] == "audio/wav"
    spoken_id = headers["X-Sesame-Turn-Id"]
    assert len(read_audio(audio)[0]) == 4000
    first_job = recorder.jobs[-1]
    assert [s.text for s in first_job.request.context] == ["Hi there."]
    assert first_job.request.context[0].sample_rate == 16000  # resampled to the provider's context rate
    assert first_job.params["speaker"] == 1  # the session's speaker
    status, _, _ = await _call("POST", f"{url}/v1/sessions/{sid}/speak", json={"text": "And again.", "speaker": 0})
    second_job = recorder.jobs[-1]
    assert [(s.text, s.speaker) for s in second_job.request.context] == [("Hi there.", 0), ("Hello back.", 1)]
    assert len(second_job.request.context[1].audio) == 4000  # the generated turn's own audio
    status, info = await _json("GET", f"{url}/v1/sessions/{sid}")
    assert [t["text"] for t in info["turns"]] == ["Hi there.", "Hello back.", "And again."]
    assert info["turns"][1]["id"] == spoken_id and info["turns"][1]["generated"] is True
    status, listing = await _json("GET", f"{url}/v1/sessions")
    assert [s["id"] for s in listing["sessions"]] == [sid] and listing["sessions"][0]["turn_count"] == 3
    assert (await _call("DELETE", f"{url}/v1/sessions/{sid}"))[0] == 204
    status, error = await _json("GET", f"{url}/v1/sessions/{sid}")
    assert status == 404 and error["code"] == "session_not_found"


async def test_history_is_trimmed_oldest_first_to_the_providers_window(url, recorder):
    status, session = await _json("POST", f"{url}/v1/sessions", json={"voice": "small-window"})
    sid = session["id"]
    for index in range(6):
        await _json(
            "POST",
            f"{url}/v1/sessions/{sid}/turns",
            json={"text": f"Turn {index}.", "audio": wav_b64(sine(1.0, 16000), 16000)},
        )
    await _call("POST", f"{url}/v1/sessions/{sid}/speak", json={"text": "Now."})
    assert [s.text for s in recorder.jobs[-1].request.context] == ["Turn 3.", "Turn 4.", "Turn 5."]  # 3 s window
    status, info = await _json("GET", f"{url}/v1/sessions/{sid}")
    assert info["turn_count"] == 7  # the history itself is kept; only what the model sees is trimmed


async def test_providers_without_context_still_speak_in_a_session(url, server):
    status, session = await _json("POST", f"{url}/v1/sessions", json={"voice": "tone"})
    sid = session["id"]
    await _json("POST", f"{url}/v1/sessions/{sid}/turns", json={"text": "Context the tone provider ignores."})
    status, headers, audio = await _call("POST", f"{url}/v1/sessions/{sid}/speak", json={"text": "Beep."})
    assert status == 200 and headers["X-Sesame-Provider"] == "tone" and len(read_audio(audio)[0]) == 12000


async def test_openai_endpoint_speaks_within_a_session(url, recorder):
    from openai import AsyncOpenAI, NotFoundError

    status, session = await _json("POST", f"{url}/v1/sessions")
    sid = session["id"]
    await _json("POST", f"{url}/v1/sessions/{sid}/turns", json={"text": "What time is it?", "speaker": 1})
    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        response = await client.audio.speech.with_raw_response.create(
            model="csm-1b",
            voice="recorder",
            input="It is noon.",
            response_format="wav",
            extra_body={"session": sid, "speaker": 0},
        )
        assert len(read_audio(response.content)[0]) == 4000
        assert [s.text for s in recorder.jobs[-1].request.context] == ["What time is it?"]
        status, info = await _json("GET", f"{url}/v1/sessions/{sid}")
        assert [(t["text"], t["speaker"]) for t in info["turns"]] == [("What time is it?", 1), ("It is noon.", 0)]
        with pytest.raises(NotFoundError) as caught:  # 404, as over REST
            await client.audio.speech.create(
                model="csm-1b", voice="recorder", input="x", extra_body={"session": "nope"}
            )
    assert caught.value.body["code"] == "session_not_found"


async def test_audio_only_turns_need_a_speech_to_text_service(url, server, start_sessions):
    status, session = await _json("POST", f"{url}/v1/sessions")
    sid = session["id"]
    audio = wav_b64(sine(0.5, 16000), 16000)
    status, error = await _json("POST", f"{url}/v1/sessions/{sid}/turns", json={"audio": audio})
    assert status == 400 and error["code"] == "transcript_required" and "text" in error["detail"]

    WordsStt.calls.clear()
    async with start_sessions(plugins=(WordsSttPlugin(),)) as other_server:  # a speech-to-text provider installed
        other = f"http://127.0.0.1:{other_server.http_port}"
        status, session = await _json("POST", f"{other}/v1/sessions")
        status, turn = await _json(
            "POST", f"{other}/v1/sessions/{session['id']}/turns", json={"audio": audio, "speaker": 1}
        )
        assert status == 201 and turn["text"] == "words heard in the audio" and turn["transcribed"] is True
    assert WordsStt.calls == [(8000, 16000)]


async def test_session_bad_input_and_bounds(start_sessions):
    clock = [1000.0]
    async with start_sessions(
        sessions={"max_sessions": 2, "max_turns": 3, "max_audio_seconds": 2.0, "idle_seconds": 60}
    ) as server:
        server.service("sessions").store.clock = lambda: clock[0]
        url = f"http://127.0.0.1:{server.http_port}"
        _, first = await _json("POST", f"{url}/v1/sessions")
        _, second = await _json("POST", f"{url}/v1/sessions", json={"id": "my-session"})
        assert second["id"] == "my-session"
        status, error = await _json("POST", f"{url}/v1/sessions")
        assert status == 409 and error["code"] == "session_limit" and "MAX_SESSIONS" in error["detail"]
        sid = first["id"]
        cases = [
            ({"text": "t", "audio": "@@@"}, 400, "invalid_base64"),
            ({"text": "t", "audio": base64.b64encode(b"not a wav file").decode()}, 400, "invalid_audio"),
            ({"text": "t", "audio": wav_b64(sine(3.0, 8000), 8000)}, 409, "session_limit"),
            ({"text": "t", "speaker": "x"}, 400, "unknown_speaker"),
            ({}, 400, "empty_turn"),
            ({"text": 3}, 400, "invalid_request"),
        ]
        for body, want_status, code in cases:
            status, error = await _json("POST", f"{url}/v1/sessions/{sid}/turns", json=body)
            assert (status, error["code"]) == (want_status, code), body
        for path, body in [("speak", {"text": "x", "voice": "ghost"}), ("speak", {"speaker": 0})]:
            status, error = await _json("POST", f"{url}/v1/sessions/{sid}/{path}", json=body)
            assert status == 400, error
        status, error = await _json("POST", f"{url}/v1/sessions", json={"id": "bad id!"})
        assert status == 400
        status, error = await _json("POST", f"{url}/v1/sessions", json={"voice": "ghost"})
        assert status == 400 and error["code"] == "voice_not_found"
        status, error = await _json(
            "POST", f"{url}/v1/sessions/{sid}/speak", json={"text": "x", "max_audio_length_ms": 5}
        )
        assert status == 400 and "max_audio_length_ms" in error["detail"]
        status, error = await _json("POST", f"{url}/v1/sessions/nope/turns", json={"text": "t"})
        assert status == 404 and error["code"] == "session_not_found"
        # Rolling history: the oldest turns make room, within 3 turns and 2 s of audio.
        for index in range(5):
            await _json(
                "POST",
                f"{url}/v1/sessions/{sid}/turns",
                json={"text": f"t{index}", "audio": wav_b64(sine(0.75, 8000), 8000)},
            )
        _, info = await _json("GET", f"{url}/v1/sessions/{sid}")
        assert [t["text"] for t in info["turns"]] == ["t3", "t4"] and info["audio_seconds"] == 1.5
        assert info["dropped_turns"] == 3
        # Idle expiry: the other session was last used at t=1000; the clock moves on.
        clock[0] += 61
        status, error = await _json("GET", f"{url}/v1/sessions/my-session")
        assert status == 404 and "expired" in error["detail"]
    async with start_sessions(sessions={"max_turns": 2, "overflow": "refuse"}) as server:
        url = f"http://127.0.0.1:{server.http_port}"
        _, session = await _json("POST", f"{url}/v1/sessions")
        for text in ("a", "b"):
            assert (await _json("POST", f"{url}/v1/sessions/{session['id']}/turns", json={"text": text}))[0] == 201
        status, error = await _json("POST", f"{url}/v1/sessions/{session['id']}/turns", json={"text": "c"})
        assert status == 409 and "start a new session" in error["detail"]


async def test_bad_session_settings_stop_the_server_at_start_naming_them(start_sessions):
    from sesame_voice.config import ConfigError

    with pytest.raises(ConfigError, match=r"SESSION_OVERFLOW \(plugins.sessions.overflow\)"):
        async with start_sessions(sessions={"overflow": "wrap"}):
            pass
    with pytest.raises(ConfigError, match="MAX_SESSIONS"):
        async with start_sessions(env={"MAX_SESSIONS": "0"}):
            pass
    with pytest.raises(ConfigError, match="plugins.sessions.store"):
        async with start_sessions(sessions={"store": "redis"}):
            pass


async def test_sessions_persist_to_the_cache_dir_across_a_restart(start_sessions, tmp_path):
    cache = tmp_path / "persisted-cache"
    async with start_sessions(sessions={"persist": True}, cache_dir=cache) as server:
        url = f"http://127.0.0.1:{server.http_port}"
        _, session = await _json("POST", f"{url}/v1/sessions", json={"id": "kept", "speaker": 2})
        await _json(
            "POST",
            f"{url}/v1/sessions/kept/turns",
            json={"text": "Remember me.", "audio": wav_b64(sine(0.5, 16000, 250), 16000)},
        )
        await _call("POST", f"{url}/v1/sessions/kept/speak", json={"text": "I will."})
    assert (cache / "sessions" / "kept.npz").is_file()
    async with start_sessions(env={"SESSIONS_PERSIST": "true"}, cache_dir=cache) as server:  # the env name too
        session = await server.service("sessions").get("kept")
        assert session.speaker == 2 and [t.text for t in session.turns] == ["Remember me.", "I will."]
        assert np.isclose(session.turns[0].audio_seconds, 0.5) and session.turns[1].generated
        url = f"http://127.0.0.1:{server.http_port}"
        await _call("POST", f"{url}/v1/sessions/kept/speak", json={"text": "Still here."})
        context = server.providers["recorder"].jobs[-1].request.context
        assert [s.text for s in context] == ["Remember me.", "I will."]
    async with start_sessions(cache_dir=cache) as server:  # persistence off: memory only
        assert await server.service("sessions").list() == []
