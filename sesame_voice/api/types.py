"""Data types that cross the frontend → engine → provider boundaries."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from sesame_voice.api.text import TextSource


FRAME_SECONDS = 0.08
"""One codec frame: CSM's Mimi codec makes 12.5 frames a second; the old clients stream 80 ms packets."""
FRAME_SAMPLES = 1920
"""Samples in one 80 ms frame at 24 kHz."""


@dataclass(frozen=True)
class Word:
    """One word with its time span in seconds (speech-to-text: from the audio's start; a provider's
    ``AudioChunk.words``: from the chunk's start)."""

    start: float
    end: float
    word: str
    probability: float | None = None


@dataclass(frozen=True)
class AudioChunk:
    """Mono float32 PCM in [-1, 1] at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int
    codes: np.ndarray | None = None
    """Codec tokens (codebooks × frames) these samples decode from, for providers that generate a
    codec's tokens (CSM: Mimi); the frames cover the samples evenly. None when the provider has none."""
    codec: str | None = None
    """Name of the codec ``codes`` belong to (e.g. ``"mimi"``)."""
    words: tuple[Word, ...] | None = None
    """Words spoken in these samples, timed in seconds from the chunk's first sample, for providers
    that know them (Piper's phoneme durations) when ``job.request.word_timings`` is set; None: unknown
    (the caller may align the audio itself). Offsets add up: chunk k's words are at (duration of
    chunks 0..k-1) + start."""

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / float(self.sample_rate)

    def head(self, count: int) -> "AudioChunk":
        """The first ``count`` samples, with the codec frames that cover them."""
        count = max(0, int(count))
        codes = self.codes
        if codes is not None and len(self.samples):
            per_frame = len(self.samples) / codes.shape[1] if codes.shape[1] else 1
            codes = codes[:, : int(np.ceil(count / per_frame))]
        words = self.words
        if words is not None:
            cut = count / float(self.sample_rate)
            words = tuple(replace(w, end=min(w.end, cut)) for w in words if w.start < cut)
        return AudioChunk(self.samples[:count], self.sample_rate, codes, self.codec, words)


@dataclass(frozen=True)
class ContextSegment:
    """One earlier utterance of a conversation, for conversational providers (CSM)."""

    text: str
    speaker: int = 0
    audio: np.ndarray | None = None
    """Mono float32 samples of the utterance, if known."""
    sample_rate: int | None = None


@dataclass
class SynthesisRequest:
    """What every frontend asks of the engine, whatever its protocol."""

    text: str
    """The whole text; ignored when ``text_source`` is given."""
    voice: str | None = None
    """Voice name or alias; None means the default voice."""
    speed: float = 1.0
    """Tempo factor 0.25–4.0; pitch is kept."""
    response_format: str = "mp3"
    context: list[ContextSegment] = field(default_factory=list)
    max_audio_length_ms: int | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    """Per-request overrides of the voice's sampling parameters (temperature, top_k…)."""
    instructions: str | None = None
    """Free-text delivery hints (OpenAI ``instructions``); providers may ignore them."""
    frontend: str = ""
    """Name of the frontend that asked, for logs and voice resolution."""
    text_source: TextSource | None = None
    """Text that is still arriving (streamed by a client): one job speaks it all as it grows."""
    first_clause: bool = True
    """Hand the provider the first sentence's lead on its own, for a sooner first audio
    (``sesame_voice.api.lead.split_lead``; every route's default; False: whole sentences)."""
    word_timings: bool = False
    """The caller wants word timings: providers that know them fill ``AudioChunk.words``."""


@dataclass(frozen=True)
class Voice:
    """A named voice: a provider plus its parameters, with fallbacks."""

    name: str
    provider: str
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    aliases: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("en",)
    fallbacks: tuple[Mapping[str, Any], ...] = ()
    """Each a mapping with ``provider`` and optional parameters, tried in order."""
    speakers: tuple[str, ...] = ()
    source: Path | None = None
    """File the voice was loaded from, if any."""

    def candidates(self) -> list[tuple[str, Mapping[str, Any]]]:
        """(provider, params) pairs in the order they should be tried."""
        pairs: list[tuple[str, Mapping[str, Any]]] = [(self.provider, self.params)]
        for fallback in self.fallbacks:
            params = {k: v for k, v in fallback.items() if k != "provider"}
            pairs.append((str(fallback["provider"]), params))
        return pairs


@dataclass(frozen=True)
class RejectedFile:
    """A file in the voices folder that a provider looked at and refused; ``reason`` says why.

    ``Provider.discover_voices`` yields these next to its ``Voice`` objects, so one bad file is
    reported (``sesame-voice voices``, ``GET /v1/audio/voices``, the log) without hiding the others.
    """

    path: Path
    reason: str


@dataclass(frozen=True)
class ClipPolicy:
    """Which speaker clips (``NAME.wav`` + ``NAME.txt``) a provider can use, declared by the provider.

    A provider with ``clones=True`` imitates the clip's speaker; one with ``clones=False`` is a
    stand-in that speaks for a cloned voice in its own voice (a fallback while the cloner is not
    available). A clip becomes a voice only when some provider with ``clones=True`` accepts it.
    """

    min_seconds: float = 0.5
    max_seconds: float = 30.0
    clones: bool = True
    priority: int = 0
    """Among providers that clone, the highest priority serves first, the others are fallbacks."""

    def refusal(self, seconds: float) -> str | None:
        """Why a clip this long is refused, or None when it is accepted."""
        if seconds < self.min_seconds or seconds > self.max_seconds:
            return f"{seconds:.1f} s is outside {self.min_seconds:g}–{self.max_seconds:g} s"
        return None


@dataclass
class ProviderJob:
    """One unit of work handed to a provider in its worker thread."""

    sentences: Iterable[str]
    """The text, split into sentences, in order. Iterating may block (in the worker thread) until the
    next sentence of a streamed text is complete; each iteration starts again at the first one."""
    voice: Voice
    params: Mapping[str, Any]
    """The voice's parameters for this provider, merged with request overrides."""
    request: SynthesisRequest
    cancelled: threading.Event = field(default_factory=threading.Event)
    speed: float = 1.0
    """Tempo the provider renders itself: within its ``native_speed_range``, the engine stretches the rest."""

    @property
    def text(self) -> str:
        """All sentences joined by spaces (for a streamed text: once it has all arrived)."""
        return " ".join(self.sentences)
