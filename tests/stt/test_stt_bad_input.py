"""Bad input gets a clear error in each protocol's shape, and nothing keeps running afterwards."""

from __future__ import annotations

import asyncio
import io

import aiohttp
import numpy as np
import pytest
import soundfile
from openai import APIStatusError
from stt_helpers import transcribe_like_home_assistant
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart
from wyoming.client import AsyncTcpClient

from sesame_voice import InvalidRequest, SpeechToTextUnavailable
from support import SENTENCES


async def _status_of(client, **kwargs) -> tuple[int, dict]:
    with pytest.raises(APIStatusError) as caught:
        await client.audio.transcriptions.create(model="whisper-1", **kwargs)
    return caught.value.status_code, caught.value.body


def _wav(samples: np.ndarray, rate: int = 16000, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("empty.wav", b"", "empty_audio"),
        ("notes.mp3", b"these are meeting notes, not audio at all\n" * 40, "invalid_audio_file"),
        ("header-only.wav", _wav(np.zeros(0, np.float32)), "empty_audio"),
    ],
)
async def test_unusable_files_get_openai_errors(openai_client, name, data, code):
    status, body = await _status_of(openai_client, file=(name, data))
    assert status == 400 and body["code"] == code and body["param"] == "file" and body["message"]


async def test_a_truncated_file_is_reported(openai_client, speak):
    audio = await speak(SENTENCES[0], "flac")
    status, body = await _status_of(openai_client, file=("cut.flac", audio[: len(audio) // 2]))
    assert status == 400 and body["code"] == "truncated_audio" and "truncated" in body["message"]


async def test_unusual_sample_formats_are_decoded(openai_client, speak, wer):
    """24-bit, 8-bit and float WAV at other rates, stereo: whatever FFmpeg reads is transcribed."""
    audio = await speak(SENTENCES[1], "wav")
    samples, rate = soundfile.read(io.BytesIO(audio), dtype="float32")
    stereo = np.stack([samples, samples], axis=1)
    for subtype in ("PCM_24", "FLOAT", "PCM_U8"):
        text = await openai_client.audio.transcriptions.create(
            model="whisper-1", file=("odd.wav", _wav(stereo, rate, subtype)), response_format="text"
        )
        assert wer(SENTENCES[1], text) <= 0.1, subtype


async def test_silence_is_an_empty_transcript_not_an_invention(openai_client):
    result = await openai_client.audio.transcriptions.create(
        model="whisper-1", file=("quiet.wav", _wav(np.zeros(16000 * 3, np.float32)))
    )
    assert result.text == "" and result.usage.seconds == 3


async def test_enormous_uploads_are_refused_before_they_are_read(start_server):
    from openai import AsyncOpenAI

    async with start_server(plugin_settings={"openai": {"max_upload_mb": 0.5}}) as server:
        client = AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="x", max_retries=0)
        status, body = await _status_of(client, file=("big.wav", _wav(np.zeros(16000 * 30, np.float32))))
        assert status == 413 and body["code"] == "file_too_large"
        small = await client.audio.transcriptions.create(model="whisper-1", file=("ok.wav", _wav(np.zeros(1600))))
        assert small.text == ""


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"response_format": "docx"}, "response_format"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": "3"}, "temperature"),
        ({"timestamp_granularities[]": "sentence"}, "timestamp_granularities"),
        ({"language": "english please"}, "language"),
        ({"stream": "maybe"}, "stream"),
    ],
)
async def test_bad_fields_name_the_parameter(base_url, fields, param):
    form = aiohttp.FormData()
    form.add_field("file", _wav(np.zeros(1600)), filename="a.wav")
    for key, value in fields.items():
        form.add_field(key, value)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/v1/audio/transcriptions", data=form) as response:
            body = await response.json()
    assert response.status == 400 and body["error"]["param"] == param


async def test_a_language_the_model_does_not_know_is_refused(openai_client):
    status, body = await _status_of(openai_client, file=("a.wav", _wav(np.full(1600, 0.1, np.float32))), language="de")
    assert status == 400 and body["param"] == "language" and body["code"] == "unsupported_language"
    assert "tiny.en" in body["message"] and "en" in body["message"]


async def test_json_body_and_missing_file_are_refused(base_url):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/v1/audio/transcriptions", json={"file": "x"}) as response:
            assert response.status == 415 and (await response.json())["error"]["code"] == "unsupported_media_type"
        form = aiohttp.FormData()
        form.add_field("model", "whisper-1")
        form.add_field("other", b"\0" * 10, filename="x.bin")
        async with http.post(f"{base_url}/v1/audio/transcriptions", data=form) as response:
            body = (await response.json())["error"]
            assert response.status == 400 and body["param"] == "file" and body["code"] == "missing_required_parameter"


async def test_without_a_speech_to_text_provider_the_error_says_so(start_server):
    from openai import AsyncOpenAI

    async with start_server(disabled_plugins=("whisper", "csm")) as server:
        client = AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="x", max_retries=0)
        status, body = await _status_of(client, file=("a.wav", _wav(np.zeros(1600))))
        assert status == 503 and body["code"] == "stt_unavailable" and "speech-to-text" in body["message"]
        assert "whisper-1" not in [m.id for m in (await client.models.list()).data]
        with pytest.raises(SpeechToTextUnavailable):
            await server.speech_to_text.transcribe(np.zeros(1600, np.float32), 16000)
        frontend = next(f for f in server.frontends if f.name == "wyoming")
        from wyoming.info import Info

        assert Info.from_event(frontend.info_event()).asr == []


async def test_a_broken_model_shows_in_health_and_errors(start_server, monkeypatch, tmp_path):
    from openai import AsyncOpenAI

    broken = {"whisper": {"model": str(tmp_path / "no-such-model"), "cpu_threads": 1}}
    async with start_server(plugin_settings=broken) as server:
        provider = server.speech_to_text.providers["whisper"]
        while provider.state in ("idle", "loading"):
            await asyncio.sleep(0.05)
        assert server.health()["speech_to_text"]["whisper"]["state"] == "failed"
        assert "STT_MODEL" in server.health()["speech_to_text"]["whisper"]["error"]
        client = AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="x", max_retries=0)
        status, body = await _status_of(client, file=("a.wav", _wav(np.full(1600, 0.1, np.float32))))
        assert status == 503 and "STT_MODEL" in body["message"]


def test_service_validates_audio_before_any_work():
    from stt_helpers import EchoStt

    from sesame_voice.config import Settings
    from sesame_voice.engine.transcription import SpeechToText

    service = SpeechToText({"echo": EchoStt(Settings())}, Settings())
    for samples, rate, code in [
        (np.zeros(0, np.float32), 16000, "empty_audio"),
        (np.zeros((3, 3, 3), np.float32), 16000, "invalid_audio"),
        (np.zeros(100, np.float32), 10, "invalid_audio"),
        (np.array(["a", "b"]), 16000, "invalid_audio"),
    ]:
        with pytest.raises(InvalidRequest) as caught:
            service.start(samples, rate)
        assert caught.value.code == code


async def _events_until_close(client) -> list:
    events = []
    while (event := await client.read_event()) is not None:
        events.append(event)
    return events


async def test_wyoming_audio_stop_without_audio_is_an_error_then_an_empty_transcript(start_wyoming):
    async with start_wyoming() as (server, port):
        events = await transcribe_like_home_assistant(port, b"")
    assert [e.type for e in events] == ["error", "transcript"]
    assert events[0].data["code"] == "empty_audio" and Transcript.from_event(events[1]).text == ""


async def test_wyoming_unsupported_sample_format_is_refused(start_wyoming):
    async with start_wyoming() as (server, port):
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Transcribe().event())
            await client.write_event(AudioStart(rate=16000, width=3, channels=1).event())
            event = await client.read_event()
    assert (
        event.type == "error" and event.data["code"] == "unsupported_audio_format" and "width 3" in event.data["text"]
    )


async def test_wyoming_client_that_never_stops_is_timed_out(start_wyoming):
    async with start_wyoming({"wyoming": {"audio_timeout": 0.5}}) as (server, port):
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Transcribe().event())
            await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            await client.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=b"\1\0" * 1600).event())
            events = await asyncio.wait_for(_events_until_close(client), 30)
        assert [e.type for e in events] == ["error"] and events[0].data["code"] == "audio_timeout"
        assert all(worker.pending == 0 for worker in server.speech_to_text.workers.values())
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "wyoming-audio-timeout"]


async def test_wyoming_utterance_too_long_is_dropped(start_wyoming):
    async with start_wyoming({"wyoming": {"max_audio_seconds": 1}}) as (server, port):
        events = await transcribe_like_home_assistant(port, b"\1\0" * 16000 * 2, chunk_bytes=8000)
    assert events[0].type == "error" and events[0].data["code"] == "audio_too_long"
    assert events[-1].type == "transcript" and events[-1].data["text"] == ""


async def test_streaming_from_a_model_that_cannot_load_is_an_http_error(start_server, monkeypatch, tmp_path):
    from openai import AsyncOpenAI

    async with start_server(env={"STT_MODEL": str(tmp_path / "no-such-model")}) as server:
        client = AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="x", max_retries=0)
        status, body = await _status_of(client, file=("a.wav", _wav(np.full(1600, 0.1, np.float32))), stream=True)
        assert status == 503 and "STT_MODEL" in body["message"]
