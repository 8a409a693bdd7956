"""Whisper on real human recordings: repeated phrases are not decoder loops, long audio is decoded once."""

from __future__ import annotations

import numpy as np
import pytest
import real_speech
import soxr

from sesame_voice import TranscriptionJob
from sesame_voice.config import Settings

pytestmark = pytest.mark.skipif(real_speech.missing() is not None, reason=str(real_speech.missing()))


@pytest.fixture(scope="module")
def corpus() -> dict[str, real_speech.Clip]:
    return {clip.name: clip for clip in real_speech.clips()}


@pytest.fixture(scope="module")
def providers():
    """Two loaded Whisper providers: short window on (the default) and off."""
    from sesame_voice_whisper import WhisperProvider

    loaded = {}
    for short in (True, False):
        provider = WhisperProvider(Settings(plugins={"whisper": {"short_window": short, "cpu_threads": 2}}))
        provider.ensure_loaded()
        loaded[short] = provider
    return loaded


def _at_16k(clip: real_speech.Clip, via_pcm16: bool = False) -> np.ndarray:
    """The clip at 16 kHz; ``via_pcm16``: as it reaches the provider through Wyoming (16-bit PCM, as
    Home Assistant sends it, read back by the server's own converter)."""
    samples = soxr.resample(clip.samples, clip.rate, 16000).astype(np.float32) if clip.rate != 16000 else clip.samples
    if not via_pcm16:
        return samples
    from stt_helpers import pcm16

    from sesame_voice_wyoming.asr import pcm_to_float

    return pcm_to_float(pcm16(samples), 2, 1)


def _text(provider, samples: np.ndarray) -> str:
    return " ".join(s.text.strip() for s in provider.transcribe(TranscriptionJob(samples, 16000, language="en")))


def test_the_corpus_is_real_speech_of_1_to_30_seconds(corpus):
    durations = [clip.duration for clip in corpus.values()]
    assert len(corpus) >= 10 and min(durations) >= 1.0 and max(durations) <= 30.0
    assert any(d >= 20 for d in durations)


def test_a_phrase_said_twice_is_speech_three_times_a_loop():
    from sesame_voice_whisper.short_window import repetitive

    said = "This is Victor kilo 5, Quebec Italy, Victor kilo 5, Quebec Italy, testing 1, 2, 3, 4, 5, 5, 4, 3, 2, 1."
    assert not repetitive([said.lower()])
    assert not repetitive(["turn on the lights.", "turn on the lights."])
    assert repetitive(["turn on the lights.", "turn on the lights.", "turn on the lights."])
    assert repetitive(["and so on and so on and so on and so"])


def test_a_real_call_out_with_repeats_is_kept_from_the_short_window(providers, corpus, wer):
    from sesame_voice_whisper.short_window import transcribe_short

    clip = corpus["vk5qi"]
    segments = transcribe_short(providers[True]._model, _at_16k(clip), "en", None, 5)
    assert segments is not None, "a call sign said twice was judged a decoder loop"
    short = " ".join(s["text"].strip() for s in segments)
    assert wer(clip.reference, short) <= wer(clip.reference, _text(providers[False], _at_16k(clip)))


@pytest.mark.parametrize("via_pcm16", [False, True])
def test_long_real_speech_is_answered_from_a_short_window_alone(providers, corpus, monkeypatch, wer, via_pcm16):
    """23.5 s of two radio call-outs, each said twice ("Victor Kilo 5 Quebec India, Victor Kilo 5
    Quebec India"): its 26.5 s window passes every check, is decoded once, and loses no word."""
    clip = next(c for c in corpus.values() if c.duration >= 20)
    full = _text(providers[False], _at_16k(clip, via_pcm16))
    provider = providers[True]
    monkeypatch.setattr(provider._model, "transcribe", lambda *a, **k: pytest.fail("decoded a second time"))
    text = _text(provider, _at_16k(clip, via_pcm16))
    assert wer(clip.reference, text) <= wer(clip.reference, full)


@pytest.mark.parametrize("via_pcm16", [False, True])
@pytest.mark.parametrize("name", ["goforward.raw", "hts1a", "librivox/sense_and_sensibility_01_austen_64kb-0870"])
def test_short_window_is_as_accurate_as_the_full_window_on_real_speech(providers, corpus, name, via_pcm16, wer):
    """0870 starts with a quiet "And" that the short window's best hypothesis once dropped."""
    clip = corpus[name]
    short, full = (_text(providers[s], _at_16k(clip, via_pcm16)) for s in (True, False))
    assert wer(clip.reference, short) <= wer(clip.reference, full)


@pytest.mark.parametrize("via_pcm16", [False, True])
@pytest.mark.parametrize("name", ["cards/004", "vk5qi"])
def test_real_commands_are_answered_from_the_short_window_alone(providers, corpus, name, via_pcm16, monkeypatch, wer):
    """ "five five" once ran into a loop to Whisper's 448 tokens, was rejected and decoded again; through
    16-bit PCM its best short-window hypothesis still loops ("five, five, five…") and is rescued from
    the same encoder output instead of a second, 30 s decode."""
    provider = providers[True]
    monkeypatch.setattr(provider._model, "transcribe", lambda *a, **k: pytest.fail("decoded a second time"))
    clip = corpus[name]
    assert wer(clip.reference, _text(provider, _at_16k(clip, via_pcm16))) <= 0.1
