"""Deterministic test providers, registered into a fresh PluginManager per test."""

from __future__ import annotations

import threading
import time

import numpy as np

from sesame_voice import (
    AudioChunk,
    Provider,
    ProviderFailed,
    ProviderUnavailable,
    Voice,
    hookimpl,
)

RATE = 24000


def think(seconds: float, cancelled: threading.Event) -> bool:
    """Busy for ``seconds`` like a model; False as soon as ``cancelled`` is set."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cancelled.is_set():
            return False
        time.sleep(0.01)
    return not cancelled.is_set()


class ToneProvider(Provider):
    """One 0.5 s tone per sentence, after ``delay`` seconds of 'thinking'; records what it did."""

    name = "tone"
    delay = 0.0

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.sentences_done: list[str] = []
        self.cancelled_seen = threading.Event()
        self.started = threading.Event()
        self.threads: set[int] = set()
        """Threads ``synthesize`` ran in."""
        self.spans: list[tuple[float, float]] = []
        """(start, end) ``time.perf_counter()`` of each sentence's 'thinking'."""

    def default_voices(self):
        return [Voice(name="tone", provider=self.name, description="test tones")]

    def synthesize(self, job):
        self.started.set()
        self.threads.add(threading.get_ident())
        for index, sentence in enumerate(job.sentences):
            began = time.perf_counter()
            thought = think(self.delay, job.cancelled)
            self.spans.append((began, time.perf_counter()))
            if not thought:
                self.cancelled_seen.set()
                return
            t = np.arange(RATE // 2) / RATE
            self.sentences_done.append(sentence)
            yield AudioChunk((0.3 * np.sin(2 * np.pi * (300 + 50 * index) * t)).astype(np.float32), RATE)


class SlowToneProvider(ToneProvider):
    """A tone provider that takes 0.3 s per sentence."""

    name = "slowtone"
    delay = 0.3

    def default_voices(self):
        return [Voice(name="slowtone", provider=self.name)]


class BrokenProvider(Provider):
    """Loads fine, then fails every synthesis."""

    name = "broken"

    def default_voices(self):
        return [Voice(name="broken", provider=self.name)]

    def synthesize(self, job):
        raise RuntimeError("synthetic failure for tests")
        yield  # pragma: no cover


class UnloadableProvider(Provider):
    """Can never load (like CSM without weights); voices fall back."""

    name = "unloadable"
    load_attempts = 0

    def load(self):
        type(self).load_attempts += 1
        raise ProviderUnavailable("weights missing: set MODEL_ID to a folder")

    def default_voices(self):
        return [Voice(name="needs-fallback", provider=self.name, fallbacks=({"provider": "tone"},))]

    def synthesize(self, job):  # pragma: no cover - never loads
        raise ProviderFailed("unreachable")


class FakePlugin:
    """A plugin object registering the test providers."""

    def __init__(self, *providers) -> None:
        self.providers = providers or (ToneProvider, SlowToneProvider, BrokenProvider, UnloadableProvider)

    @hookimpl
    def register_providers(self, register):
        for provider in self.providers:
            register(provider)
