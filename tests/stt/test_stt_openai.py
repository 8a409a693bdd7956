"""POST /v1/audio/transcriptions through the official openai SDK, in every response format and streaming."""

from __future__ import annotations

import re

import aiohttp
import pytest

from support import SENTENCES

SENTENCE = SENTENCES[1]


async def test_json_is_the_default_and_reports_duration(openai_client, speak, wer):
    audio = await speak(SENTENCE, "wav")
    result = await openai_client.audio.transcriptions.create(model="whisper-1", file=("turn.wav", audio))
    assert wer(SENTENCE, result.text) <= 0.1
    assert result.usage.type == "duration" and 2 <= result.usage.seconds <= 5


@pytest.mark.parametrize("fmt", ["mp3", "opus", "flac", "aac"])
async def test_any_format_pyav_decodes_is_accepted(openai_client, speak, wer, fmt):
    audio = await speak(SENTENCE, fmt)
    text = await openai_client.audio.transcriptions.create(
        model="whisper-1", file=(f"turn.{fmt}", audio), response_format="text"
    )
    assert isinstance(text, str) and text.endswith("\n")
    assert wer(SENTENCE, text) <= 0.1


async def test_verbose_json_has_segments_and_words(openai_client, speak, wer):
    audio = await speak(SENTENCES[0], "flac")
    result = await openai_client.audio.transcriptions.create(
        model="whisper-1",
        file=("fox.flac", audio),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
    )
    assert result.language == "english" and wer(SENTENCES[0], result.text) <= 0.1
    assert 1.5 < result.duration < 6
    assert result.segments and all(0 <= s.start < s.end <= result.duration + 0.5 for s in result.segments)
    assert " ".join(s.text.strip() for s in result.segments) == result.text
    assert [w.word.lower().strip(".") for w in result.words][:3] == ["the", "quick", "brown"]
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)


async def test_srt_and_vtt_cues_cover_the_speech(openai_client, speak, wer):
    """The cues carry exactly the words of the plain transcription of the same audio. (How well
    tiny.en hears is tested elsewhere: alone, this sentence is always heard "with the light breeze".)"""
    audio = await speak(SENTENCES[2], "mp3")
    plain = await openai_client.audio.transcriptions.create(model="whisper-1", file=("a.mp3", audio))
    srt = await openai_client.audio.transcriptions.create(
        model="whisper-1", file=("a.mp3", audio), response_format="srt"
    )
    vtt = await openai_client.audio.transcriptions.create(
        model="whisper-1", file=("a.mp3", audio), response_format="vtt"
    )
    cue = re.compile(r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d) --> (\d\d):(\d\d):(\d\d)[,.](\d\d\d)")
    srt_lines = srt.strip().splitlines()
    assert srt_lines[0] == "1" and cue.fullmatch(srt_lines[1]) and "," in srt_lines[1]
    cue_text = " ".join(line for line in srt_lines[2:] if not cue.fullmatch(line) and not line.isdigit())
    assert wer(plain.text, cue_text) == 0 and len(plain.text.split()) >= 8, (plain.text, cue_text)
    vtt_lines = vtt.strip().splitlines()
    assert vtt_lines[0] == "WEBVTT" and cue.fullmatch(vtt_lines[2]) and "." in vtt_lines[2]
    assert srt_lines[1].replace(",", ".") == vtt_lines[2]


async def test_streaming_sends_deltas_then_done(openai_client, speak, wer):
    audio = await speak(" ".join(SENTENCES), "wav")
    stream = await openai_client.audio.transcriptions.create(
        model="whisper-1", file=("three.wav", audio), stream=True, language="en"
    )
    events = [event async for event in stream]
    assert [e.type for e in events[:-1]] == ["transcript.text.delta"] * (len(events) - 1)
    assert len(events) >= 2 and events[-1].type == "transcript.text.done"
    assert "".join(e.delta for e in events[:-1]) == events[-1].text
    assert wer(" ".join(SENTENCES), events[-1].text) <= 0.1


async def test_transcription_models_are_listed_and_documented(openai_client, base_url):
    ids = [model.id for model in (await openai_client.models.list()).data]
    assert "whisper-1" in ids and "tiny.en" in ids and "tts-1" in ids
    assert (await openai_client.models.retrieve("tiny.en")).id == "tiny.en"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base_url}/openapi.json") as response:
            document = await response.json()
        async with http.get(f"{base_url}/health") as response:
            health = await response.json()
    form = document["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert form["schema"]["properties"]["response_format"]["enum"] == ["json", "text", "srt", "vtt", "verbose_json"]
    assert health["speech_to_text"]["whisper"]["model"] == "tiny.en"
    assert health["speech_to_text"]["whisper"]["languages"] == ["en"]


async def test_api_key_is_required_when_configured(start_server):
    from openai import AsyncOpenAI, AuthenticationError

    async with start_server(api_key="secret") as server:
        client = AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="wrong", max_retries=0)
        with pytest.raises(AuthenticationError):
            await client.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"RIFF"))
