"""The legacy API and sessions against the tiny random CSM checkpoint, end to end through a running server."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import numpy as np
import pytest

pytest.importorskip("mlx.core", reason="mlx is not installed (pip install 'sesame-voice[csm]')")
pytest.importorskip("mlx_audio", reason="mlx-audio is not installed (pip install 'sesame-voice[csm]')")

from conversation_fakes import sine, wav_b64

from sesame_voice import ContextSegment
from sesame_voice.engine.context import fit_context

FAST = {"first_chunk_frames": 2, "chunk_frames": 3, "frame_budget_base_ms": 160, "frame_budget_per_char_ms": 8}


@pytest.fixture(scope="module")
def tiny_csm(tmp_path_factory):
    """(model folder, Mimi file) of a random-weight CSM in the real formats."""
    from sesame_voice_csm.mlx.testing import write_checkpoint

    return write_checkpoint(tmp_path_factory.mktemp("legacy-csm"), size="tiny")


@pytest.fixture
async def csm_server(start_legacy, tiny_csm):
    model_dir, mimi_file = tiny_csm
    async with start_legacy(
        plugin_settings={"csm": {"model_id": str(model_dir), "mimi": str(mimi_file), **FAST}},
        legacy={"voice": "professional"},
    ) as server:
        provider = server.providers["csm"]
        for _ in range(600):
            if provider.state in ("ready", "failed"):
                break
            await asyncio.sleep(0.1)
        assert provider.state == "ready", provider.status()
        yield server


async def _post(url: str, body: dict) -> tuple[int, dict, dict]:
    async with aiohttp.ClientSession() as client:
        async with client.post(url, json=body) as response:
            return response.status, dict(response.headers), json.loads(await response.read())


async def test_mimi_codes_from_a_csm_voice_decode_to_audio_of_the_reported_length(csm_server, tiny_csm):
    import mlx.core as mx

    from sesame_voice_csm.mlx.loading import load_mimi

    url = f"http://127.0.0.1:{csm_server.http_port}/csm/generate"
    status, headers, answer = await _post(url, {"text": "Hello there.", "speaker": 0, "max_audio_length_ms": 1200})
    assert status == 200 and headers["X-Sesame-Provider"] == "csm", answer
    assert answer["type"] == "mimi_codes" and answer["n_q"] == 32
    assert answer["sample_rate"] == 24000 and answer["frame_rate"] == 12.5
    codes = np.array(answer["codes"])
    assert codes.shape == (32, answer["frames"]) and 1 <= answer["frames"] <= 15  # 1200 ms = at most 15 frames
    assert codes.min() >= 0 and codes.max() < 2048
    audio = np.array(load_mimi(tiny_csm[1]).decode(mx.array(codes)[None]))[0, 0]
    assert len(audio) == answer["frames"] * 1920 == answer["duration_ms"] * 24
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    status, _, pcm = await _post(url, {"text": "Hello there.", "output": "pcm", "max_audio_length_ms": 1200})
    assert status == 200 and pcm["type"] == "audio_pcm"
    assert len(base64.b64decode(pcm["pcm"])) == 4 * 1920 * pcm["frames"]


async def test_context_audio_reaches_csm_and_is_encoded_with_mimi(csm_server):
    provider = csm_server.providers["csm"]
    url = f"http://127.0.0.1:{csm_server.http_port}"
    before = provider.prompts.encode_calls
    body = {
        "text": "Next.",
        "voice": "professional",
        "max_audio_length_ms": 400,
        "context_segments": [
            {"text": "First earlier turn.", "speaker": 1, "audio": wav_b64(sine(0.6, 16000, 300), 16000)},
            {"text": "Second earlier turn.", "speaker": 0, "audio": wav_b64(sine(0.4, 44100, 500), 44100)},
        ],
    }
    async with aiohttp.ClientSession() as client:
        async with client.post(f"{url}/tts", json=body) as response:
            assert response.status == 200 and response.headers["X-Sesame-Provider"] == "csm"
    assert provider.prompts.encode_calls == before + 2  # both clips went through Mimi, as clone prompts do
    # A session: the generated turn's audio becomes context of the next turn, encoded by Mimi too.
    session = await csm_server.service("sessions").create(voice="professional")
    for text in ("How are you?", "Fine, thanks."):
        async with aiohttp.ClientSession() as client:
            async with client.post(f"{url}/v1/sessions/{session.id}/speak", json={"text": text}) as response:
                assert response.status == 200
    assert provider.prompts.encode_calls == before + 3
    assert [t.text for t in session.turns] == ["How are you?", "Fine, thanks."]


async def test_csm_fitted_context_is_never_trimmed_again_by_the_exact_plan(csm_server):
    from sesame_voice import ProviderJob, SynthesisRequest, Voice

    provider = csm_server.providers["csm"]
    # Mostly text-only turns (Mimi encoding on a CPU is slow), the newest with audio.
    turns = [
        ContextSegment(text=f"The quick brown fox jumps over the lazy dog, turn {i}.", speaker=i % 2)
        for i in range(200)
    ]
    turns += [ContextSegment(text="Hello there.", speaker=1, audio=sine(0.5, 16000), sample_rate=16000)]
    params = dict(csm_server.voices.get("professional").params)
    fitted = fit_context(provider, turns, params)
    assert 0 < len(fitted) < len(turns)
    assert [s.text for s in fitted] == [s.text for s in turns[-len(fitted) :]]  # newest kept, oldest dropped
    assert fitted[-1].sample_rate == 24000 and len(fitted[-1].audio) == 12000  # resampled for CSM
    request = SynthesisRequest(text="Now.", context=fitted)
    job = ProviderJob(sentences=["Now."], voice=Voice(name="t", provider="csm"), params=params, request=request)
    plan = await csm_server.engine.workers["csm"].call(provider.plan, job)
    assert len(plan.context) == len(fitted)  # the estimate is conservative: nothing more had to go
