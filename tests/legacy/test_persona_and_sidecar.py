"""Seed 001 (offline persona server, /api/v1/generate) and seed 002 (Mimi-code sidecar, /csm/generate)."""

from __future__ import annotations

import base64
import json

import aiohttp
import numpy as np
import pytest
from conversation_fakes import (
    OUT_RATE,
    WordsSttPlugin,
    dominant_frequency,
    read_audio,
    sine,
    wav_b64,
)


async def _post(url: str, **kwargs) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as client:
        async with client.post(url, **kwargs) as response:
            return response.status, dict(response.headers), await response.read()


async def test_persona_server_request_from_the_seed_notes_works_unchanged(server, base_url, transcribe, wer):
    # curl -X POST http://localhost:8000/api/v1/generate -H "Content-Type: application/json" \
    #      -d '{"text": "Hello from Maya"}'
    status, headers, body = await _post(
        f"{base_url}/api/v1/generate", data='{"text": "Hello from Maya"}', headers={"Content-Type": "application/json"}
    )
    assert status == 200, body
    assert headers["Content-Type"] == "audio/wav" and headers["X-Sesame-Voice"] == "maya"
    samples, rate = read_audio(body)
    assert wer("Hello from Maya", transcribe(samples, rate)) <= 0.34
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{base_url}/health") as response:
            assert (await response.json())["status"] == "healthy"


@pytest.mark.parametrize("persona", ["maya", "neutral", "warm", "mystic"])
async def test_each_persona_is_a_preset(server, base_url, persona):
    status, headers, body = await _post(f"{base_url}/api/v1/generate", json={"text": "Good evening.", "voice": persona})
    assert status == 200 and headers["X-Sesame-Voice"] == persona
    assert server.voices.get(persona).provider == "csm"  # CSM first, Piper while CSM is absent
    assert len(read_audio(body)[0]) > 5000


async def test_persona_bad_input(url):
    for body, code in [
        ({"voice": "maya"}, "missing_required_parameter"),
        ({"text": "hi", "voice": "oracle"}, "voice_not_found"),
        ({"text": 5}, "invalid_request"),
        ([1, 2], "invalid_json"),
    ]:
        status, _, data = await _post(f"{url}/api/v1/generate", json=body)
        assert status == 400 and json.loads(data)["code"] == code, data


def _pcm(answer: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(answer["pcm"]), dtype="<f4")


async def test_sidecar_request_shape_from_the_seed_notes(url, recorder):
    """{text, speaker?, context?: [{text?, speaker?, audio?: base64}], max_audio_length_ms?} → either answer."""
    raw_context = base64.b64encode(sine(0.5, 24000, 300).astype("<f4").tobytes()).decode()
    request = {
        "text": "One. Two. Three.",
        "speaker": 1,
        "max_audio_length_ms": 10000,
        "context": [
            {"text": "Raw float32 context.", "speaker": 0, "audio": raw_context},
            {"text": "WAV context.", "audio": wav_b64(sine(0.5, 48000, 500), 48000)},
            {"text": "No audio."},
        ],
    }
    for path in ("/csm/generate", "/generate"):
        status, headers, body = await _post(f"{url}{path}", json=request)
        assert status == 200, body
        answer = json.loads(body)
        # CSM_PREFERRED_OUTPUT defaults to mimi, but the recorder has no codes: the client handles either answer.
        assert answer["type"] == "audio_pcm" and answer["sample_rate"] == 24000
        pcm = _pcm(answer)
        assert len(pcm) % 1920 == 0 and len(pcm) // 1920 == answer["frames"]
        job = recorder.jobs[-1]
        # 0.25 s per sentence at 16 kHz, resampled to 24 kHz (6000 samples each), the last frame padded.
        spoken = 6000 * len(list(job.sentences))
        assert len(pcm) == -(-spoken // 1920) * 1920 and abs(dominant_frequency(pcm[:spoken], 24000) - 330) < 3
        assert job.params["speaker"] == 1 and job.request.max_audio_length_ms == 10000
        raw, wav, text_only = job.request.context
        assert (raw.speaker, wav.speaker, text_only.speaker) == (0, 1, 1)  # unnamed speakers: the request's
        assert raw.sample_rate == wav.sample_rate == 16000 and text_only.audio is None
        assert abs(dominant_frequency(raw.audio, 16000) - 300) < 3
        assert abs(dominant_frequency(wav.audio, 16000) - 500) < 3


async def test_sidecar_output_choice_and_errors(url, start_legacy):
    status, _, body = await _post(f"{url}/csm/generate", json={"text": "Hi.", "output": "pcm"})
    assert status == 200 and json.loads(body)["type"] == "audio_pcm"
    status, _, body = await _post(f"{url}/csm/generate", json={"text": "Hi.", "output": "mimi"})
    assert status == 400 and json.loads(body)["code"] == "codes_unavailable"
    bad = [
        ({"text": "Hi.", "output": "opus"}, "invalid_request"),
        (
            {"text": "Hi.", "context": [{"speaker": 0, "audio": wav_b64(sine(0.2, 16000), 16000)}]},
            "transcript_required",
        ),
        ({"text": "Hi.", "context": [{"speaker": 1}]}, "invalid_request"),
        ({"text": "Hi.", "context": [{"text": "t", "audio": base64.b64encode(b"abcde").decode()}]}, "invalid_audio"),
        ({"text": "Hi.", "context": [{"text": "t", "audio": "!!"}]}, "invalid_base64"),
        (
            {
                "text": "Hi.",
                "context": [{"text": "t", "audio": base64.b64encode(np.full(4, np.nan, "<f4").tobytes()).decode()}],
            },
            "invalid_audio",
        ),
        ({"text": "Hi.", "speaker": -1}, "unknown_speaker"),
        ({"text": "Hi.", "max_audio_length_ms": 10}, "invalid_request"),
        ({"speaker": 0}, "missing_required_parameter"),
    ]
    for body, code in bad:
        status, _, data = await _post(f"{url}/csm/generate", json=body)
        assert status == 400 and json.loads(data)["code"] == code, (body, data)


async def test_sidecar_default_output_follows_csm_preferred_output(start_legacy, monkeypatch):
    async with start_legacy(env={"CSM_PREFERRED_OUTPUT": "pcm", "CSM_SPEAKER_DEFAULT": "3"}) as server:
        status, _, body = await _post(f"http://127.0.0.1:{server.http_port}/csm/generate", json={"text": "Hi."})
        assert status == 200 and json.loads(body)["type"] == "audio_pcm"
        assert server.providers["recorder"].jobs[-1].params["speaker"] == 3
    from sesame_voice.config import ConfigError

    with pytest.raises(ConfigError, match="CSM_PREFERRED_OUTPUT"):
        async with start_legacy(env={"CSM_PREFERRED_OUTPUT": "codes"}):
            pass


def test_pcm_frames_are_whole_80ms_frames_at_24k():
    from sesame_voice.audio import Framer

    framer = Framer(OUT_RATE)
    frames = framer.push(sine(0.1, OUT_RATE)) + framer.push(sine(0.05, OUT_RATE)) + framer.flush()
    assert [len(f) for f in frames] == [1920, 1920]  # 0.15 s = 3600 samples at 24 kHz → 2 frames, last padded
    assert np.all(frames[-1][-200:] == 0)


async def test_sidecar_audio_only_context_is_transcribed_by_the_speech_to_text_service(start_legacy):
    context = [{"audio": wav_b64(sine(0.5, 16000), 16000)}, {"text": "Typed turn.", "speaker": 1}]
    async with start_legacy(plugins=(WordsSttPlugin(),)) as server:
        url = f"http://127.0.0.1:{server.http_port}"
        status, _, body = await _post(f"{url}/csm/generate", json={"text": "Hi.", "context": context})
        assert status == 200, body
        recorder = server.providers["recorder"]
        assert [(s.text, s.speaker) for s in recorder.jobs[-1].request.context] == [
            ("words heard in the audio", 0),
            ("Typed turn.", 1),
        ]
