"""Speaking one answer: engine audio → a single audio-start, audio-chunks, a single audio-stop."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event

from sesame_voice import InvalidRequest
from sesame_voice.text import split_sentences

from .choice import VoiceChoice
from .pcm import CHANNELS, WIDTH, PcmConverter

FALLBACK_RATE = 22050
"""Rate announced for an answer that produced no audio at all."""
WriteEvent = Callable[[Event], Awaitable[None]]
_CLAUSE_END = re.compile(r"[,;:\u2013\u2014]\s+")
MIN_CLAUSE_WORDS = 2


def split_first_clause(sentence: str) -> list[str]:
    """Cut a sentence after its first clause ("All right then, | the lights are on.").

    The first audio of an answer then waits for a few words instead of a whole sentence; later
    sentences are spoken whole, so prosody only changes at that one, already punctuated, pause.
    """
    match = _CLAUSE_END.search(sentence)
    if match is None:
        return [sentence]
    head, tail = sentence[: match.end()].strip(), sentence[match.end() :].strip()
    if len(head.split()) < MIN_CLAUSE_WORDS or len(tail.split()) < MIN_CLAUSE_WORDS:
        return [sentence]
    return [head, tail]


class Answer:
    """The audio of one reply; every chunk keeps the format of its first ``audio-start``."""

    def __init__(
        self, engine, choice: VoiceChoice, write_event: WriteEvent, samples_per_chunk: int, first_clause: bool = True
    ) -> None:
        self.engine = engine
        self.choice = choice
        self._write = write_event
        self._split_first = first_clause
        self._pcm = PcmConverter()
        self._bytes_per_chunk = samples_per_chunk * WIDTH * CHANNELS
        self._fallback_rate: int | None = None
        self.started = False

    async def say(self, text: str, max_chars: int) -> None:
        """Speak a whole text sentence by sentence (one engine request each, so clients interleave)."""
        if len(text) > max_chars:
            raise InvalidRequest(
                f"text is {len(text)} characters; the maximum is {max_chars}", param="text", code="input_too_long"
            )
        sentences = split_sentences(text)
        if not sentences:
            raise InvalidRequest("text is empty; give some text to speak", param="text", code="empty_input")
        for sentence in sentences:
            await self.speak(sentence)

    async def speak(self, sentence: str) -> None:
        """Synthesise one sentence through the engine (off the event loop) and send its audio."""
        if self._split_first:
            self._split_first = False
            for piece in split_first_clause(sentence):
                await self._speak(piece)
        else:
            await self._speak(sentence)

    async def _speak(self, text: str) -> None:
        async with self.engine.session(self.choice.request(text)) as synthesis:
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
