"""Per-request backpressure: a provider runs at most MAX_QUEUED_CHUNKS ahead of a slow client, and a
client that goes away frees the provider's thread."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from fakes import FakePlugin
from sesame_voice import AudioChunk, Provider, SynthesisRequest, Voice
from sesame_voice.config import ConfigError

RATE = 16000
CHUNKS_PER_JOB = 200
BOUND = 4


class FloodProvider(Provider):
    """Yields CHUNKS_PER_JOB short chunks as fast as it can; counts what it produced."""

    name = "flood"

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.produced = 0
        self.jobs_ended = 0
        self.ended = threading.Event()

    def default_voices(self):
        return [Voice(name="flood", provider=self.name)]

    def synthesize(self, job):
        try:
            for _ in range(CHUNKS_PER_JOB):
                self.produced += 1
                yield AudioChunk(np.zeros(160, dtype=np.float32), RATE)
        finally:
            self.jobs_ended += 1
            self.ended.set()


async def test_a_slow_consumer_keeps_the_provider_at_most_the_bound_ahead(start_server):
    async with start_server(plugins=[FakePlugin(FloodProvider)], max_queued_chunks=BOUND) as server:
        provider = server.providers["flood"]
        consumed = 0
        ahead: list[int] = []
        async with server.engine.synthesis(SynthesisRequest(text="Hello there.", voice="flood")) as synthesis:
            async for _chunk in synthesis:
                consumed += 1
                await asyncio.sleep(0.01)  # a slow client: the provider could run far ahead meanwhile
                ahead.append(provider.produced - consumed)
        assert consumed == CHUNKS_PER_JOB
        # In the queue at most BOUND, plus the one chunk the provider holds while it waits for room.
        assert max(ahead) <= BOUND + 1, ahead
        assert max(ahead) >= BOUND  # the provider did run ahead up to the bound (no lock-step by accident)


async def test_a_client_that_goes_away_frees_the_waiting_provider(start_server):
    async with start_server(plugins=[FakePlugin(FloodProvider)], max_queued_chunks=BOUND) as server:
        provider = server.providers["flood"]
        worker = server.engine.workers["flood"]
        async with server.engine.synthesis(SynthesisRequest(text="Hello there.", voice="flood")) as synthesis:
            async for _chunk in synthesis:
                break  # the client reads one chunk and hangs up; the provider waits for room
        assert await asyncio.to_thread(provider.ended.wait, 30), "the provider was never stopped"
        assert provider.produced < CHUNKS_PER_JOB  # stopped, not run to the end
        for _ in range(600):  # the job thread returns right after the provider ends
            if worker.pending == 0:
                break
            await asyncio.sleep(0.05)
        assert worker.pending == 0
        # The provider's one thread is free: a second request runs to its end.
        async with server.engine.synthesis(SynthesisRequest(text="Again.", voice="flood")) as synthesis:
            count = sum([1 async for _ in synthesis])
        assert count == CHUNKS_PER_JOB
        assert provider.jobs_ended == 2


def test_the_bound_is_a_validated_setting(make_settings):
    assert make_settings().max_queued_chunks == 8
    with pytest.raises(ConfigError, match="MAX_QUEUED_CHUNKS"):
        make_settings(max_queued_chunks=0).validate()


async def test_a_client_that_stops_reading_frees_the_provider_after_the_stall_limit():
    from sesame_voice.engine.chunk_queue import ChunkQueue

    queue = ChunkQueue(asyncio.get_running_loop(), bound=1, cancelled=threading.Event(), stall_seconds=0.3)
    first = await asyncio.to_thread(queue.put, "first")
    second = await asyncio.to_thread(queue.put, "second")  # nobody reads: gives up instead of waiting forever
    assert (first, second, queue.stalled) == (True, False, True)
    assert await queue.get() == "first"
