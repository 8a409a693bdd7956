"""``Provider.concurrency``: the engine runs that many ``synthesize`` calls of one provider at once."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from fakes import RATE, FakePlugin, ToneProvider
from sesame_voice import SynthesisRequest, Voice


class PairedProvider(ToneProvider):
    """Each synthesis waits for a second one to be running: it completes only if two run at once."""

    name = "paired"
    concurrency = 2

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.meeting = threading.Barrier(2, timeout=60)

    def default_voices(self):
        return [Voice(name="paired", provider=self.name)]

    def synthesize(self, job):
        self.meeting.wait()
        yield from super().synthesize(job)


class CountingProvider(ToneProvider):
    """Records how many of its syntheses ever overlapped."""

    name = "counting"
    delay = 0.05

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.active = 0
        self.most = 0
        self.lock = threading.Lock()

    def default_voices(self):
        return [Voice(name="counting", provider=self.name)]

    def synthesize(self, job):
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            yield from super().synthesize(job)
        finally:
            with self.lock:
                self.active -= 1


async def _speak(server, voice: str) -> np.ndarray:
    async with server.engine.synthesis(SynthesisRequest(text="One. Two.", voice=voice)) as synthesis:
        return np.concatenate([chunk.samples async for chunk in synthesis])


async def test_a_provider_with_concurrency_two_serves_two_requests_at_once(start_server):
    async with start_server(plugins=[FakePlugin(PairedProvider)]) as server:
        first, second = await asyncio.gather(_speak(server, "paired"), _speak(server, "paired"))
    assert len(first) == len(second) >= RATE // 2  # both spoke: neither waited for the other to finish


async def test_providers_run_one_synthesis_at_a_time_by_default(start_server):
    async with start_server(plugins=[FakePlugin(CountingProvider)]) as server:
        await asyncio.gather(*(_speak(server, "counting") for _ in range(3)))
        assert server.providers["counting"].most == 1
