"""The session WebSocket's microphone input: declared formats, the shared VAD finding turns, bounds."""

from __future__ import annotations

import numpy as np
import pytest

from sesame_voice import InvalidRequest
from sesame_voice.audio import to_pcm16
from sesame_voice_sessions.microphone import Microphone, parse_audio_in


def tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def feed(mic: Microphone, samples: np.ndarray, encode) -> list:
    step = mic.rate * 40 // 1000
    events = []
    for start in range(0, samples.size, step):
        events += mic.feed(encode(samples[start : start + step]))
    return events


@pytest.mark.parametrize(
    ("encoding", "rate", "encode"),
    [("s16le", 16000, to_pcm16), ("f32le", 48000, lambda s: s.astype("<f4").tobytes())],
)
def test_the_vad_cuts_each_turn_with_its_prefix_padding(encoding, rate, encode):
    mic = Microphone(parse_audio_in({"type": "audio_in", "encoding": encoding, "sample_rate": rate}), 60)
    silence = np.zeros(rate, dtype=np.float32)
    events = feed(mic, np.concatenate([silence, tone(1.2, rate), silence, tone(0.6, rate), silence]), encode)
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"] * 2
    assert [e.ms for e in events] == [1000, 2200, 3200, 3800]
    first, second = events[1].audio, events[3].audio
    assert first.size == pytest.approx((1.2 + 0.3) * rate, abs=rate * 0.02)  # the speech and 300 ms before it
    assert second.size == pytest.approx((0.6 + 0.3) * rate, abs=rate * 0.02)
    assert np.abs(first[int(0.3 * rate) + 100 :]).max() > 0.4 and np.abs(first[: int(0.28 * rate)]).max() == 0


def test_formats_and_bounds_are_checked():
    for bad in ({"encoding": "alaw", "sample_rate": 8000}, {"sample_rate": 7999}, {"sample_rate": "16000"}):
        with pytest.raises(InvalidRequest) as err:
            parse_audio_in(bad)
        assert err.value.code == "unsupported_audio_format"
    manual = parse_audio_in({"sample_rate": 16000, "turn_detection": None})
    mic = Microphone(manual, max_seconds=1)
    assert mic.feed(to_pcm16(tone(0.9, 16000))) == []
    with pytest.raises(InvalidRequest) as err:
        mic.feed(to_pcm16(tone(0.2, 16000)))
    assert err.value.code == "audio_buffer_full"
    assert mic.commit().size == 0  # the over-long turn was dropped
    mic.feed(to_pcm16(tone(0.5, 16000)))
    assert mic.commit().size == 8000
