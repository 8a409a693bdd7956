"""CSM has no native speed: the engine time-stretches it, so ``speed`` divides its duration too."""

from __future__ import annotations

import io

import pytest
import soundfile as sf

from .csm_helpers import loaded_csm

SPEEDS = (0.25, 0.5, 1.5, 2.0, 4.0)


async def test_csm_speed_divides_the_duration(start_server, csm_checkpoint, monkeypatch):
    from openai import AsyncOpenAI

    env = {"CSM_MIMI": str(csm_checkpoint.mimi_file)}  # the tiny checkpoint's codec, read by the plugin
    async with start_server(env={**env, "MODEL_ID": str(csm_checkpoint.model_dir)}) as server:
        provider = await loaded_csm(server)
        assert provider.state == "ready"
        client = AsyncOpenAI(
            base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="sk-test", max_retries=0, timeout=300
        )

        async def duration(speed: float) -> float:
            response = await client.audio.speech.with_raw_response.create(
                model="csm-1b", voice="professional", input="Hi.", response_format="wav", speed=speed
            )
            assert response.headers["x-sesame-provider"] == "csm"
            samples, rate = sf.read(io.BytesIO(response.content), dtype="float32")
            return len(samples) / rate

        base = await duration(1.0)  # random weights never say EOS: the whole frame budget is spoken
        assert base > 0.5
        for speed in SPEEDS:
            assert await duration(speed) == pytest.approx(base / speed, rel=0.10), f"speed {speed}"
