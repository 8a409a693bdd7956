"""Seed 000, the CSM FastAPI wrapper: /tts, form /generate, /voices, /, /health, through a real aiohttp client."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
from conversation_fakes import (
    OUT_RATE,
    allocated,
    dominant_frequency,
    read_audio,
    sine,
    wav_b64,
)


async def _post(url: str, **kwargs) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as client:
        async with client.post(url, **kwargs) as response:
            return response.status, dict(response.headers), await response.read()


async def test_spiralogic_request_from_the_seed_notes_works_unchanged(server, base_url, transcribe, wer):
    """The seed's JSON request (its "base64_audio_data" placeholder filled with a real WAV) on the default server."""
    request = {
        "text": "Hello, I am Maya...",
        "voice": "maya",
        "speaker": 0,
        "format": "wav",
        "max_audio_length_ms": 15000,
        "temperature": 0.7,
        "context_segments": [
            {"text": "Previous conversation...", "speaker": 0, "audio": wav_b64(sine(0.5, 24000), 24000)}
        ],
    }
    status, headers, body = await _post(f"{base_url}/tts", json=request)
    assert status == 200, body
    assert headers["Content-Type"] == "audio/wav"
    samples, rate = read_audio(body)
    assert len(samples) / rate > 0.5
    assert wer("Hello, I am Maya", transcribe(samples, rate)) <= 0.5
    # The seed's curl: form /generate, then its health check expecting {"status": "healthy", "model_loaded": ...}.
    status, headers, body = await _post(
        f"{base_url}/generate",
        data="text=Hello Maya&speaker=0",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200 and headers["Content-Type"] == "audio/wav" and len(read_audio(body)[0]) > 10000
    status, headers, body = await _post(
        f"{base_url}/generate",
        data="text=The patterns are revealing themselves to you now.",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200
    samples, rate = read_audio(body)
    assert wer("The patterns are revealing themselves to you now.", transcribe(samples, rate)) <= 0.35
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{base_url}/health") as response:
            health = await response.json()
    assert health["status"] == "healthy"
    assert health["model_loaded"] is False  # maya's first provider is CSM, and this server has no weights
    assert health["providers"]["piper"]["loaded"] is True and "voices" in health  # today's report is kept


async def test_tts_hands_context_audio_to_the_provider_resampled(url, recorder):
    context = [
        {"text": "An earlier turn at eight kilohertz.", "speaker": 1, "audio": wav_b64(sine(1.0, 8000, 440), 8000)},
        {"text": "A text-only turn.", "speaker": 0},
    ]
    body = {
        "text": "Now speak.",
        "speaker": 2,
        "format": "mp3",
        "temperature": 0.5,
        "top_k": 7,
        "max_audio_length_ms": 4000,
        "context_segments": context,
    }
    status, headers, data = await _post(f"{url}/tts", json=body)
    assert status == 200, data
    assert headers["Content-Type"] == "audio/mpeg" and headers["X-Sesame-Provider"] == "recorder"
    samples, rate = read_audio(data)
    assert abs(len(samples) / rate - 0.25) < 0.06
    job = recorder.jobs[-1]
    assert job.params["speaker"] == 2 and job.params["temperature"] == 0.5 and job.params["top_k"] == 7
    assert job.request.max_audio_length_ms == 4000
    first, second = job.request.context
    assert (first.text, first.speaker, second.text, second.audio) == (
        "An earlier turn at eight kilohertz.",
        1,
        "A text-only turn.",
        None,
    )
    assert first.sample_rate == 16000 and abs(len(first.audio) - 16000) < 20
    assert abs(dominant_frequency(first.audio, 16000) - 440) < 3


async def test_generate_voices_and_root(url):
    status, headers, body = await _post(f"{url}/generate", data={"text": "The patterns are revealing themselves."})
    assert status == 200 and headers["Content-Type"] == "audio/wav"
    samples, rate = read_audio(body)
    assert rate == OUT_RATE and len(samples) == OUT_RATE // 4
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{url}/voices") as response:
            voices = await response.json()
        async with client.get(f"{url}/") as response:
            info = await response.json()
        async with client.get(f"{url}/", headers={"Accept": "text/html,application/xhtml+xml"}) as response:
            page = response.headers["Content-Type"], await response.text()
        async with client.get(f"{url}/openapi.json") as response:
            paths = (await response.json())["paths"]
    names = {v["name"] for v in voices["voices"]}
    assert {"maya", "neutral", "warm", "mystic", "conversational", "recorder"} <= names
    assert [s["id"] for s in voices["speakers"]] == [0, 1, 2, 3, 4]
    assert info["endpoints"]["POST /tts"] and info["default_voice"] == "recorder"
    # Browsers get the studio (its plugin answers HTML on GET /); the legacy page shows with --disable studio.
    assert page[0].startswith("text/html") and "sesame-voice studio" in page[1]
    assert {"/tts", "/generate", "/api/v1/generate", "/csm/generate", "/v1/sessions/{session_id}/ws"} <= set(paths)
    assert (
        "session"
        in paths["/v1/audio/speech"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    )


async def test_health_fields_follow_the_legacy_voice(start_legacy):
    async with start_legacy(legacy={"voice": "needs-fallback"}) as server:
        async with aiohttp.ClientSession() as client:
            async with client.get(f"http://127.0.0.1:{server.http_port}/health") as response:
                health = await response.json()
    assert health["model_loaded"] is False and health["status"] == "healthy"  # unloadable, tone serves
    async with start_legacy(legacy={"voice": "tone"}) as server:
        while server.providers["tone"].state != "ready":  # loaded at start, in its worker thread
            await asyncio.sleep(0.02)
        health = server.health()
    assert health["model_loaded"] is True and health["status"] == "healthy"
    async with start_legacy(legacy={"voice": "no-such-voice"}) as server:
        health = server.health()
    assert health["status"] == "unhealthy" and health["model_loaded"] is False


BAD_TTS = [
    ({"text": "x", "context_segments": [{"text": "t", "audio": "%%%not base64%%%"}]}, "invalid_base64"),
    (
        {"text": "x", "context_segments": [{"text": "t", "audio": base64.b64encode(b"ID3 mp3 bytes").decode()}]},
        "invalid_audio",
    ),
    ({"text": "x", "context_segments": [{"text": "t", "audio": wav_b64(sine(2.5, 8000), 8000)}]}, "audio_too_long"),
    (
        {"text": "x", "context_segments": [{"text": "t", "audio": wav_b64(sine(0.5, 2000), 2000)}]},
        "invalid_sample_rate",
    ),
    ({"text": "x", "speaker": 7}, "unknown_speaker"),
    ({"text": "x", "context_segments": [{"text": "t", "speaker": 9}]}, "unknown_speaker"),
    ({"text": "x", "context_segments": [{"text": "t"}] * 4}, "too_many_segments"),
    (
        {"text": "x", "context_segments": [{"text": "t", "audio": wav_b64(sine(1.8, 8000), 8000)}] * 2},
        "segment_too_large",
    ),
    ({"text": "x", "context_segments": [{"text": "t" * 5000}]}, "segment_too_large"),
    ({"text": "x", "context_segments": [{"speaker": 0}]}, "invalid_request"),
    ({"text": "x", "context_segments": "not a list"}, "invalid_request"),
    ({"text": "x", "voice": "nobody"}, "voice_not_found"),
    ({"text": "x", "format": "ogg"}, "unsupported_format"),
    ({"text": "x", "temperature": 9}, "invalid_request"),
    ({"text": "x", "max_audio_length_ms": "long"}, "invalid_request"),
    ({"voice": "maya"}, "missing_required_parameter"),
    ({"text": "   "}, "empty_input"),
]


async def test_bad_tts_requests_get_clear_400s_and_the_server_keeps_serving(url, recorder):
    for body, code in BAD_TTS:
        status, headers, data = await _post(f"{url}/tts", json=body)
        assert status == 400, (body, data)
        error = json.loads(data)
        assert error["code"] == code and error["detail"], (body, error)
    assert len(recorder.jobs) == 0  # nothing bad reached the provider
    status, _, data = await _post(f"{url}/tts", data=b"{not json", headers={"Content-Type": "application/json"})
    assert status == 400 and b"invalid_json" in data
    status, _, data = await _post(f"{url}/tts", data=b"text=hi", headers={"Content-Type": "text/plain"})
    assert status == 415 and b"unsupported_media_type" in data
    status, _, data = await _post(
        f"{url}/tts", data=b"[" + b"1," * (3 * 1024 * 1024) + b"1]", headers={"Content-Type": "application/json"}
    )
    assert status == 413 and b"request_too_large" in data
    status, _, data = await _post(f"{url}/generate", data={"text": "hi", "speaker": "five"})
    assert status == 400 and b"unknown_speaker" in data
    status, _, data = await _post(f"{url}/generate", data={"speaker": "1"})
    assert status == 400 and b"missing_required_parameter" in data
    status, _, _ = await _post(f"{url}/tts", json={"text": "Still fine."})
    assert status == 200 and len(recorder.jobs) == 1


async def test_api_key_guards_the_legacy_routes(start_legacy):
    async with start_legacy(api_key="local") as server:
        url = f"http://127.0.0.1:{server.http_port}"
        status, _, data = await _post(f"{url}/tts", json={"text": "hi"})
        assert status == 401 and b"invalid_api_key" in data
        status, _, _ = await _post(f"{url}/tts", json={"text": "hi"}, headers={"Authorization": "Bearer local"})
        assert status == 200
        status, _, _ = await _post(f"{url}/api/v1/generate", json={"text": "hi"}, headers={"X-API-Key": "local"})
        assert status == 200


async def test_repeated_bad_requests_leave_no_memory_behind(start_legacy):
    import tracemalloc

    async with start_legacy(legacy={"max_segment_seconds": 2.0}, disabled_plugins=("csm", "wyoming")) as server:
        await _send_bad_requests(f"http://127.0.0.1:{server.http_port}", tracemalloc)


async def _send_bad_requests(url: str, tracemalloc) -> None:
    too_long = {"text": "x", "context_segments": [{"text": "t", "audio": wav_b64(sine(2.5, 16000), 16000)}]}
    not_wav = {"text": "x", "context_segments": [{"text": "t", "audio": base64.b64encode(b"\x00" * 50_000).decode()}]}
    async with aiohttp.ClientSession() as client:

        async def send(count: int) -> None:
            for index in range(count):
                async with client.post(f"{url}/tts", json=too_long if index % 2 else not_wav) as response:
                    assert response.status == 400
                    await response.read()

        await send(20)
        tracemalloc.start()
        await send(20)
        before = allocated()
        await send(100)
        after = allocated()
        tracemalloc.stop()
    assert after - before < 300_000, (before, after)  # each request decoded ~80-160 kB of audio
