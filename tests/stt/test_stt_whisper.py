"""The Whisper provider: its short encoder window gives the 30 s window's words, and falls back safely."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from sesame_voice import TranscriptionJob
from sesame_voice.config import ConfigError, Settings
from support import SENTENCES


@pytest.fixture(scope="module")
def spoken() -> list[np.ndarray]:
    """SENTENCES and "Yes." spoken by the bundled Piper voice at 16 kHz."""
    from piper import PiperVoice

    from sesame_voice_piper import embedded_model

    voice = PiperVoice.load(str(embedded_model()))
    audio = []
    for text in [*SENTENCES, "Yes."]:
        chunks = list(voice.synthesize(text))
        samples = np.concatenate([c.audio_float_array for c in chunks])
        audio.append(soxr.resample(samples, chunks[0].sample_rate, 16000).astype(np.float32))
    return audio


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


def _text(provider, samples: np.ndarray, **job) -> str:
    return " ".join(s.text.strip() for s in provider.transcribe(TranscriptionJob(samples, 16000, **job)))


def test_short_window_hears_what_the_full_window_hears(providers, spoken, monkeypatch, wer):
    import sesame_voice_whisper.provider as whisper

    used = []
    original = whisper.transcribe_short
    monkeypatch.setattr(whisper, "transcribe_short", lambda *a, **k: used.append(r := original(*a, **k)) or r)
    full = " ".join(_text(providers[False], samples, language="en") for samples in spoken)
    short = " ".join(_text(providers[True], samples, language="en") for samples in spoken)
    reference = " ".join([*SENTENCES, "Yes."])
    # Over the set: a word here or there ("a"/"the") may differ, the error rate may not grow.
    assert wer(full, short) <= 0.1 and wer(reference, short) <= 0.1
    assert len(used) == len(spoken) and sum(r is not None for r in used) >= len(spoken) - 1


def test_short_window_segments_end_within_the_audio(providers, spoken):
    from sesame_voice_whisper.short_window import transcribe_short

    for samples in spoken:
        segments = transcribe_short(providers[True]._model, samples, "en", None, 5)
        if segments is not None:
            assert segments and all(0 <= s["start"] < s["end"] <= len(samples) / 16000 for s in segments)


def test_an_unreliable_short_decode_falls_back_to_the_full_window(providers, spoken, monkeypatch, wer):
    import sesame_voice_whisper.provider as whisper

    monkeypatch.setattr(whisper, "transcribe_short", lambda *a, **k: None)
    assert wer(SENTENCES[0], _text(providers[True], spoken[0], language="en")) <= 0.1


def test_word_timestamps_and_long_audio_use_the_full_window(providers, spoken, monkeypatch):
    import sesame_voice_whisper.provider as whisper

    monkeypatch.setattr(whisper, "transcribe_short", lambda *a, **k: pytest.fail("short window used"))
    job = TranscriptionJob(spoken[0], 16000, language="en", word_timestamps=True)
    assert [w.word.strip() for s in providers[True].transcribe(job) for w in s.words][:2] == ["The", "quick"]
    long = np.concatenate([spoken[0], np.zeros(16000 * 28, np.float32)])
    assert _text(providers[True], long, language="en").startswith("The quick brown fox")


def test_plugin_settings_come_from_yaml_and_env(monkeypatch):
    from sesame_voice_whisper.options import WhisperOptions

    settings = Settings(plugins={"whisper": {"model": "small", "beam_size": 4}}, environ={"STT_BEAM_SIZE": "2"})
    options = WhisperOptions.from_settings(settings)
    assert options.model == "small" and options.beam_size == 2
    with pytest.raises(ConfigError, match="unknown setting 'modle'"):
        WhisperOptions.from_settings(Settings(plugins={"whisper": {"modle": "small"}}))
    with pytest.raises(ConfigError, match="STT_SHORT_WINDOW"):
        WhisperOptions.from_settings(Settings(), env={"STT_SHORT_WINDOW": "perhaps"})


def test_word_loops_and_thrice_repeated_segments_count_as_failures():
    """Said twice is how people repeat themselves (tests/stt/test_stt_real_speech.py); three times is a loop."""
    from sesame_voice_whisper.short_window import repetitive

    assert repetitive(["hello? hello? hello?"]) and repetitive(["turn it on.", "turn it on.", "turn it on."])
    assert not repetitive(["turn it on.", "turn it on."])
    assert not repetitive(["that that is, is.", "yes."])
