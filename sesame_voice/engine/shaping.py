"""Shaping a provider's audio stream: speed (time-stretch) and the request's length cap."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

from sesame_voice.api.types import AudioChunk, Word
from sesame_voice.audio.stretch import StreamStretcher


def split_speed(speed: float, native_range: tuple[float, float]) -> tuple[float, float]:
    """(speed the provider renders itself, factor the engine stretches by); their product is ``speed``."""
    low, high = native_range
    native = min(max(speed, low), high)
    return native, speed / native


async def stretched(chunks: AsyncIterator[AudioChunk], speed: float) -> AsyncIterator[AudioChunk]:
    """``chunks`` time-stretched by ``speed`` as one continuous stream (pitch kept); empty chunks dropped.

    A chunk's ``words`` are retimed onto the stretched stream and ride on the next chunk that leaves."""
    stretcher: StreamStretcher | None = None
    words = _WordClock(speed)
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            if not isinstance(chunk, AudioChunk) or chunk.samples.size == 0:
                continue
            if speed == 1.0:
                yield chunk
                continue
            if stretcher is not None and stretcher.sample_rate != chunk.sample_rate:
                tail = stretcher.flush()  # a provider changing its rate starts a new stretch
                if tail.size:
                    yield words.leave(AudioChunk(tail, stretcher.sample_rate))
                stretcher = None
            if stretcher is None:
                stretcher = StreamStretcher(chunk.sample_rate, speed)
            words.arrive(chunk)
            samples = await asyncio.to_thread(stretcher.process, chunk.samples)
            if samples.size:
                yield words.leave(AudioChunk(samples, chunk.sample_rate))
    if stretcher is not None:
        tail = stretcher.flush()
        if tail.size:
            yield words.leave(AudioChunk(tail, stretcher.sample_rate))


class _WordClock:
    """Word timings across a time-stretch: input seconds / speed, relative to the outgoing chunk."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.seconds_in = 0.0
        self.seconds_out = 0.0
        self.pending: list[Word] | None = None

    def arrive(self, chunk: AudioChunk) -> None:
        if chunk.words is not None:
            self.pending = self.pending or []
            self.pending += [
                replace(w, start=(self.seconds_in + w.start) / self.speed, end=(self.seconds_in + w.end) / self.speed)
                for w in chunk.words
            ]
        self.seconds_in += chunk.duration

    def leave(self, chunk: AudioChunk) -> AudioChunk:
        words = None
        if self.pending is not None:
            offset = self.seconds_out
            words = tuple(replace(w, start=w.start - offset, end=w.end - offset) for w in self.pending)
            self.pending = None
        self.seconds_out += chunk.duration
        return replace(chunk, words=words)


def cap_chunk(chunk: AudioChunk, limit_ms: int | None, emitted_ms: float) -> tuple[AudioChunk, bool]:
    """Trim ``chunk`` so the total stays within ``limit_ms``; say whether the limit was reached."""
    if not limit_ms:
        return chunk, False
    room = int((limit_ms - emitted_ms) / 1000 * chunk.sample_rate)
    if room >= len(chunk.samples):
        return chunk, False
    return chunk.head(room), True
