"""The server's transcription service: validates audio and runs speech-to-text providers off the event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np

from sesame_voice.api.errors import InvalidRequest
from sesame_voice.api.languages import language_code
from sesame_voice.api.stt import (
    Segment,
    SpeechToTextUnavailable,
    SttProvider,
    Transcript,
    TranscriptionJob,
)
from sesame_voice.audio.resampling import resample
from sesame_voice.engine.worker import ProviderWorker

if TYPE_CHECKING:  # pragma: no cover
    from sesame_voice.config import Settings

_LOGGER = logging.getLogger(__name__)
SILENCE_PEAK = 1e-3
"""Audio whose loudest sample is below this (-60 dBFS) is silence: an empty transcript, no model run."""
MAX_AUDIO_SECONDS = 4 * 3600
"""Longest audio the service accepts in one request."""


class ModelNotFound(InvalidRequest):
    """A request named a speech-to-text model that no provider serves."""

    code = "model_not_found"


class Transcription:
    """A running transcription: iterate its segments as they are decoded, or await ``result()``."""

    def __init__(self, job: TranscriptionJob, provider: SttProvider, segments: AsyncIterator[Segment]) -> None:
        self.job = job
        self.provider = provider
        self.segments: list[Segment] = []
        self._source = segments

    def __aiter__(self) -> AsyncIterator[Segment]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Segment]:
        async for segment in self._source:
            self.segments.append(segment)
            yield segment

    async def result(self) -> Transcript:
        """Wait for every remaining segment; the whole transcript."""
        async for _ in self:
            pass
        return self.transcript()

    def transcript(self) -> Transcript:
        """The transcript of the segments decoded so far."""
        text = " ".join(s.text.strip() for s in self.segments if s.text.strip())
        return Transcript(
            text=text,
            language=self.job.detected_language or self.job.language,
            duration=self.job.duration,
            segments=list(self.segments),
            provider=self.provider.name,
            model=self.provider.model_name(),
        )

    async def aclose(self) -> None:
        """Stop decoding (client went away, or done)."""
        self.job.cancelled.set()
        await self._source.aclose()


def _mono(samples: np.ndarray) -> np.ndarray:
    """A float32 1-D copy of ``samples``; several channels (samples × channels) are averaged."""
    try:
        x = np.asarray(samples, dtype=np.float32)
    except (TypeError, ValueError):
        raise InvalidRequest("audio samples must be numbers", param="file", code="invalid_audio") from None
    if x.ndim == 2:
        x = x.mean(axis=1 if x.shape[0] >= x.shape[1] else 0)
    if x.ndim != 1:
        raise InvalidRequest(
            f"audio must be mono or samples × channels, got shape {x.shape}", param="file", code="invalid_audio"
        )
    return np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)


def _checked_shape(samples) -> np.ndarray:
    """``samples`` as an array (no copy when it already is one), refused unless mono or samples × channels."""
    if not isinstance(samples, np.ndarray):
        return _mono(samples)  # lists are small: convert here
    if samples.ndim not in (1, 2) or not (np.issubdtype(samples.dtype, np.number)):
        raise InvalidRequest(
            f"audio must be mono or samples × channels numbers, got shape {samples.shape}",
            param="file",
            code="invalid_audio",
        )
    return samples


class SpeechToText:
    """The server's speech-to-text service: validates audio and runs a provider off the event loop.

    ``await server.speech_to_text.transcribe(samples, sample_rate)`` → ``Transcript``;
    ``server.speech_to_text.start(...)`` → a ``Transcription`` whose segments arrive as decoded.
    """

    def __init__(
        self, providers: Mapping[str, SttProvider], settings: "Settings", built_in: Iterable[str] = ()
    ) -> None:
        self.providers = dict(providers)
        self.built_in = [name for name in built_in if name in self.providers]
        """Providers shipped with sesame-voice itself (Whisper): the default unless DEFAULT_STT says otherwise."""
        self.configured_default = settings.default_stt.strip()
        """DEFAULT_STT as configured (empty: the built-in provider)."""
        self.workers = {
            name: ProviderWorker(p, settings.max_queue, kind="stt", max_queued_chunks=settings.max_queued_chunks)
            for name, p in providers.items()
        }
        self.listeners: list[Callable[[], None]] = []
        """Called (on the event loop) after a provider finished loading or failed to."""

    @property
    def available(self) -> bool:
        """True if the default provider is installed and has not failed to load."""
        default = self.providers.get(self.default_name() or "")
        return default is not None and default.state != "failed"

    def find(self, name: str) -> SttProvider | None:
        """The provider called, or serving a model called, ``name`` (None if none does)."""
        return next((p for p in self.providers.values() if name in (p.name, p.model_name())), None)

    def default_name(self) -> str | None:
        """The name of the provider that answers requests naming none (None: nothing installed).

        DEFAULT_STT when set; else the built-in provider (Whisper); only when that is not installed
        (disabled), the first provider by name, never silently (``/health`` and the start-up log show it).
        """
        if self.configured_default:
            found = self.find(self.configured_default)
            return found.name if found is not None else self.configured_default
        if not self.providers:
            return None
        return (self.built_in or sorted(self.providers))[0]

    def provider(self, name: str | None = None) -> SttProvider:
        """The provider called (or serving a model called) ``name``; without a name, the default one.

        ModelNotFound for a name no provider serves; SpeechToTextUnavailable when the default one is
        not installed or failed to load (another provider never stands in for it).
        """
        if not self.providers:
            raise SpeechToTextUnavailable(
                "no speech-to-text provider is enabled; enable the built-in one or install a "
                "speech-to-text plugin (docs/stt.md)"
            )
        if name:
            found = self.find(name)
            if found is None:
                raise ModelNotFound(
                    f"no speech-to-text model {name[:64]!r}; models: {', '.join(self.model_names())}",
                    param="model",
                )
            return found
        default = self.providers.get(self.default_name() or "")
        if default is None:
            raise SpeechToTextUnavailable(
                f"the default speech-to-text provider DEFAULT_STT={self.configured_default!r} is not installed "
                f"(installed: {', '.join(sorted(self.providers))})"
            )
        if default.state == "failed":
            raise SpeechToTextUnavailable(
                f"the speech-to-text provider {default.name} could not load ({default.error})"
            )
        return default

    def model_names(self) -> list[str]:
        """Model names of every installed provider."""
        return [p.model_name() for p in self.providers.values()]

    def languages(self) -> list[str]:
        """Every language some provider understands, sorted."""
        return sorted({lang for p in self.providers.values() for lang in p.languages()})

    async def preload(self) -> None:
        """Load every provider in its worker thread, then tell the listeners."""
        for worker in self.workers.values():
            try:
                await worker.call(worker.provider.ensure_loaded)
            except Exception as err:  # noqa: BLE001 - remembered by the provider, shown in /health
                _LOGGER.debug("Speech-to-text provider %s not available: %s", worker.provider.name, err)
        for listener in list(self.listeners):
            listener()

    def start(
        self,
        samples: np.ndarray,
        sample_rate: int,
        language: str | None = None,
        prompt: str | None = None,
        temperature: float | None = None,
        word_timestamps: bool = False,
        provider: str | None = None,
    ) -> Transcription:
        """Validate the audio and start transcribing it; iterate the result or await ``result()``.

        The caller must ``aclose()`` a Transcription it stops iterating early.
        """
        chosen = self.provider(provider)
        audio = _checked_shape(samples)  # the float32 mono copy is made in the worker thread (_prepared)
        try:
            rate = int(sample_rate)
        except (TypeError, ValueError):
            raise InvalidRequest("sample_rate must be an integer", code="invalid_audio") from None
        if not 1000 <= rate <= 384000:
            raise InvalidRequest(f"sample rate must be 1000-384000 Hz, got {rate}", code="invalid_audio")
        frames = audio.shape[0] if audio.ndim == 1 or audio.shape[0] >= audio.shape[1] else audio.shape[1]
        if audio.size == 0:
            raise InvalidRequest("the audio is empty: no samples to transcribe", param="file", code="empty_audio")
        if frames / rate > MAX_AUDIO_SECONDS:
            raise InvalidRequest(
                f"the audio is {frames / rate:.0f} s long; the maximum is {MAX_AUDIO_SECONDS} s",
                param="file",
                code="audio_too_long",
            )
        if temperature is not None and not 0.0 <= float(temperature) <= 1.0:
            raise InvalidRequest("temperature must be between 0 and 1", param="temperature")
        job = TranscriptionJob(
            samples=audio,
            sample_rate=rate,
            language=language_code(language),
            prompt=prompt or None,
            temperature=None if temperature is None else float(temperature),
            word_timestamps=word_timestamps,
        )
        worker = self.workers[chosen.name]
        return Transcription(job, chosen, worker.stream(job, _prepared(chosen)))

    async def transcribe(self, samples: np.ndarray, sample_rate: int, **options) -> Transcript:
        """The transcript of mono (or samples × channels) float audio at ``sample_rate``.

        ``options`` are those of ``start``: ``language``, ``prompt``, ``temperature``,
        ``word_timestamps``, ``provider``.
        """
        transcription = self.start(samples, sample_rate, **options)
        try:
            return await transcription.result()
        finally:
            await transcription.aclose()

    async def aclose(self) -> None:
        """Shut every worker down; each provider's ``close()`` runs once, in its own thread."""
        await asyncio.gather(*(worker.shutdown() for worker in self.workers.values()))


def _prepared(provider: SttProvider) -> Callable[[TranscriptionJob], Iterator[Segment]]:
    """The provider's ``transcribe`` behind resampling to its rate and a silence check (worker thread)."""

    def run(job: TranscriptionJob) -> Iterator[Segment]:
        job.samples = _mono(job.samples)
        if job.sample_rate != provider.sample_rate:
            job.samples = resample(job.samples, job.sample_rate, provider.sample_rate)
            job.sample_rate = provider.sample_rate
        if float(np.max(np.abs(job.samples))) < SILENCE_PEAK:
            return iter(())  # nothing was said; Whisper would invent "Thank you."
        return provider.transcribe(job)

    return run
