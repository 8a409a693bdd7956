"""First audio sooner on every answer shape: the words all stay, and no seam is heard.

Real Piper (bundled voice, deterministic) through the engine, the Wyoming and the OpenAI routes;
Whisper tiny.en hears the joined audio. Piper speaks the first sentence whole, its audio in pieces
(``sesame_voice_piper.vocoder``; exact joins: tests/test_piper_vocoder.py). A provider that speaks
one call per piece gets the first sentence's lead on its own, as Piper does when word timings are
asked for; that seam is measured: the largest sample step around it (a click) and the silence
across it (a doubled pause), against the same text spoken in one call.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json

import numpy as np
import pytest
import soundfile as sf
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice
from wyoming_helpers import read_reply, split_mid_word

from sesame_voice import Continued, Lead, SynthesisRequest, TextSource, whole_sentences
from sesame_voice.api.lead import split_lead
from sesame_voice.api.text import split_sentences

SHAPES = {
    "one clause": "The living room lights are now on.",
    "leading short clause": "Sure, I have switched off the kitchen lights, and the front door is now locked.",
    "several clauses": (
        "The living room lights are now on, and the heating is switched to its evening mode. "
        "Tomorrow will be mostly sunny, with a light breeze in the afternoon."
    ),
    "four long sentences": (
        "The weather today is sunny and warm with a light breeze from the west. "
        "In the afternoon the temperature will rise to about twenty four degrees. "
        "Later this evening clouds will move in from the coast and bring some light rain. "
        "Tomorrow morning should be cool and dry again before the sun comes back."
    ),
    "streamed answer": (
        "Okay, I found the nearest pharmacy for you. It is on Main Street and it opens early in the morning."
    ),
}
MAX_WER = 0.10
CLICK_STEP = 0.02
"""Largest sample-to-sample step allowed within 5 ms of a seam (-34 dBFS; Piper peaks at 1.0)."""
WORD_GAP = 0.06
"""Longest silence allowed at a seam cut between two words (an untrimmed join leaves about 0.18 s)."""
FRAME = 0.005
SILENCE_LEVEL = 0.003
"""A 5 ms frame whose samples all stay below this (-50 dBFS) is silence."""


def silent_frames(samples: np.ndarray, rate: int) -> np.ndarray:
    size = int(FRAME * rate)
    count = len(samples) // size
    return np.abs(samples[: count * size]).reshape(count, size).max(axis=1) <= SILENCE_LEVEL


def pause_at(samples: np.ndarray, rate: int, index: int) -> float:
    """Seconds of silence in the run of silent 5 ms frames at (or next to) ``index``."""
    quiet = silent_frames(samples, rate)
    frame = min(index // int(FRAME * rate), len(quiet) - 1)
    start = stop = frame
    while start > 0 and quiet[start - 1]:
        start -= 1
    while stop < len(quiet) and quiet[stop]:
        stop += 1
    return (stop - start) * FRAME


def longest_inner_pause(samples: np.ndarray, rate: int) -> float:
    """The longest silence between the first and the last sound of ``samples``."""
    quiet = silent_frames(samples, rate)
    loud = np.flatnonzero(~quiet)
    longest = run = 0
    for silent in quiet[loud[0] : loud[-1] + 1]:
        run = run + 1 if silent else 0
        longest = max(longest, run)
    return longest * FRAME


def step_at(samples: np.ndarray, rate: int, index: int) -> float:
    """Largest sample-to-sample step within 5 ms of ``index``."""
    width = int(FRAME * rate)
    window = samples[max(0, index - width) : index + width]
    return float(np.abs(np.diff(window)).max())


def check_seam(joined: np.ndarray, seam: int, rate: int, one_call: np.ndarray, word_cut: bool) -> None:
    """No click at ``seam`` and no pause there longer than one call makes (a word gap for word cuts)."""
    assert step_at(joined, rate, seam) <= CLICK_STEP
    pause = pause_at(joined, rate, seam)
    allowed = WORD_GAP if word_cut else longest_inner_pause(one_call, rate) + 2 * FRAME
    assert pause <= allowed, f"{pause:.3f} s of silence at the seam, one call has at most {allowed:.3f} s"


@pytest.mark.parametrize(
    ("sentence", "pieces"),
    [
        ("Sure, I have switched off the kitchen lights, and the front door is now locked.", 2),
        ("All right then, the lights are on.", 2),
        ("The living room lights are now on.", 2),
        ("Well, yes.", 1),
        ("It costs 1,000 euros today.", 1),
        ("Done: the timer is set.", 1),
        ("Yes, it will rain.", 1),
    ],
)
def test_the_lead_is_a_speakable_piece_and_nothing_is_lost(sentence, pieces):
    cut = split_lead(sentence)
    assert len(cut) == pieces and " ".join(cut) == sentence
    if pieces == 2:
        assert len(cut[0].split()) >= 2 and len(cut[1].split()) >= 2


@pytest.mark.parametrize("sentence", ["All right then, the lights are on.", "The living room lights are now on."])
def test_whole_sentences_joins_each_lead_to_its_rest(sentence):
    pieces = split_lead(sentence)
    assert isinstance(pieces[0], Lead) and list(whole_sentences([*pieces, "Next one."])) == [sentence, "Next one."]
    assert list(whole_sentences([Lead("A lead cut off")])) == ["A lead cut off"]
    word_cuts_joined = [sentence] if isinstance(pieces[0], Continued) else pieces  # Piper's choice
    assert list(whole_sentences(pieces, joining=Continued)) == word_cuts_joined


def test_a_leading_one_word_clause_rides_with_the_next_clause():
    assert split_lead("Sure, the lights are off now, and the front door is locked.") == [
        "Sure, the lights are off now,",
        "and the front door is locked.",
    ]
    # ... and a clause that makes the lead longer than LEAD_MAX_WORDS is cut at a word inside.
    head, tail = split_lead("Sure, I have switched off the kitchen lights, and the front door is now locked.")
    assert head == "Sure, I have switched off" and isinstance(head, Continued)
    assert tail == "the kitchen lights, and the front door is now locked."
    head, tail = split_lead("Okay, the timer is set for ten minutes from now.")
    assert head.startswith("Okay, the") and isinstance(head, Continued)


def test_a_sentence_without_a_clause_break_is_cut_at_a_word_boundary():
    head, tail = split_lead("The weather today is sunny and warm with a light breeze.")
    assert isinstance(head, Continued) and 3 <= len(head.split()) <= 5
    assert tail.split()[0] in ("is", "and", "with")  # before a word a phrase starts with
    assert not isinstance(split_lead("All right then, the lights are on.")[0], Continued)


async def _spoken(server, text: str, first_clause: bool = True, streamed: bool = False):
    """The engine's chunks for ``text`` in voice joe (streamed: the text arrives in 6-character pieces)."""
    source = None
    if streamed:
        source = TextSource(first_clause=first_clause)
    request = SynthesisRequest(text=text, voice="joe", text_source=source, first_clause=first_clause)

    async def write() -> None:
        for piece in split_mid_word(text, 6):
            source.add(piece)
            await asyncio.sleep(0.005)
        source.finish()

    writer = asyncio.create_task(write()) if streamed else None
    async with server.engine.synthesis(request) as synthesis:
        chunks = [chunk async for chunk in synthesis]
    if writer is not None:
        await writer
    return [c.samples for c in chunks], chunks[0].sample_rate


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_every_answer_shape_starts_with_a_short_piece_and_keeps_its_words(start_server, transcribe, wer, shape):
    """Piper's first audio is the first 0.37 s of its first call. A word cut is joined again (the
    whole sentence's samples); a clause lead is still its own call, and its seam is measured."""
    text = SHAPES[shape]
    first_sentence = split_sentences(text)[0]
    lead = split_lead(first_sentence)[0]
    async with start_server() as server:
        chunks, rate = await _spoken(server, text, streamed=shape == "streamed answer")
        whole, _ = await _spoken(server, text, first_clause=False)
        alone, _ = await _spoken(server, lead, first_clause=False)
        one_call, _ = await _spoken(server, first_sentence, first_clause=False)
    assert len(chunks[0]) / rate < 0.4  # sent before the rest of the call is made
    joined = np.concatenate(chunks)
    heard = transcribe(joined, rate)
    assert wer(text, heard) <= MAX_WER, heard
    if isinstance(lead, Continued):
        assert len(chunks) == len(whole) and all(np.array_equal(a, b) for a, b in zip(chunks, whole))
    else:
        seam = sum(map(len, alone))
        assert np.array_equal(joined[:seam], np.concatenate(alone))  # the lead, spoken as its own call
        check_seam(joined, seam, rate, np.concatenate(one_call), word_cut=False)


@pytest.fixture
def per_call_piper(monkeypatch):
    """Piper as for a voice whose vocoder cannot run apart (a multi-speaker voice): a call per piece."""
    monkeypatch.setattr("sesame_voice_piper._SPLITS", {})  # split voices are kept per process
    monkeypatch.setattr("sesame_voice_piper.split_voice", lambda *args: None)


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_a_lead_spoken_on_its_own_keeps_the_words_and_joins_without_a_seam(
    start_server, transcribe, wer, shape, per_call_piper
):
    text = SHAPES[shape]
    async with start_server() as server:
        chunks, rate = await _spoken(server, text, streamed=shape == "streamed answer")
        whole, _ = await _spoken(server, text, first_clause=False)
    lead = split_lead(split_sentences(text)[0])[0]
    assert len(chunks) == len(whole) + 1  # the lead came as its own first chunk
    joined = np.concatenate(chunks)
    heard = transcribe(joined, rate)
    assert wer(text, heard) <= MAX_WER, heard
    check_seam(joined, len(chunks[0]), rate, whole[0], word_cut=isinstance(lead, Continued))
    # A word cut costs no more time than the one call's pause budget: at most a word gap longer.
    assert len(chunks[0]) + len(chunks[1]) <= len(whole[0]) + rate * 0.6


async def test_the_seam_checks_catch_a_click_and_a_doubled_pause(start_server, per_call_piper):
    """The measures above fail on the joins this work avoids: untrimmed calls and a hard cut."""
    async with start_server() as server:
        head, _ = await _spoken(server, "The living room lights", first_clause=False)
        tail, rate = await _spoken(server, "are now on.", first_clause=False)
        whole, _ = await _spoken(server, "The living room lights are now on.", first_clause=False)
    untrimmed = np.concatenate([head[0], tail[0]])
    with pytest.raises(AssertionError, match="silence at the seam"):
        check_seam(untrimmed, len(head[0]), rate, whole[0], word_cut=True)
    loudest = int(np.argmax(np.abs(head[0])))  # cut in the middle of a vowel: a step, a click
    hard_cut = np.concatenate([head[0][: loudest + 1], np.zeros(rate // 50, dtype=np.float32), tail[0]])
    with pytest.raises(AssertionError):
        check_seam(hard_cut, loudest + 1, rate, whole[0], word_cut=True)


async def test_wyoming_stream_keeps_its_words(piper_wyoming, transcribe, wer):
    _, frontend = piper_wyoming
    text = SHAPES["streamed answer"]
    voice = SynthesizeVoice(name="joe")
    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        await client.write_event(SynthesizeStart(voice=voice).event())
        for piece in split_mid_word(text, 6):
            await client.write_event(SynthesizeChunk(text=piece).event())
        await client.write_event(Synthesize(text=text, voice=voice).event())
        await client.write_event(SynthesizeStop().event())
        reply = await read_reply(client, ("synthesize-stopped",))
    samples, rate = reply.samples()
    assert wer(text, transcribe(samples, rate)) <= MAX_WER


@pytest.mark.parametrize("stream_format", ["audio", "sse"])
async def test_openai_speech_takes_the_same_policy(start_server, transcribe, wer, stream_format):
    """Both OpenAI stream formats send the engine's audio; SSE's first delta is its short first piece."""
    import aiohttp

    text = SHAPES["one clause"]
    async with start_server() as server:
        pieces, rate = await _spoken(server, text)
        body = {
            "model": "tts-1",
            "input": text,
            "voice": "joe",
            "response_format": "pcm",
            "stream_format": stream_format,
        }
        url = f"http://127.0.0.1:{server.http_port}/v1/audio/speech"
        async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
            assert response.status == 200
            raw = await response.read()
    if stream_format == "sse":
        events = [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")]
        deltas = [base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta"]
        assert len(deltas) >= 2 and len(deltas[0]) / 2 / 24000 < 0.4  # the first piece on its own
        raw = b"".join(deltas)
    samples, pcm_rate = sf.read(io.BytesIO(raw), format="RAW", subtype="PCM_16", samplerate=24000, channels=1)
    assert wer(text, transcribe(samples.astype(np.float32), pcm_rate)) <= MAX_WER
    assert abs(len(samples) / pcm_rate - sum(map(len, pieces)) / rate) < 0.01
