"""The OpenAI speech API through the official SDK: every format, streamed and not, heard by Whisper."""

from __future__ import annotations

import base64
import json

import pytest

from sesame_voice.audio import decode_audio
from support import SENTENCES

FORMATS = ["mp3", "opus", "aac", "flac", "wav", "pcm"]
EXPECTED_RATE = {"pcm": 24000, "opus": 48000}
TEXT = " ".join(SENTENCES)


def _check_audio(
    data: bytes, fmt: str, transcribe, wer, text: str = TEXT, max_wer: float = 0.10, speed: float = 1.0
) -> float:
    """Decode, check rate and plausible duration (at ``speed``), transcribe; return the duration."""
    samples, rate = decode_audio(data, fmt)
    if fmt in EXPECTED_RATE:
        assert rate == EXPECTED_RATE[fmt]
    else:
        assert rate in (22050, 24000, 44100, 48000)
    duration = len(samples) / rate
    words = len(text.split())
    assert 0.15 * words / speed < duration < 0.8 * words / speed, f"{fmt}: {duration:.2f}s for {words} words"
    heard = transcribe(samples, rate)
    error = wer(text, heard)
    assert error <= max_wer, f"{fmt}: WER {error:.2f}, heard {heard!r}"
    return duration


@pytest.mark.parametrize("fmt", FORMATS)
async def test_create_speech_every_format_is_heard_correctly(openai_client, fmt, transcribe, wer):
    response = await openai_client.audio.speech.create(
        model="csm-1b", voice="conversational", input=TEXT, response_format=fmt
    )
    assert response.response.headers["x-sesame-provider"] == "piper"
    expected_type = {
        "mp3": "audio/mpeg",
        "opus": "audio/ogg",
        "aac": "audio/aac",
        "flac": "audio/flac",
        "wav": "audio/wav",
        "pcm": "audio/pcm",
    }[fmt]
    assert response.response.headers["content-type"].startswith(expected_type)
    _check_audio(response.read(), fmt, transcribe, wer)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_streaming_response_every_format_is_one_valid_stream(openai_client, fmt, transcribe, wer):
    chunks: list[bytes] = []
    async with openai_client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format=fmt
    ) as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        async for chunk in response.iter_bytes():
            chunks.append(chunk)
    assert len(chunks) >= 2, "audio should arrive in pieces as sentences are synthesised"
    _check_audio(b"".join(chunks), fmt, transcribe, wer)


@pytest.mark.parametrize("fmt", ["mp3", "wav", "opus"])
async def test_sse_stream_carries_base64_audio_then_done_with_usage(openai_client, fmt, transcribe, wer):
    events = []
    async with openai_client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="coral", input=TEXT, response_format=fmt, stream_format="sse"
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
    types = [event["type"] for event in events]
    assert types[-1] == "speech.audio.done" and set(types[:-1]) == {"speech.audio.delta"}
    assert len(types) >= 3
    usage = events[-1]["usage"]
    assert usage["input_tokens"] == len(TEXT.split())
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > usage["input_tokens"]
    audio = b"".join(base64.b64decode(event["audio"]) for event in events[:-1])
    duration = _check_audio(audio, fmt, transcribe, wer)
    assert abs(usage["output_tokens"] - duration / 0.08) < 0.1 * usage["output_tokens"] + 2


@pytest.mark.parametrize("speed", [0.5, 2.0])
async def test_speed_changes_duration_but_not_words(openai_client, speed, transcribe, wer):
    async def duration_at(value: float) -> float:
        response = await openai_client.audio.speech.create(
            model="tts-1", voice="joe", input=TEXT, response_format="wav", speed=value
        )
        return _check_audio(response.read(), "wav", transcribe, wer, speed=value)

    normal = await duration_at(1.0)
    changed = await duration_at(speed)
    ratio = normal / changed
    assert ratio == pytest.approx(speed, rel=0.10), f"speed {speed}: duration ratio {ratio:.2f}"


async def test_voice_as_object_and_openai_aliases(openai_client):
    for voice in [
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "fable",
        "onyx",
        "nova",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    ]:
        response = await openai_client.audio.speech.with_raw_response.create(
            model="tts-1", voice=voice, input="Hi.", response_format="pcm"
        )
        assert response.headers["x-sesame-voice"] in ("conversational", "professional", "fast", "whisper")
    response = await openai_client.audio.speech.with_raw_response.create(
        model="tts-1", voice={"id": "professional"}, input="Hi.", response_format="pcm"
    )
    assert response.headers["x-sesame-voice"] == "professional"
