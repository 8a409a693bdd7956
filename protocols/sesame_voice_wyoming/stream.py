"""Streaming synthesis: text arrives in pieces, each sentence is spoken once it is complete."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sesame_voice import InvalidRequest, SesameVoiceError
from sesame_voice.text import SentenceStream

from .answer import Answer


class TextStream:
    """``synthesize-start`` … ``synthesize-stop``: each sentence is spoken as soon as it is complete."""

    def __init__(
        self,
        answer: Answer | None,
        report: Callable[[SesameVoiceError], Awaitable[None]],
        max_pending_chars: int,
    ) -> None:
        self.answer = answer
        self.failed = answer is None
        self._report = report
        self._max_pending = max_pending_chars
        self._pending = 0
        self._splitter = SentenceStream()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._speak_sentences(), name="wyoming-stream")

    async def add(self, text: str) -> None:
        """Take the next piece of text (it may end mid-word)."""
        if self.failed:
            return
        sentences = self._splitter.add(text)
        self._pending = 0 if sentences else self._pending + len(text)
        if self._pending > self._max_pending:
            await self._fail(
                InvalidRequest(
                    f"no sentence end in {self._pending} characters of streamed text", code="input_too_long"
                )
            )
            return
        for sentence in sentences:
            self._queue.put_nowait(sentence)

    async def finish(self) -> None:
        """Speak what remains, wait until all audio is sent, and close the answer."""
        if not self.failed:
            for sentence in self._splitter.finish():
                self._queue.put_nowait(sentence)
        self._queue.put_nowait(None)
        await self._task
        if self.answer is not None:
            await self.answer.finish(always=False)

    async def cancel(self) -> None:
        """Stop speaking at once (client went away)."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _fail(self, err: SesameVoiceError) -> None:
        self.failed = True
        await self._report(err)

    async def _speak_sentences(self) -> None:
        while (sentence := await self._queue.get()) is not None:
            if self.failed or self.answer is None:
                continue
            try:
                await self.answer.speak(sentence)
            except SesameVoiceError as err:
                await self._fail(err)
