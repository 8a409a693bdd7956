"""CSM through the whole server: the OpenAI speech endpoint streaming its chunks, and fallback to Piper."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp


async def _sse(url: str, body: dict, on_event=None) -> tuple[dict, list[dict]]:
    events = []
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body) as response:
            assert response.status == 200, await response.text()
            headers = dict(response.headers)
            async for line in response.content:
                if line.startswith(b"data: "):
                    events.append(json.loads(line[6:]))
                    if on_event is not None:
                        on_event(events[-1])
    return headers, events


async def test_openai_sse_stream_carries_csm_chunks_as_they_are_generated(start_server, csm_checkpoint, monkeypatch):
    monkeypatch.setenv("CSM_MIMI", str(csm_checkpoint.mimi_file))  # the tiny checkpoint's codec
    async with start_server(model_id=str(csm_checkpoint.model_dir)) as server:
        provider = server.engine.workers["csm"].provider
        for _ in range(600):  # the engine serves a still-loading CSM voice from its fallback
            if provider.state in ("ready", "failed"):
                break
            await asyncio.sleep(0.1)
        assert provider.status() == {"state": "ready", "loaded": True, "backend": "mlx"}
        url = f"http://127.0.0.1:{server.http_port}/v1/audio/speech"
        body = {"model": "csm-1b", "voice": "professional", "input": "Hi.", "response_format": "pcm",
                "stream_format": "sse"}
        worker = server.engine.workers["csm"]
        busy_at_first_audio = []

        def on_event(event: dict) -> None:
            if event["type"] == "speech.audio.delta" and not busy_at_first_audio:
                busy_at_first_audio.append(worker.pending)

        headers, events = await _sse(url, body, on_event)
    assert headers["X-Sesame-Provider"] == "csm"
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert events[-1]["type"] == "speech.audio.done"
    assert len(deltas) >= 3
    assert busy_at_first_audio == [1], "the first audio must reach the client while CSM is still generating"
    pcm = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert len(pcm) // 2 >= 10 * 1920  # random weights never say EOS: the whole frame budget is spoken


async def test_empty_model_folder_falls_back_to_piper(start_server, tmp_path):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    async with start_server(model_id=str(empty)) as server:
        url = f"http://127.0.0.1:{server.http_port}/v1/audio/speech"
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json={"model": "csm-1b", "voice": "conversational", "input": "Hello.",
                                               "response_format": "wav"}) as response:
                assert response.status == 200
                assert response.headers["X-Sesame-Provider"] == "piper"
                assert response.headers.get("X-Sesame-Fallback-From") == "csm"
                assert len(await response.read()) > 1000
            async with session.get(f"http://127.0.0.1:{server.http_port}/health") as response:
                health = await response.json()
    assert "csm" in json.dumps(health) and "MODEL_ID" in json.dumps(health)
