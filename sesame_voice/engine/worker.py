"""A queue and worker threads in front of one provider, so inference never blocks the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

from sesame_voice.api.errors import Overloaded, ProviderFailed, SesameVoiceError
from sesame_voice.api.provider import ModelHolder
from sesame_voice.api.types import ProviderJob
from sesame_voice.engine.chunk_queue import ChunkQueue
from sesame_voice.engine.fair_lock import FairLock

_LOGGER = logging.getLogger(__name__)
FIRST_AUDIO_HANDOFF_SECONDS = 0.25
"""At most this long a provider waits for its first chunk to be sent on before it goes on."""
_DONE = object()
CLOSE_WAIT_SECONDS = 10.0
"""Shutdown waits this long for a provider to finish its job and close; then it lets it finish alone."""
DEFAULT_MAX_QUEUED_CHUNKS = 8
"""Chunks of one job produced and not yet taken by its consumer before the provider waits."""


class ProviderWorker:
    """A queue in front of one provider (of any kind) and the threads that run its jobs.

    Jobs run in the worker thread one after another. A provider that ``takes_turns`` gets a thread
    per job instead, and its jobs take turns chunk by chunk (and step aside while waiting for text),
    so concurrent answers interleave with the model in one thread at a time. A provider with
    ``concurrency`` > 1 (one that batches, like CSM on PyTorch) gets that many job threads running
    at once. The event loop only awaits.
    """

    def __init__(
        self,
        provider: ModelHolder,
        max_queue: int,
        kind: str = "provider",
        max_queued_chunks: int = DEFAULT_MAX_QUEUED_CHUNKS,
    ) -> None:
        self.provider = provider
        self.max_queue = max_queue
        self.max_queued_chunks = max_queued_chunks
        """Per job: chunks waiting for a slow consumer before the provider waits too (backpressure)."""
        self.pending = 0
        self.fair_lock = FairLock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{kind}-{provider.name}")
        self._jobs: dict[int, ProviderJob] = {}
        """Jobs queued or running, by id, so shutdown can cancel them."""
        self._closed = False
        concurrency = max(1, int(getattr(provider, "concurrency", 1)))
        takes_turns = bool(getattr(provider, "takes_turns", False))
        self._turn = contextlib.nullcontext if concurrency > 1 and not takes_turns else self.fair_lock.held
        """Jobs of a provider that runs them at once do not wait for a turn."""
        self._job_threads = self._executor
        if takes_turns or concurrency > 1:
            self._job_threads = ThreadPoolExecutor(
                max_workers=max_queue if takes_turns else concurrency, thread_name_prefix=f"job-{provider.name}"
            )

    async def call(self, function: Callable, *args):
        """Run ``function`` in the worker thread, in queue order."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def call_blocking(self, function: Callable, *args):
        """Run ``function`` in the worker thread and wait for it (from any thread but that one)."""
        return self._executor.submit(function, *args).result()

    async def stream(self, job, work: Callable | None = None) -> AsyncIterator:
        """Yield what ``work(job)`` yields in the worker thread (default: the provider's
        ``synthesize``); leaving early sets ``job.cancelled``."""
        work = work or self.provider.synthesize
        if self.pending >= self.max_queue:
            raise Overloaded(f"provider {self.provider.name} has {self.pending} requests queued; try again later")
        loop = asyncio.get_running_loop()
        queue = ChunkQueue(loop, self.max_queued_chunks, job.cancelled)
        first_sent = threading.Event()
        """Set when the consumer comes back after the first chunk: that audio is on its way."""

        def produce() -> None:
            try:
                with self._turn():
                    if job.cancelled.is_set():
                        return
                    self.provider.ensure_loaded()
                    for index, chunk in enumerate(work(job)):
                        if job.cancelled.is_set() or not queue.put(chunk, self.fair_lock.stepped_aside):
                            if queue.stalled:
                                queue.put_final(Overloaded(f"the client read no audio for {queue.stall_seconds:g} s"))
                            break
                        if index == 0:  # the first audio leaves before the rest competes with it for the CPU
                            first_sent.wait(FIRST_AUDIO_HANDOFF_SECONDS)
                        self.fair_lock.pass_on()
            except SesameVoiceError as err:
                queue.put_final(err)
            except Exception as err:
                _LOGGER.exception("Provider %s failed", self.provider.name)
                queue.put_final(ProviderFailed(f"provider {self.provider.name} failed: {type(err).__name__}: {err}"))
            finally:
                queue.put_final(_DONE)

        self.pending += 1
        self._jobs[id(job)] = job
        future = loop.run_in_executor(self._job_threads, produce)
        future.add_done_callback(lambda _: self._finished())
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
                first_sent.set()
        finally:
            first_sent.set()
            job.cancelled.set()
            queue.close()
            self._jobs.pop(id(job), None)

    def _finished(self) -> None:
        self.pending -= 1

    async def shutdown(self) -> None:
        """Cancel queued work, call the provider's ``close()`` once in its thread, stop the threads."""
        if self._closed:
            return
        self._closed = True
        for job in list(self._jobs.values()):
            job.cancelled.set()
        if self._job_threads is not self._executor:
            self._job_threads.shutdown(wait=False, cancel_futures=True)
        closing = asyncio.wrap_future(self._executor.submit(self._close_provider))
        self._executor.shutdown(wait=False)  # queued close() still runs; nothing new is accepted
        try:
            await asyncio.wait_for(asyncio.shield(closing), CLOSE_WAIT_SECONDS)
        except asyncio.TimeoutError:
            _LOGGER.warning(
                "Provider %s is still busy (e.g. loading its model); it closes when done", self.provider.name
            )

    def _close_provider(self) -> None:
        try:
            self.provider.close()
        except Exception:
            _LOGGER.exception("Provider %s failed to close", self.provider.name)
