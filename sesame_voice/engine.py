"""The engine: validates requests, picks a provider (with fallbacks) and streams its audio."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable, Mapping

import numpy as np

from .provider import ModelHolder, Provider
from .text import normalize, split_sentences
from .types import (
    RESPONSE_FORMATS,
    AudioChunk,
    InvalidRequest,
    Overloaded,
    ProviderFailed,
    ProviderJob,
    ProviderUnavailable,
    SesameVoiceError,
    SynthesisRequest,
    Voice,
)

_LOGGER = logging.getLogger(__name__)
MIN_SPEED, MAX_SPEED = 0.25, 4.0
STRETCH_BLOCK_SECONDS = 2.0
"""Providers without native speed are time-stretched in blocks at least this long."""
_DONE = object()


class ProviderWorker:
    """One thread and a queue in front of one provider (of any kind): the event loop only awaits."""

    def __init__(self, provider: ModelHolder, max_queue: int, kind: str = "provider") -> None:
        self.provider = provider
        self.max_queue = max_queue
        self.pending = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{kind}-{provider.name}")
        self._queued: set[Future] = set()

    def _submit(self, function: Callable, *args) -> asyncio.Future:
        future = self._executor.submit(function, *args)
        self._queued.add(future)
        future.add_done_callback(self._queued.discard)
        return asyncio.wrap_future(future)

    async def call(self, function: Callable, *args):
        """Run ``function`` in the worker thread, in queue order."""
        return await self._submit(function, *args)

    async def stream(self, job, work: Callable | None = None) -> AsyncIterator:
        """Yield what ``work(job)`` yields in the worker thread (default: the provider's
        ``synthesize``); leaving early sets ``job.cancelled``."""
        work = work or self.provider.synthesize
        if self.pending >= self.max_queue:
            raise Overloaded(f"provider {self.provider.name} has {self.pending} requests queued; try again later")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def put(item) -> None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def produce() -> None:
            try:
                if job.cancelled.is_set():
                    return
                self.provider.ensure_loaded()
                for chunk in work(job):
                    if job.cancelled.is_set():
                        break
                    put(chunk)
            except SesameVoiceError as err:
                put(err)
            except Exception as err:  # noqa: BLE001 - handed to the awaiting side
                _LOGGER.exception("Provider %s failed", self.provider.name)
                put(ProviderFailed(f"provider {self.provider.name} failed: {type(err).__name__}: {err}"))
            finally:
                put(_DONE)

        self.pending += 1
        future = self._submit(produce)
        future.add_done_callback(lambda _: self._finished())
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            job.cancelled.set()

    def _finished(self) -> None:
        self.pending -= 1

    def shutdown(self) -> None:
        """Drop queued work, stop accepting more, and free the provider once the running job is done.

        ``close`` always runs in the worker thread, even after a load still in progress.
        """
        for future in list(self._queued):
            future.cancel()  # only work that has not started
        self._executor.submit(self.provider.close)
        self._executor.shutdown(wait=False)


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

    def __aiter__(self) -> AsyncIterator[AudioChunk]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[AudioChunk]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        if self._rest is not None:
            async for chunk in self._rest:
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
        self.workers = {name: ProviderWorker(p, settings.max_queue) for name, p in providers.items()}
        self.resolve_hook: Callable[[str | None, str], Voice | None] | None = None
        self.counters = {"requests": 0, "errors": 0, "cancelled": 0, "fallbacks": 0}
        self._logged_fallbacks: set[tuple] = set()
        """Fallback routes already logged at INFO; repeats go to DEBUG."""

    # -- validation ------------------------------------------------------------
    def validate(self, request: SynthesisRequest) -> SynthesisRequest:
        """Raise InvalidRequest for anything out of range; return the request with normalised text."""
        if not isinstance(request.text, str):
            raise InvalidRequest("input must be a string", param="input")
        text = normalize(request.text)
        if not text:
            raise InvalidRequest("input is empty; give some text to speak", param="input", code="empty_input")
        if len(request.text) > self.settings.max_input_length:
            raise InvalidRequest(
                f"input is {len(request.text)} characters; the maximum is {self.settings.max_input_length}",
                param="input",
                code="input_too_long",
            )
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
        request.text, request.speed = text, speed
        return request

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

        The caller iterates the result and must ``aclose()`` it (``async with engine.session(...)``).
        """
        self.counters["requests"] += 1
        request = self.validate(request)
        voice = self.resolve_voice(request)
        sentences = split_sentences(request.text)
        skipped: list[str] = []
        last_error: SesameVoiceError | None = None
        candidates = voice.candidates()
        for index, (provider_name, params) in enumerate(candidates):
            worker = self.workers.get(provider_name)
            if worker is None:
                skipped.append(provider_name)
                last_error = ProviderUnavailable(f"provider {provider_name!r} is not installed")
                continue
            if worker.provider.state == "loading" and index < len(candidates) - 1:
                # A model still downloading or loading must not hold up a voice that has a fallback.
                skipped.append(provider_name)
                last_error = ProviderUnavailable(f"provider {provider_name!r} is still loading")
                continue
            job = ProviderJob(
                sentences=sentences, voice=voice, params={**params, **request.sampling}, request=request
            )
            stream = self._shaped(worker, job)
            try:
                first = await stream.__anext__()
            except StopAsyncIteration:
                first = None
            except ProviderUnavailable as err:
                await stream.aclose()
                _LOGGER.debug("Provider %s unavailable for voice %s: %s", provider_name, voice.name, err)
                skipped.append(provider_name)
                last_error = err
                continue
            except BaseException:
                await stream.aclose()
                self.counters["errors"] += 1
                raise
            if skipped:
                self.counters["fallbacks"] += 1
                route = (voice.name, provider_name, tuple(skipped))
                level = logging.DEBUG if route in self._logged_fallbacks else logging.INFO
                self._logged_fallbacks.add(route)
                _LOGGER.log(level, "Voice %s served by %s (fell back from %s: %s)", voice.name, provider_name,
                            ", ".join(skipped), last_error)
            rate = first.sample_rate if first is not None else 24000
            return Synthesis(voice, provider_name, rate, job, skipped, first, stream)
        self.counters["errors"] += 1
        tried = ", ".join(skipped)
        raise ProviderUnavailable(f"no provider could serve voice {voice.name!r} (tried {tried}): {last_error}")

    @contextlib.asynccontextmanager
    async def session(self, request: SynthesisRequest):
        """``async with engine.session(req) as synthesis:`` — always stops the generation on exit."""
        synthesis = await self.synthesize(request)
        try:
            yield synthesis
        except (asyncio.CancelledError, ConnectionResetError):
            self.counters["cancelled"] += 1
            raise
        finally:
            await synthesis.aclose()

    async def _shaped(self, worker: ProviderWorker, job: ProviderJob) -> AsyncIterator[AudioChunk]:
        """The worker's chunks with speed applied, capped at the request's max audio length."""
        request = job.request
        stretch = request.speed != 1.0 and not worker.provider.native_speed
        limit_ms = request.max_audio_length_ms
        emitted = 0.0
        pending: list[AudioChunk] = []
        try:
            async for chunk in worker.stream(job):
                if not isinstance(chunk, AudioChunk) or chunk.samples.size == 0:
                    continue
                if stretch:
                    pending.append(chunk)
                    if sum(c.duration for c in pending) < STRETCH_BLOCK_SECONDS:
                        continue
                    chunk = await self._stretch(worker, pending, request.speed)
                    pending = []
                chunk, done = _cap(chunk, limit_ms, emitted)
                emitted += chunk.duration * 1000
                yield chunk
                if done:
                    return
            if pending:
                chunk, _ = _cap(await self._stretch(worker, pending, request.speed), limit_ms, emitted)
                yield chunk
        finally:
            job.cancelled.set()

    @staticmethod
    async def _stretch(worker: ProviderWorker, chunks: list[AudioChunk], speed: float) -> AudioChunk:
        from .audio import time_stretch

        rate = chunks[0].sample_rate
        samples = np.concatenate([c.samples for c in chunks])
        stretched = await asyncio.to_thread(time_stretch, samples, rate, speed)
        return AudioChunk(np.asarray(stretched, dtype=np.float32), rate)

    async def aclose(self) -> None:
        """Shut every worker down."""
        for worker in self.workers.values():
            worker.shutdown()


def _cap(chunk: AudioChunk, limit_ms: int | None, emitted_ms: float) -> tuple[AudioChunk, bool]:
    """Trim ``chunk`` so the total stays within ``limit_ms``; say whether the limit was reached."""
    if not limit_ms:
        return chunk, False
    room = int((limit_ms - emitted_ms) / 1000 * chunk.sample_rate)
    if room >= len(chunk.samples):
        return chunk, False
    return AudioChunk(chunk.samples[: max(room, 0)], chunk.sample_rate), True

