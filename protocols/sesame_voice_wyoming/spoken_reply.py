"""Speaking one answer as one engine job: a single audio-start, the audio-chunks, a single audio-stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event

from sesame_voice import InvalidRequest, SesameVoiceError, SynthesisRequest, TextSource

from .pcm import CHANNELS, WIDTH, PcmConverter
from .voice_choice import VoiceChoice

FALLBACK_RATE = 22050
"""Rate announced for an answer that produced no audio at all."""
WriteEvent = Callable[[Event], Awaitable[None]]
ReportError = Callable[[SesameVoiceError], Awaitable[None]]


class SpokenReply:
    """The audio of one answer; every chunk keeps the format of its first ``audio-start``."""

    def __init__(
        self, engine, choice: VoiceChoice, write_event: WriteEvent, samples_per_chunk: int, first_clause: bool = True
    ) -> None:
        self.engine = engine
        self.choice = choice
        self.first_clause = first_clause
        """Hand the engine the first clause on its own, for a sooner first audio."""
        self._write = write_event
        self._pcm = PcmConverter()
        self._bytes_per_chunk = samples_per_chunk * WIDTH * CHANNELS
        self._fallback_rate: int | None = None
        self.started = False

    async def say(self, text: str) -> None:
        """Speak a whole text (``synthesize``); the engine checks it once."""
        await self.speak(self.choice.request(text=text, first_clause=self.first_clause))

    async def speak(self, request: SynthesisRequest) -> None:
        """Run one engine job (off the event loop) and send its audio as it comes."""
        async with self.engine.synthesis(request) as synthesis:
            self._fallback_rate = self._fallback_rate or synthesis.sample_rate
            async for chunk in synthesis:
                await self._send(self._pcm.convert(chunk.samples, chunk.sample_rate))

    async def _send(self, audio: bytes) -> None:
        if not audio:
            return
        await self._start()
        rate = self._pcm.rate
        for offset in range(0, len(audio), self._bytes_per_chunk):
            piece = audio[offset : offset + self._bytes_per_chunk]
            await self._write(AudioChunk(rate=rate, width=WIDTH, channels=CHANNELS, audio=piece).event())

    async def _start(self) -> None:
        if not self.started:
            self.started = True
            rate = self._pcm.rate or self._fallback_rate or FALLBACK_RATE
            self._pcm.rate = rate
            await self._write(AudioStart(rate=rate, width=WIDTH, channels=CHANNELS).event())

    async def finish(self, always: bool) -> None:
        """Send the resampler's tail and ``audio-stop``; with ``always``, even if nothing was said."""
        await self._send(self._pcm.flush())
        if always:
            await self._start()
        if self.started:
            await self._write(AudioStop().event())


class StreamedReply:
    """``synthesize-start`` … ``synthesize-stop``: one engine job whose text grows with each chunk.

    The job starts at once and its provider speaks each sentence (the first clause first) as soon
    as it is complete, conditioned on the sentences before it. A client that sends nothing for
    ``idle_timeout`` seconds has its text ended there. Two bounds hold however the client paces
    its chunks: at most ``max_chars`` characters in all, and ``synthesize-stop`` within
    ``deadline`` seconds of ``synthesize-start``. Past either, the client gets an ``error``, the
    synthesis stops (freeing the provider) and ``abandon`` ends the connection.
    """

    def __init__(
        self,
        reply: SpokenReply | None,
        report: ReportError,
        max_pending_chars: int,
        idle_timeout: float | None = None,
        *,
        max_chars: int | None = None,
        deadline: float | None = None,
        abandon: Callable[[], None] | None = None,
    ) -> None:
        self.reply = reply
        self.failed = reply is None
        """True once an error was reported (or the voice was unknown): the rest is not spoken."""
        self._report = report
        first_clause = reply is not None and reply.first_clause
        self.source = TextSource(first_clause=first_clause, max_pending_chars=max_pending_chars)
        self._ready = asyncio.Event()
        """Set once the source has a sentence or has ended: only then does the engine job start."""
        self._task = asyncio.create_task(self._speak(), name="wyoming-reply") if reply is not None else None
        self._idle_timeout = idle_timeout
        self._idle: asyncio.TimerHandle | None = None
        self._max_chars = max_chars
        self._chars = 0
        self._abandon = abandon
        self._limit_task: asyncio.Task | None = None
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(deadline, self._past_deadline, deadline) if deadline else None
        self._watch_idle()

    def _watch_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self._idle_timeout and not self.failed:
            self._idle = asyncio.get_running_loop().call_later(self._idle_timeout, self._timed_out)

    def _timed_out(self) -> None:
        self.source.finish()
        self._wake()
        error = InvalidRequest(
            f"no synthesize-chunk or synthesize-stop for {self._idle_timeout:g} s; the text ends here",
            code="stream_timeout",
        )
        self._timeout_report = asyncio.get_running_loop().create_task(self._fail(error))

    def _past_deadline(self, deadline: float) -> None:
        error = InvalidRequest(
            f"no synthesize-stop within {deadline:g} s of synthesize-start; the stream was stopped",
            code="stream_deadline",
        )
        self._limit_task = asyncio.get_running_loop().create_task(self._stop(error), name="wyoming-deadline")

    async def add(self, text: str) -> None:
        """Take the next piece of text (it may end mid-word)."""
        if self.failed:
            return
        self._chars += len(text)
        if self._max_chars is not None and self._chars > self._max_chars:
            await self._stop(
                InvalidRequest(
                    f"the streamed text is longer than {self._max_chars} characters; the stream was stopped",
                    param="text",
                    code="stream_too_long",
                )
            )
            return
        try:
            self.source.add(text)
        except SesameVoiceError as err:
            await self._fail(err)
        self._wake()
        self._watch_idle()

    async def finish(self) -> None:
        """End the text, wait until all its audio is sent, and close the answer."""
        self._stop_watching()
        self.source.finish()
        self._wake()
        if self._task is not None and not self._task.cancelled():  # cancelled: a bound was passed
            await self._task
        if self.reply is not None:
            await self.reply.finish(always=False)

    async def cancel(self) -> None:
        """Stop speaking at once (client went away)."""
        self._stop_watching()
        self.source.abort()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _speak(self) -> None:
        # Until the first sentence is complete the job would only wait for text while holding its
        # provider (CSM's model cannot be lent out meanwhile), so it starts once there is some.
        await self._ready.wait()
        try:
            await self.reply.speak(self.reply.choice.request(source=self.source))
        except SesameVoiceError as err:
            await self._fail(err)

    def _wake(self) -> None:
        if self.source.ready:
            self._ready.set()

    def _stop_watching(self) -> None:
        for timer in (self._idle, self._deadline):
            if timer is not None:
                timer.cancel()
        self._idle = self._deadline = None

    async def _fail(self, err: SesameVoiceError) -> None:
        self.source.abort()
        self._wake()
        self._stop_watching()
        if not self.failed:
            self.failed = True
            await self._report(err)

    async def _stop(self, err: SesameVoiceError) -> None:
        """A bound was passed: report it (even after an earlier error), stop the synthesis, end the connection."""
        self.source.abort()
        self._stop_watching()
        self.failed = True
        await self._report(err)
        await self.cancel()
        if self._abandon is not None:
            self._abandon()
