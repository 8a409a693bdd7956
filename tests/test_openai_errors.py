"""Bad input gets OpenAI-shaped errors with the right status, and the server keeps serving."""

from __future__ import annotations

import asyncio

import aiohttp
import openai
import pytest

from fakes import FakePlugin, ToneProvider, UnloadableProvider

GOOD = {"model": "tts-1", "input": "Still working.", "voice": "joe", "response_format": "pcm"}


async def _post(base_url: str, body=None, data: bytes | None = None, headers=None) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as session:
        kwargs = {"json": body} if data is None else {"data": data}
        async with session.post(f"{base_url}/v1/audio/speech", headers=headers, **kwargs) as response:
            raw = await response.read()
            payload = await response.json(content_type=None) if response.content_type == "application/json" else {}
            return response.status, payload, raw


def _assert_openai_error(payload: dict, param=None, code=None) -> None:
    error = payload["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code


async def _still_serves(base_url: str) -> None:
    status, _, raw = await _post(base_url, GOOD)
    assert status == 200 and len(raw) > 10000


@pytest.mark.parametrize(
    "body, status, param, code",
    [
        ({**GOOD, "input": ""}, 400, "input", "empty_input"),
        ({**GOOD, "input": "   \n "}, 400, "input", "empty_input"),
        ({**GOOD, "input": "x" * 4097}, 400, "input", "input_too_long"),
        ({**GOOD, "voice": "no-such-voice"}, 400, "voice", "voice_not_found"),
        ({**GOOD, "voice": "../../etc/passwd"}, 400, "voice", "voice_not_found"),
        ({**GOOD, "response_format": "ogg-vorbis"}, 400, "response_format", "unsupported_format"),
        ({**GOOD, "speed": 0.1}, 400, "speed", None),
        ({**GOOD, "speed": 4.5}, 400, "speed", None),
        ({**GOOD, "speed": "fast"}, 400, "speed", None),
        ({**GOOD, "input": 42}, 400, "input", None),
        ({**GOOD, "stream_format": "chunks"}, 400, "stream_format", None),
        ({"voice": "joe"}, 400, "input", "missing_required_parameter"),
        ([1, 2, 3], 400, None, None),
    ],
)
async def test_bad_request_bodies(base_url, body, status, param, code):
    got, payload, _ = await _post(base_url, body)
    assert got == status
    _assert_openai_error(payload, param, code)
    assert payload["error"]["type"] == "invalid_request_error"
    await _still_serves(base_url)


async def test_malformed_json_and_wrong_content_type(base_url):
    status, payload, _ = await _post(base_url, data=b'{"input": "hi",', headers={"Content-Type": "application/json"})
    assert status == 400
    _assert_openai_error(payload, code="invalid_json")
    status, payload, _ = await _post(
        base_url, data=b"input=hi", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 415
    _assert_openai_error(payload, code="unsupported_media_type")
    big = b'{"input": "' + b"a" * (5 * 1024 * 1024) + b'"}'  # over the 4 MiB body limit
    status, payload, _ = await _post(base_url, data=big, headers={"Content-Type": "application/json"})
    assert status == 413
    _assert_openai_error(payload, code="request_too_large")
    await _still_serves(base_url)


async def test_sdk_raises_typed_errors(openai_client):
    with pytest.raises(openai.BadRequestError) as caught:
        await openai_client.audio.speech.create(model="tts-1", voice="nobody", input="Hi.")
    assert caught.value.status_code == 400
    assert caught.value.body["code"] == "voice_not_found"
    response = await openai_client.audio.speech.create(model="tts-1", voice="joe", input="Hi.", response_format="wav")
    assert response.read()[:4] == b"RIFF"


async def test_provider_failure_and_fallback(start_server):
    async with start_server(plugins=[FakePlugin()]) as server:
        base_url = f"http://127.0.0.1:{server.http_port}"
        status, payload, _ = await _post(base_url, {**GOOD, "voice": "broken"})
        assert status == 500
        _assert_openai_error(payload, code="provider_error")
        assert payload["error"]["type"] == "server_error"
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base_url}/v1/audio/speech", json={**GOOD, "voice": "needs-fallback"}) as resp:
                assert resp.status == 200
                assert resp.headers["X-Sesame-Provider"] == "tone"
                assert resp.headers["X-Sesame-Fallback-From"] == "unloadable"
        await _still_serves(base_url)


async def test_unavailable_provider_without_fallback_is_503(start_server, voices_dir):
    (voices_dir / "lonely.yaml").write_text("provider: unloadable\n")
    async with start_server(plugins=[FakePlugin(ToneProvider, UnloadableProvider)]) as server:
        status, payload, _ = await _post(f"http://127.0.0.1:{server.http_port}", {**GOOD, "voice": "lonely"})
        assert status == 503
        _assert_openai_error(payload, code="provider_unavailable")


async def test_preset_naming_a_missing_provider_is_reported_not_listed(start_server, voices_dir):
    (voices_dir / "lonely.yaml").write_text("provider: not-installed\n")
    async with start_server() as server:
        base_url = f"http://127.0.0.1:{server.http_port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base_url}/v1/audio/voices") as response:
                listing = await response.json()
        assert "lonely" not in {voice["id"] for voice in listing["data"]}
        assert "no provider 'not-installed' is installed" in listing["errors"]["lonely.yaml"]
        status, payload, _ = await _post(base_url, {**GOOD, "voice": "lonely"})
        assert status == 400
        _assert_openai_error(payload, code="voice_not_found")


async def test_overload_returns_429_then_recovers(start_server):
    async with start_server(plugins=[FakePlugin()], max_queue=1) as server:
        base_url = f"http://127.0.0.1:{server.http_port}"
        slow = {**GOOD, "voice": "slowtone", "input": "One. Two. Three. Four."}
        first = asyncio.create_task(_post(base_url, slow))
        provider = server.providers["slowtone"]
        await asyncio.to_thread(provider.started.wait, 10)
        status, payload, _ = await _post(base_url, slow)
        assert status == 429
        _assert_openai_error(payload, code="overloaded")
        assert (await first)[0] == 200
        status, _, _ = await _post(base_url, slow)
        assert status == 200


async def test_api_key_is_enforced_when_configured(start_server):
    async with start_server(api_key="s3cret") as server:
        base_url = f"http://127.0.0.1:{server.http_port}"
        status, payload, _ = await _post(base_url, GOOD, headers={"Authorization": "Bearer wrong"})
        assert status == 401
        _assert_openai_error(payload, code="invalid_api_key")
        status, _, _ = await _post(base_url, GOOD)
        assert status == 401
        status, _, raw = await _post(base_url, GOOD, headers={"Authorization": "Bearer s3cret"})
        assert status == 200 and raw


async def test_client_disconnect_stops_generation(start_server):
    async with start_server(plugins=[FakePlugin()]) as server:
        base_url = f"http://127.0.0.1:{server.http_port}"
        provider = server.providers["slowtone"]
        text = " ".join(f"Sentence number {i}." for i in range(40))
        async with aiohttp.ClientSession() as session:
            response = await session.post(
                f"{base_url}/v1/audio/speech", json={**GOOD, "voice": "slowtone", "input": text}
            )
            assert response.status == 200
            await response.content.readany()
            response.close()
        assert await asyncio.to_thread(provider.cancelled_seen.wait, 5), "provider was never told to stop"
        done = len(provider.sentences_done)
        await asyncio.sleep(1.0)
        assert len(provider.sentences_done) == done < 10
        assert server.metrics.summary()["cancelled"] >= 1
        await _still_serves(base_url)
