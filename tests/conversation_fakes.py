"""Test providers for the legacy API and sessions: one records what reaches it, one waits at a gate; audio helpers."""

from __future__ import annotations

import base64
import gc
import io
import threading
import tracemalloc
from collections import deque

import numpy as np
import soundfile as sf

from fakes import FakePlugin, ToneProvider, UnloadableProvider
from sesame_voice import AudioChunk, Provider, Segment, SttProvider, Voice, hookimpl

OUT_RATE = 16000
"""The recorder speaks at 16 kHz, so every 24 kHz answer is provably resampled."""


class RecordingProvider(Provider):
    """Conditions on context (at 16 kHz, window in seconds); speaks 0.25 s of tone per sentence; records every job."""

    name = "recorder"
    supports_context = True
    context_sample_rate = 16000
    sampling_params = ("temperature", "top_k")
    window_seconds = 600.0

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.jobs: deque = deque(maxlen=2)
        """The latest jobs (bounded: old jobs would keep their context audio alive)."""

    def context_window(self, params) -> float:
        return float(params.get("window_seconds", self.window_seconds))

    def default_voices(self):
        return [
            Voice(name="recorder", provider=self.name, description="records its jobs"),
            Voice(name="small-window", provider=self.name, params={"window_seconds": 3.0}),
        ]

    def synthesize(self, job):
        self.jobs.append(job)
        t = np.arange(OUT_RATE // 4) / OUT_RATE
        for _ in job.sentences:
            yield AudioChunk((0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), OUT_RATE)


class GatedProvider(Provider):
    """Speaks one chunk, then waits for ``gate`` before the second: audio must leave while it waits."""

    name = "gated"
    gate = threading.Event()
    finished = threading.Event()

    def default_voices(self):
        return [Voice(name="gated", provider=self.name)]

    def synthesize(self, job):
        tone = (0.2 * np.sin(2 * np.pi * 200 * np.arange(4800) / 24000)).astype(np.float32)
        yield AudioChunk(tone, 24000)
        while not type(self).gate.wait(0.05):
            if job.cancelled.is_set():
                return
        yield AudioChunk(tone, 24000)
        type(self).finished.set()


def legacy_plugin() -> FakePlugin:
    """The test providers as a plugin."""
    return FakePlugin(RecordingProvider, GatedProvider, ToneProvider, UnloadableProvider)


def sine(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    """A float32 sine."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def wav_b64(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> str:
    """Base64 of a WAV file of ``samples``."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    """Frequency of the strongest FFT bin."""
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def read_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Decode an audio file as a user would."""
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    return samples, rate


SERVER_CODE = [
    tracemalloc.Filter(True, pattern)
    for pattern in (
        "*/sesame_voice*",
        "*/numpy/*",
        "*/aiohttp/*",
        "*/soundfile.py",
        "*/soxr/*",
        "*/tests/conversation_fakes.py",
        "*/tests/legacy/*",
        "*/tests/sessions/*",
    )
]
"""Where the server's request path allocates (the last frame of each trace). Other threads still
importing modules for earlier tests' providers allocate elsewhere and are not the memory under test."""


def allocated() -> int:
    """Bytes traced by tracemalloc (started by the caller) in the server's own code path, after a collection."""
    gc.collect()
    return sum(stat.size for stat in tracemalloc.take_snapshot().filter_traces(SERVER_CODE).statistics("filename"))


class WordsStt(SttProvider):
    """A third-party speech-to-text provider that hears the same words in any audio; records calls."""

    name = "words"
    calls: list[tuple[int, int]] = []

    def model_name(self) -> str:
        return "words-1"

    def transcribe(self, job):
        type(self).calls.append((len(job.samples), job.sample_rate))
        yield Segment(start=0.0, end=job.duration, text=" words heard in the audio")


class WordsSttPlugin:
    """Registers ``WordsStt`` like a third-party package would."""

    @hookimpl
    def register_stt_providers(self, register):
        register(WordsStt)
