"""CSM through the whole server: the OpenAI speech endpoint streaming its chunks, and fallback to Piper."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp

from .csm_helpers import loaded_csm


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
    env = {"CSM_MIMI": str(csm_checkpoint.mimi_file)}  # the tiny checkpoint's codec, read by the plugin
    env["MODEL_ID"] = str(csm_checkpoint.model_dir)  # the environment name users set, read by the plugin
    async with start_server(env=env) as server:
        provider = await loaded_csm(server)
        assert provider.status() == {"state": "ready", "loaded": True, "backend": "mlx", "device": "cpu"}
        url = f"http://127.0.0.1:{server.http_port}/v1/audio/speech"
        body = {
            "model": "csm-1b",
            "voice": "professional",
            "input": "Hi.",
            "response_format": "pcm",
            "stream_format": "sse",
        }
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
    async with start_server(plugin_settings={"csm": {"model_id": str(empty)}}) as server:
        url = f"http://127.0.0.1:{server.http_port}/v1/audio/speech"
        async with aiohttp.ClientSession() as session:
            async with session.post(
                url, json={"model": "csm-1b", "voice": "conversational", "input": "Hello.", "response_format": "wav"}
            ) as response:
                assert response.status == 200
                assert response.headers["X-Sesame-Provider"] == "piper"
                assert response.headers.get("X-Sesame-Fallback-From") == "csm"
                assert len(await response.read()) > 1000
            async with session.get(f"http://127.0.0.1:{server.http_port}/health") as response:
                health = await response.json()
    assert "csm" in json.dumps(health) and "MODEL_ID" in json.dumps(health)


async def test_a_streamed_wyoming_answer_is_one_csm_generation_started_on_its_first_sentence(
    make_settings, csm_checkpoint, csm_plugin_config
):
    from wyoming.client import AsyncTcpClient
    from wyoming.tts import (
        SynthesizeChunk,
        SynthesizeStart,
        SynthesizeStop,
        SynthesizeVoice,
    )

    from sesame_voice.app.server import Server

    settings = make_settings(plugins={"csm": {"model_id": str(csm_checkpoint.model_dir), **csm_plugin_config}})
    async with Server(settings) as server:
        provider = server.engine.workers["csm"].provider
        for _ in range(600):
            if provider.state in ("ready", "failed"):
                break
            await asyncio.sleep(0.1)
        assert provider.state == "ready"
        generations: list[list[str]] = []  # the group texts of each generation, as the backend takes them
        generate = provider.backend.generate

        def recording_generate(plan, cancelled):
            texts = [group.text for group in plan.groups]
            generations.append(texts)
            plan.later_groups = (texts.append(group.text) or group for group in plan.later_groups)
            return generate(plan, cancelled)

        provider.backend.generate = recording_generate
        frontend = next(f for f in server.frontends if f.name == "wyoming")
        async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
            await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="professional")).event())
            for piece in ("First sentence ", "is here. Sec"):
                await client.write_event(SynthesizeChunk(text=piece).event())
            first = await asyncio.wait_for(client.read_event(), 120)  # before the rest is even written
            assert first.type == "audio-start"
            for piece in ("ond sentence follows it. ", "Third one ends."):
                await client.write_event(SynthesizeChunk(text=piece).event())
            await client.write_event(SynthesizeStop().event())
            types = []
            while (event := await asyncio.wait_for(client.read_event(), 120)) is not None:
                types.append(event.type)
                if event.type == "synthesize-stopped":
                    break
    assert "error" not in types and types[-2:] == ["audio-stop", "synthesize-stopped"]
    assert server.metrics.summary()["requests"] == 1
    # One generation: later sentences continue it, conditioned on the ones before.
    assert len(generations) == 1 and generations[0][0] == "First sentence is here."
    assert " ".join(generations[0]) == "First sentence is here. Second sentence follows it. Third one ends."
