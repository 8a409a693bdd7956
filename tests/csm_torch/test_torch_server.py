"""The torch backend through the whole server: /health names it, and concurrent clients share its batches."""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
from openai import AsyncOpenAI


async def _ready(provider) -> None:
    for _ in range(1200):  # the engine serves a still-loading CSM voice from its fallback
        if provider.state in ("ready", "failed"):
            return
        await asyncio.sleep(0.1)


async def test_two_clients_speaking_at_once_share_forward_passes(start_server, hf_checkpoint, monkeypatch):
    env = {"CSM_BACKEND": "torch", "CSM_MAX_BATCH": "2", "CSM_DTYPE": "float32"}  # read by the plugin itself
    async with start_server(env={**env, "MODEL_ID": str(hf_checkpoint)}) as server:
        provider = server.engine.workers["csm"].provider
        await _ready(provider)
        base = f"http://127.0.0.1:{server.http_port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/health") as response:
                health = await response.json()
        assert health["providers"]["csm"]["backend"] == "torch (cpu, float32)"
        assert health["providers"]["csm"]["state"] == "ready"

        client = AsyncOpenAI(base_url=f"{base}/v1", api_key="unused")

        async def speak(text: str) -> tuple[str, bytes]:
            async with client.audio.speech.with_streaming_response.create(
                model="csm-1b", voice="professional", input=text, response_format="pcm"
            ) as response:
                return response.headers["x-sesame-provider"], await response.read()

        results = await asyncio.gather(
            speak("Hello there, how are you today?"), speak("I am fine, thank you for asking.")
        )
        batch_sizes = list(provider.backend.generator.loop.batch_sizes)
    for provider_name, pcm in results:
        assert provider_name == "csm"
        samples = np.frombuffer(pcm, dtype="<i2")
        assert len(samples) >= 10 * 1920 and np.abs(samples).max() > 0
    assert max(batch_sizes) == 2  # the two requests stepped together instead of queueing
