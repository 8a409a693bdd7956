"""The engine on deterministic providers: sentences, speed, limits, fallbacks, the event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from fakes import FakePlugin
from sesame_voice import InvalidRequest, SynthesisRequest


async def _collect(server, **request):
    async with server.engine.synthesis(SynthesisRequest(**request)) as synthesis:
        chunks = [chunk async for chunk in synthesis]
    return synthesis, np.concatenate([c.samples for c in chunks]), chunks[0].sample_rate


async def test_long_input_is_spoken_whole_sentence_by_sentence(start_server):
    async with start_server(plugins=[FakePlugin()]) as server:
        sentences = [f"This is sentence number {i} of the long text." for i in range(80)]
        _, samples, rate = await _collect(server, text=" ".join(sentences), voice="tone", first_clause=False)
        assert server.providers["tone"].sentences_done == sentences
        assert len(samples) == 80 * rate // 2


@pytest.mark.parametrize("speed", [0.5, 2.0])
async def test_speed_time_stretches_providers_without_native_speed(start_server, speed):
    async with start_server(plugins=[FakePlugin()]) as server:
        text = "One. Two. Three. Four. Five. Six."
        _, normal, rate = await _collect(server, text=text, voice="tone")
        _, changed, _ = await _collect(server, text=text, voice="tone", speed=speed)
        assert len(normal) / len(changed) == pytest.approx(speed, rel=0.05)
        # Pitch is kept: the first tone's dominant frequency (300 Hz) survives the stretch.
        window = changed[: rate // 4]
        peak = np.argmax(np.abs(np.fft.rfft(window))) * rate / len(window)
        assert abs(peak - 300) < 10


async def test_max_audio_length_caps_output(start_server):
    async with start_server(plugins=[FakePlugin()]) as server:
        _, samples, rate = await _collect(
            server, text="First one. Second one. Third one.", voice="tone", max_audio_length_ms=700
        )
        assert len(samples) == int(0.7 * rate)


async def test_failed_load_is_remembered_and_health_says_why(start_server):
    async with start_server(plugins=[FakePlugin()], preload=False) as server:
        provider = server.providers["unloadable"]
        type(provider).load_attempts = 0
        for _ in range(3):
            synthesis, _, _ = await _collect(server, text="Hi.", voice="needs-fallback")
            assert synthesis.provider == "tone" and synthesis.fell_back_from == ["unloadable"]
        assert type(provider).load_attempts == 1
        health = server.health()
        assert health["providers"]["unloadable"]["state"] == "failed"
        assert "MODEL_ID" in health["providers"]["unloadable"]["error"]
        assert health["providers"]["tone"]["loaded"] is True
        metrics = server.metrics.render().decode().splitlines()
        fallbacks = [line for line in metrics if line.startswith("sesame_voice_fallbacks_total{")]
        assert len(fallbacks) == 1 and 'fell_back_from="unloadable"' in fallbacks[0] and fallbacks[0].endswith(" 3.0")
        assert not [line for line in metrics if line.startswith("sesame_voice_provider_errors_total{")]
        assert health["requests"] == {"requests": 3, "errors": 0, "cancelled": 0, "fallbacks": 3}


async def test_inference_never_blocks_the_event_loop(start_server):
    async with start_server(plugins=[FakePlugin()]) as server:
        ticks = []

        async def ticker():
            while True:
                await asyncio.sleep(0.01)
                ticks.append(time.perf_counter())

        task = asyncio.create_task(ticker())
        await _collect(server, text="Slow one. Slow two. Slow three.", voice="slowtone")
        task.cancel()
        provider = server.providers["slowtone"]
        assert threading.get_ident() not in provider.threads  # synthesis ran off the loop's thread
        # ...and the loop kept running while each sentence was being made.
        assert len(provider.spans) == 3
        for began, ended in provider.spans:
            assert any(began < tick < ended for tick in ticks), "the event loop did not run during synthesis"


async def test_validation_errors_name_the_parameter(server):
    with pytest.raises(InvalidRequest) as caught:
        await server.engine.synthesize(SynthesisRequest(text="hi", speed=5))
    assert caught.value.param == "speed"
    with pytest.raises(InvalidRequest) as caught:
        await server.engine.synthesize(SynthesisRequest(text="hi", response_format="mp4"))
    assert caught.value.param == "response_format"


async def test_health_endpoint_reports_providers_and_voices(server, base_url):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/health") as response:
            health = await response.json()
        async with session.get(f"{base_url}/openapi.json") as response:
            spec = await response.json()
        async with session.get(f"{base_url}/v1/models") as response:
            models = await response.json()
        async with session.get(f"{base_url}/v1/models/csm-1b") as response:
            model = await response.json()
        async with session.get(f"{base_url}/v1/models/gpt-5") as response:
            missing = response.status, await response.json()
    # The built-in legacy plugin reports the old clients' "healthy" where the core alone says "ok".
    assert health["status"] == "healthy" and health["voices"] >= 5
    assert "piper" in health["providers"]
    assert "/v1/audio/speech" in spec["paths"] and spec["openapi"].startswith("3.")
    assert models["object"] == "list"
    assert {m["id"] for m in models["data"]} >= {"csm-1b", "tts-1", "tts-1-hd", "gpt-4o-mini-tts"}
    assert model["id"] == "csm-1b" and model["object"] == "model"
    assert missing[0] == 404 and missing[1]["error"]["code"] == "model_not_found"


async def test_a_loading_provider_is_skipped_when_the_voice_has_a_fallback(start_server):
    async with start_server(plugins=[FakePlugin()], preload=False) as server:
        provider = server.providers["unloadable"]
        provider.state = "loading"  # as while a checkpoint downloads
        synthesis, _, _ = await _collect(server, text="Hi.", voice="needs-fallback")
        assert synthesis.provider == "tone" and synthesis.fell_back_from == ["unloadable"]
        assert provider.state == "loading", "the loading provider must not have been asked to load again"
