"""The engine: validates requests, picks a provider (with fallbacks) and streams its audio."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace

from sesame_voice.api.errors import (
    InvalidRequest,
    ProviderFailed,
    ProviderUnavailable,
    SesameVoiceError,
    ShuttingDown,
)
from sesame_voice.api.params import ParamError
from sesame_voice.api.provider import Provider
from sesame_voice.api.text import TextSource, normalize
from sesame_voice.api.types import AudioChunk, ProviderJob, SynthesisRequest, Voice
from sesame_voice.audio.stretch import MAX_SPEED, MIN_SPEED
from sesame_voice.config import RESPONSE_FORMATS
from sesame_voice.engine.context import fit_context
from sesame_voice.engine.metrics import RequestTimer, ServerMetrics
from sesame_voice.engine.shaping import cap_chunk, split_speed, stretched
from sesame_voice.engine.worker import ProviderWorker

_LOGGER = logging.getLogger(__name__)
FIRST_AUDIO_HANDOFF_SECONDS = 0.25
"""At most this long a provider waits for its first chunk to be sent on before it goes on."""
_DONE = object()
CLOSE_WAIT_SECONDS = 10.0
"""Shutdown waits this long for a provider to finish its job and close; then it lets it finish alone."""
COMMON_SAMPLING = ("speaker",)
"""Overrides every provider receives: the speaker of a multi-speaker voice (``Voice.speakers``)."""


@dataclass
class Synthesis:
    """A running synthesis: which provider serves it, and its audio as an async iterator."""

    voice: Voice
    provider: str
    sample_rate: int
    job: ProviderJob
    fell_back_from: list[str] = field(default_factory=list)
    _first: AudioChunk | None = None
    _rest: AsyncIterator[AudioChunk] | None = None
    audio_seconds: float = 0.0
    """Seconds of audio handed to the caller so far."""

    def __aiter__(self) -> AsyncIterator[AudioChunk]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[AudioChunk]:
        if self._first is not None:
            first, self._first = self._first, None
            self.audio_seconds += first.duration
            yield first
        if self._rest is not None:
            async for chunk in self._rest:
                self.audio_seconds += chunk.duration
                yield chunk

    async def aclose(self) -> None:
        """Stop the generation (client went away, or done)."""
        self.job.cancelled.set()
        if self._rest is not None:
            await self._rest.aclose()


class Engine:
    """Turns a SynthesisRequest into audio from the right provider, off the event loop."""

    def __init__(self, providers: Mapping[str, Provider], voices, settings) -> None:
        self.settings = settings
        self.voices = voices
        self.workers = {
            name: ProviderWorker(p, settings.max_queue, max_queued_chunks=settings.max_queued_chunks)
            for name, p in providers.items()
        }
        self.resolve_hook: Callable[[str | None, str], Voice | None] | None = None
        self.metrics: ServerMetrics | None = None
        """Prometheus metrics the server exposes at /metrics (None: not recorded)."""
        self.active = 0
        """Sessions in progress (started and not yet closed)."""
        self.closing = False
        """Set by ``drain``: new sessions are refused while in-flight ones finish."""
        self._logged_fallbacks: set[tuple] = set()
        """Fallback routes already logged at INFO; repeats go to DEBUG."""

    # -- validation ------------------------------------------------------------
    def validate(self, request: SynthesisRequest) -> SynthesisRequest:
        """Raise InvalidRequest for anything out of range; return the request with normalised text.

        Text still arriving (``text_source``) is checked by its source as it comes.
        """
        if request.text_source is None:
            request.text = self._validated_text(request.text)
        if request.response_format not in RESPONSE_FORMATS:
            raise InvalidRequest(
                f"response_format {request.response_format!r} is not one of {', '.join(RESPONSE_FORMATS)}",
                param="response_format",
                code="unsupported_format",
            )
        try:
            speed = float(request.speed)
        except (TypeError, ValueError):
            raise InvalidRequest("speed must be a number", param="speed") from None
        if not MIN_SPEED <= speed <= MAX_SPEED or speed != speed:
            raise InvalidRequest(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}", param="speed")
        request.speed = speed
        return request

    def sampling_params(self, voice: Voice) -> set[str]:
        """The ``sampling`` keys some provider of ``voice`` understands (``speaker`` always)."""
        known: set[str] = set(COMMON_SAMPLING)
        for name, _ in voice.candidates():
            worker = self.workers.get(name)
            if worker is not None:
                known.update(worker.provider.sampling_params)
        return known

    def _check_sampling(self, request: SynthesisRequest, voice: Voice) -> None:
        """Refuse ``sampling`` keys that no provider of the voice understands."""
        if not isinstance(request.sampling, Mapping):
            raise InvalidRequest("sampling must be an object of parameter overrides", param="sampling")
        known = self.sampling_params(voice)
        unknown = sorted(set(request.sampling) - known)
        if unknown:
            raise InvalidRequest(
                f"sampling {', '.join(map(repr, unknown))} not understood by voice {voice.name}'s providers; "
                f"known: {', '.join(sorted(known)) or 'none'}",
                param="sampling",
                code="unknown_sampling_parameter",
            )
        for name, _ in voice.candidates():  # installed providers, loaded or not: the answer never depends on load state
            worker = self.workers.get(name)
            if worker is not None:
                self._sampling_for(worker.provider, request.sampling)

    @staticmethod
    def _sampling_for(provider: Provider, sampling: Mapping) -> dict:
        """The ``sampling`` keys ``provider`` takes, in the types it declared; InvalidRequest naming a misfit."""
        accepted = (*COMMON_SAMPLING, *provider.sampling_params)
        taken = {}
        for key, value in sampling.items():
            if key not in accepted:
                continue
            spec = provider.voice_params.get(key)
            try:
                taken[key] = value if spec is None else spec.check(key, value)
            except ParamError as err:
                raise InvalidRequest(
                    f"sampling.{err} (provider {provider.name})",
                    param=f"sampling.{key}",
                    code="invalid_sampling_parameter",
                ) from None
        return taken

    def _validated_text(self, text) -> str:
        if not isinstance(text, str):
            raise InvalidRequest("input must be a string", param="input")
        normalized = normalize(text)
        if not normalized:
            raise InvalidRequest("input is empty; give some text to speak", param="input", code="empty_input")
        if not any(character.isalnum() for character in normalized):
            raise InvalidRequest(
                "input has no speakable text (only punctuation or symbols); give some words",
                param="input",
                code="no_speakable_text",
            )
        if len(text) > self.settings.max_input_length:
            raise InvalidRequest(
                f"input is {len(text)} characters; the maximum is {self.settings.max_input_length}",
                param="input",
                code="input_too_long",
            )
        return normalized

    def resolve_voice(self, request: SynthesisRequest) -> Voice:
        """The Voice for the request: plugins' ``resolve_voice`` first, then the voices folder."""
        if self.resolve_hook is not None and request.voice is not None:
            voice = self.resolve_hook(request.voice, request.frontend)
            if voice is not None:
                return voice
        return self.voices.get(request.voice)

    # -- synthesis -------------------------------------------------------------
    async def synthesize(self, request: SynthesisRequest) -> Synthesis:
        """Start synthesis and wait for its first audio; fall back across providers as the voice says.

        The caller iterates the result and must ``aclose()`` it (``async with engine.synthesis(...)``).
        """
        request = self.validate(request)
        voice = self.resolve_voice(request)
        self._check_sampling(request, voice)
        source = request.text_source or TextSource.complete(request.text, request.first_clause)
        skipped: list[str] = []
        last_error: SesameVoiceError | None = None
        candidates = voice.candidates()
        for index, (provider_name, params) in enumerate(candidates):
            unusable = self._unusable(provider_name, last=index == len(candidates) - 1)
            if unusable is not None:
                skipped.append(provider_name)
                last_error = unusable
                continue
            worker = self.workers[provider_name]
            job_params = {**params, **self._sampling_for(worker.provider, request.sampling)}
            job_request = request
            if request.context:  # each provider gets the newest turns its window holds, at its rate
                context = await asyncio.to_thread(fit_context, worker.provider, request.context, job_params)
                job_request = replace(request, context=context)
            cancelled = threading.Event()
            job = ProviderJob(
                sentences=source.reader(cancelled, worker.fair_lock.stepped_aside),
                voice=voice,
                params=job_params,
                request=job_request,
                cancelled=cancelled,
            )
            stream = self._shaped(worker, job)
            try:
                first = await stream.__anext__()
            except StopAsyncIteration:
                first = None
            except ProviderUnavailable as err:
                await stream.aclose()
                if index == len(candidates) - 1:  # nowhere to fall back: an error; else counted as a fallback
                    self._count_provider_error(provider_name, err)
                _LOGGER.debug("Provider %s unavailable for voice %s: %s", provider_name, voice.name, err)
                skipped.append(provider_name)
                last_error = err
                continue
            except BaseException as err:
                await stream.aclose()
                self._count_provider_error(provider_name, err)
                raise
            if skipped:
                if self.metrics is not None:
                    self.metrics.fallbacks.labels(voice.name, provider_name, ",".join(skipped)).inc()
                route = (voice.name, provider_name, tuple(skipped))
                level = logging.DEBUG if route in self._logged_fallbacks else logging.INFO
                self._logged_fallbacks.add(route)
                _LOGGER.log(
                    level,
                    "Voice %s served by %s (fell back from %s: %s)",
                    voice.name,
                    provider_name,
                    ", ".join(skipped),
                    last_error,
                )
            rate = first.sample_rate if first is not None else 24000
            return Synthesis(voice, provider_name, rate, job, skipped, first, stream)
        tried = ", ".join(skipped)
        raise ProviderUnavailable(f"no provider could serve voice {voice.name!r} (tried {tried}): {last_error}")

    def _count_provider_error(self, provider: str, err: BaseException) -> None:
        if self.metrics is not None and isinstance(err, (ProviderUnavailable, ProviderFailed)):
            self.metrics.provider_errors.labels(provider, err.code).inc()

    def _unusable(self, provider_name: str, last: bool) -> ProviderUnavailable | None:
        """Why ``provider_name`` is skipped for a voice right now (None: try it)."""
        worker = self.workers.get(provider_name)
        if worker is None:
            return ProviderUnavailable(f"provider {provider_name!r} is not installed")
        if worker.provider.state == "loading" and not last:
            # A model still downloading or loading must not hold up a voice that has a fallback.
            return ProviderUnavailable(f"provider {provider_name!r} is still loading")
        return None

    def serving_provider(self, voice: Voice) -> str | None:
        """The provider that would speak ``voice`` now (after fallbacks), or None if none can."""
        candidates = voice.candidates()
        for index, (provider_name, _) in enumerate(candidates):
            if self._unusable(provider_name, last=index == len(candidates) - 1) is None:
                if self.workers[provider_name].provider.state != "failed":
                    return provider_name
        return None

    @contextlib.asynccontextmanager
    async def synthesis(self, request: SynthesisRequest):
        """``async with engine.synthesis(req) as synthesis:`` — always stops the generation on exit.

        The request is counted in the metrics with its outcome, latency and real-time factor.
        """
        fmt = request.response_format if request.response_format in RESPONSE_FORMATS else "invalid"
        timer = RequestTimer(self.metrics, request.frontend, "unknown", fmt)
        if self.closing:
            timer.finish(ShuttingDown.code)
            raise ShuttingDown("the server is shutting down; try again in a moment")
        self.active += 1
        try:
            synthesis = await self.synthesize(request)
        except SesameVoiceError as err:
            self.active -= 1
            timer.finish(err.code)
            raise
        except BaseException:
            self.active -= 1
            raise
        timer.labels = (timer.labels[0], synthesis.voice.name, fmt)
        timer.first_audio()
        try:
            yield synthesis
        except (asyncio.CancelledError, ConnectionResetError):
            timer.finish("cancelled", synthesis.provider, synthesis.audio_seconds)
            raise
        except SesameVoiceError as err:
            self._count_provider_error(synthesis.provider, err)
            timer.finish(err.code, synthesis.provider, synthesis.audio_seconds)
            raise
        else:
            timer.finish("ok", synthesis.provider, synthesis.audio_seconds)
        finally:
            self.active -= 1
            timer.finish("error", synthesis.provider, synthesis.audio_seconds)
            await synthesis.aclose()

    async def drain(self, grace: float) -> int:
        """Refuse new sessions and wait up to ``grace`` seconds for running ones; return how many remain."""
        self.closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.active and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return self.active

    async def _shaped(self, worker: ProviderWorker, job: ProviderJob) -> AsyncIterator[AudioChunk]:
        """The worker's chunks at the request's speed, capped at the request's max audio length.

        The provider renders the part of the speed within its ``native_speed_range`` (``job.speed``);
        the rest is time-stretched chunk by chunk, so the first audio leaves with the first chunk.
        """
        request = job.request
        job.speed, stretch = split_speed(request.speed, worker.provider.native_speed_range)
        limit_ms = request.max_audio_length_ms
        emitted = 0.0
        try:
            async with contextlib.aclosing(stretched(worker.stream(job), stretch)) as chunks:
                async for chunk in chunks:
                    chunk, done = cap_chunk(chunk, limit_ms, emitted)
                    emitted += chunk.duration * 1000
                    yield chunk
                    if done:
                        return
        finally:
            job.cancelled.set()

    async def aclose(self) -> None:
        """Shut every worker down; each provider's ``close()`` runs once, in its own thread."""
        await asyncio.gather(*(worker.shutdown() for worker in self.workers.values()))
