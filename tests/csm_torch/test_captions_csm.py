"""Captions on the CSM path (a tiny random CSM on the torch backend): timing only.

CSM knows no words inside its audio, so the server aligns the 80 ms frames it streamed with the
in-process Whisper; random weights say nothing Whisper can hear, so what is checked is the timing:
every input word placed inside the audio, in order, with offsets that add up over the chunks."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
from openai import AsyncOpenAI

from sesame_voice import FRAME_SAMPLES

TEXT = "Hello there. How are you today?"


async def _ready(provider) -> None:
    for _ in range(1200):  # the engine serves a still-loading CSM voice from its fallback
        if provider.state in ("ready", "failed"):
            return
        await asyncio.sleep(0.1)


async def test_csm_captions_time_every_word_inside_its_frames(start_server, hf_checkpoint):
    env = {"CSM_BACKEND": "torch", "CSM_DTYPE": "float32", "MODEL_ID": str(hf_checkpoint)}
    plugins = {"csm": {"first_chunk_frames": 2, "chunk_frames": 3, "frame_budget_base_ms": 160}}
    async with start_server(env=env, disabled_plugins=(), plugin_settings=plugins) as server:
        await _ready(server.engine.workers["csm"].provider)
        client = AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="unused", max_retries=0)
        response = await client.audio.speech.with_raw_response.create(
            model="csm-1b",
            voice="professional",
            input=TEXT,
            response_format="pcm",
            extra_body={"timestamps": "word", "timestamps_format": "srt"},
        )
        assert response.headers["x-sesame-provider"] == "csm"
        body = json.loads(response.content)
        events = []
        async with client.audio.speech.with_streaming_response.create(
            model="csm-1b",
            voice="professional",
            input=TEXT,
            response_format="pcm",
            stream_format="sse",
            extra_body={"timestamps": "word"},
        ) as streamed:
            async for line in streamed.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[len("data: ") :]))

    samples = np.frombuffer(base64.b64decode(body["audio"]), dtype="<i2")
    assert len(samples) % FRAME_SAMPLES == 0, "CSM speaks whole 80 ms frames"
    assert body["duration"] == len(samples) / 24000
    print(f"\ntiny CSM: {body['duration']:.2f} s, timing {body['timing']}, words {body['words']}")
    assert body["timing"] in ("whisper", "estimate")
    _check_timed(body["words"], body["duration"])
    assert body["subtitles"].startswith("1\n00:00:")

    types = [e["type"] for e in events]
    assert types[-1] == "speech.audio.done"
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    words = [e for e in events if e["type"] == "speech.audio.word"]
    assert len(deltas) >= 2, "the audio arrived in several chunks"
    # Aligned timings come once the audio is complete: after the deltas that carry it.
    assert types.index("speech.audio.word") > types.index("speech.audio.delta")
    seconds = sum(len(base64.b64decode(e["audio"])) for e in deltas) / 2 / 24000
    _check_timed([{k: e[k] for k in ("word", "start", "end")} for e in words], seconds)


def _check_timed(words: list[dict], duration: float) -> None:
    assert [w["word"] for w in words] == TEXT.split()
    assert all(0.0 <= w["start"] <= w["end"] <= duration + 1e-6 for w in words), (words, duration)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert words[-1]["end"] > duration / 2, "the words spread over the audio"
