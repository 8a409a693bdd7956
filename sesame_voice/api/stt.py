"""Speech to text for plugins: the provider base class and its result types."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from sesame_voice.api.errors import ProviderUnavailable
from sesame_voice.api.provider import ModelHolder
from sesame_voice.api.types import Word


class SpeechToTextUnavailable(ProviderUnavailable):
    """No speech-to-text provider is installed, or none could load."""

    code = "stt_unavailable"


@dataclass(frozen=True)
class Segment:
    """A stretch of decoded speech; times in seconds from the start of the audio."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    tokens: tuple[int, ...] = ()
    temperature: float | None = None
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    no_speech_prob: float | None = None


@dataclass
class Transcript:
    """The whole result: text, language (ISO code, if known), audio duration and segments."""

    text: str
    language: str | None
    duration: float
    segments: list[Segment] = field(default_factory=list)
    provider: str = ""
    model: str = ""


@dataclass
class TranscriptionJob:
    """One unit of work handed to a speech-to-text provider in its worker thread."""

    samples: np.ndarray
    """Mono float32 in [-1, 1] at the provider's ``sample_rate``."""
    sample_rate: int
    language: str | None = None
    """ISO 639-1 code the speech is in, or None to detect it."""
    prompt: str | None = None
    """Text that precedes the audio (names, spelling, style); providers may ignore it."""
    temperature: float | None = None
    """Sampling temperature; None is the provider's default."""
    word_timestamps: bool = False
    cancelled: threading.Event = field(default_factory=threading.Event)
    detected_language: str | None = None
    """Set by the provider when it knows the language (detected or given)."""

    @property
    def duration(self) -> float:
        """Length of the audio in seconds."""
        return len(self.samples) / float(self.sample_rate)


class SttProvider(ModelHolder):
    """A speech recogniser. Every method except ``__init__``, ``status``, ``languages`` and
    ``model_name`` runs in its worker thread.

    Subclasses set ``name`` and implement ``transcribe``; they override ``load`` when they hold a
    model. ``sample_rate`` is the rate ``transcribe`` receives (the service resamples to it).
    """

    sample_rate: ClassVar[int] = 16000

    def model_name(self) -> str:
        """The model this provider serves, as clients may name it (e.g. ``tiny.en``)."""
        return self.name

    def languages(self) -> list[str]:
        """ISO 639-1 codes of the languages it understands (empty: unknown)."""
        return []

    def transcribe(self, job: TranscriptionJob) -> Iterator[Segment]:
        """Yield segments in order; stop soon after ``job.cancelled`` is set."""
        raise NotImplementedError

    def status(self) -> dict:
        return {**super().status(), "model": self.model_name(), "languages": self.languages()}
