"""Captioned speech (docs/captions.md): word timings from Piper's phoneme durations, checked against an
independent alignment (faster-whisper tiny.en word timestamps on the same audio), through the real
openai SDK and aiohttp; subtitles read back with the ``srt`` and ``webvtt-py`` parsers."""

from __future__ import annotations

import base64
import difflib
import io
import json
import re

import aiohttp
import numpy as np
import pytest

from sesame_voice.audio import decode_audio

TEXT = (
    "Welcome home. The lights in the kitchen are now on, and the front door is locked. "
    "Tomorrow will be sunny with a light breeze from the west."
)
TOLERANCE = 0.100
"""Seconds a word's start and end may differ from Whisper's word timestamps."""


def _key(word: str) -> str:
    return re.sub(r"[^\w']+", "", word.lower())


def whisper_words(whisper_model, samples: np.ndarray, rate: int) -> list[tuple[str, float, float]]:
    """(word, start, end) from faster-whisper's own word timestamps on ``samples``."""
    import soxr

    audio = soxr.resample(np.asarray(samples, dtype=np.float32), rate, 16000).astype(np.float32)
    segments, _ = whisper_model.transcribe(audio, language="en", beam_size=1, word_timestamps=True, vad_filter=False)
    return [(w.word, w.start, w.end) for s in segments for w in s.words]


def timing_differences(words: list[dict], heard: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """(word, start difference, end difference) for each word Whisper heard the same."""
    matcher = difflib.SequenceMatcher(a=[_key(w["word"]) for w in words], b=[_key(w) for w, _, _ in heard])
    pairs = []
    for block in matcher.get_matching_blocks():
        for i in range(block.size):
            ours, theirs = words[block.a + i], heard[block.b + i]
            pairs.append((ours["word"], ours["start"] - theirs[1], ours["end"] - theirs[2]))
    return pairs


def assert_close_to_whisper(words, samples, rate, whisper_model, label: str) -> None:
    heard = whisper_words(whisper_model, samples, rate)
    pairs = timing_differences(words, heard)
    print(f"\n{label}: {len(pairs)}/{len(words)} words matched Whisper; differences in ms (start, end):")
    print(", ".join(f"{w} {1000 * s:+.0f}/{1000 * e:+.0f}" for w, s, e in pairs))
    assert len(pairs) >= 0.8 * len(words), f"Whisper heard too few of the words: {heard}"
    worst = max(max(abs(s), abs(e)) for _, s, e in pairs)
    print(f"{label}: worst {1000 * worst:.0f} ms")
    assert worst <= TOLERANCE, pairs


async def captioned(openai_client, text: str = TEXT, **extra) -> dict:
    """A captioned JSON response through the openai SDK (``extra_body`` carries the extension)."""
    response = await openai_client.audio.speech.with_raw_response.create(
        model="tts-1",
        voice="joe",
        input=text,
        response_format=extra.pop("response_format", "wav"),
        extra_body={"timestamps": "word", **extra},
    )
    assert response.headers["content-type"].startswith("application/json")
    return json.loads(response.content)


async def test_piper_word_timings_match_whisper(openai_client, whisper_model):
    body = await captioned(openai_client)
    assert body["timing"] == "provider" and body["audio_format"] == "wav"
    samples, rate = decode_audio(base64.b64decode(body["audio"]), "wav")
    assert abs(len(samples) / rate - body["duration"]) < 0.01
    words = body["words"]
    assert [w["word"] for w in words] == TEXT.split()
    assert body["timestamps"] == [{"word": w["word"], "start_time": w["start"], "end_time": w["end"]} for w in words]
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and all(w["start"] <= w["end"] <= body["duration"] for w in words)
    assert_close_to_whisper(words, samples, rate, whisper_model, "piper (3 sentences)")


async def test_piper_word_timings_follow_the_speed(openai_client, whisper_model):
    """At speed 1.5 the engine time-stretches Piper's audio; the words are retimed with it."""
    body = await captioned(openai_client, speed=1.5)
    samples, rate = decode_audio(base64.b64decode(body["audio"]), "wav")
    assert body["timing"] == "provider"
    assert_close_to_whisper(body["words"], samples, rate, whisper_model, "piper at speed 1.5")


async def test_sse_word_events_come_with_the_audio_and_add_up(openai_client):
    events = []
    async with openai_client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="joe",
        input=TEXT,
        response_format="pcm",
        stream_format="sse",
        extra_body={"timestamps": "word", "timestamps_format": "vtt"},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
    types = [e["type"] for e in events]
    assert types[-1] == "speech.audio.done" and types[-2] == "speech.audio.subtitles"
    assert set(types[:-2]) == {"speech.audio.delta", "speech.audio.word"}
    # Provider timings stream: each word arrives no later than the delta that carries its start.
    audio_before = 0.0
    for event in events[:-2]:
        if event["type"] == "speech.audio.delta":
            audio_before += len(base64.b64decode(event["audio"])) / 2 / 24000
        else:
            assert event["start"] <= audio_before + 3.0, "a word arrived long after its audio"
    assert types.index("speech.audio.word") < len(types) - 1 - types[::-1].index("speech.audio.delta")
    words = [{k: e[k] for k in ("word", "start", "end")} for e in events if e["type"] == "speech.audio.word"]
    # Offsets add up across the sentences' chunks: the same words as the one-piece JSON answer.
    whole = await captioned(openai_client)
    assert words == whole["words"]
    import webvtt

    cues = webvtt.from_buffer(io.StringIO(events[-2]["text"]))
    assert " ".join(c.text for c in cues) == TEXT
    assert cues[0].start_in_seconds == pytest.approx(words[0]["start"], abs=0.002)


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
async def test_subtitles_parse_with_pypi_parsers(base_url, fmt):
    async with aiohttp.ClientSession() as client:
        async with client.post(
            f"{base_url}/v1/audio/speech",
            json={"input": TEXT, "voice": "joe", "response_format": "mp3", "timestamps_format": fmt},
        ) as response:
            assert response.status == 200, await response.text()
            body = await response.json()
    assert body["subtitles_format"] == fmt and body["words"]
    samples, rate = decode_audio(base64.b64decode(body["audio"]), "mp3")
    assert len(samples) / rate == pytest.approx(body["duration"], abs=0.1)
    words = body["words"]
    if fmt == "srt":
        import srt

        cues = [(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in srt.parse(body["subtitles"])]
    else:
        import webvtt

        cues = [(c.start_in_seconds, c.end_in_seconds, c.text) for c in webvtt.from_buffer(io.StringIO(body["subtitles"]))]
    assert " ".join(text for _, _, text in cues) == TEXT
    assert len(cues) >= 3, "one cue per sentence at least"
    assert cues[0][0] == pytest.approx(words[0]["start"], abs=0.002)
    assert cues[-1][1] == pytest.approx(words[-1]["end"], abs=0.002)
    assert all(a[1] <= b[0] for a, b in zip(cues, cues[1:], strict=False))


async def test_bad_caption_options_are_openai_errors(base_url):
    async with aiohttp.ClientSession() as client:
        for field, value in (("timestamps", "segment"), ("timestamps_format", "ass"), ("timestamps", 1)):
            body = {"input": "Hi there.", field: value}
            async with client.post(f"{base_url}/v1/audio/speech", json=body) as response:
                assert response.status == 400
                assert (await response.json())["error"]["param"] == field
