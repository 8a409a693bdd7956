"""Wyoming speech to text: ``transcribe`` + ``audio-start/chunk/stop`` → ``transcript`` (and its stream).

Home Assistant opens a connection, sends ``transcribe`` (language), ``audio-start``, 16 kHz 16-bit
mono ``audio-chunk``s while the user speaks, ``audio-stop``, and reads until ``transcript``.
Before that final ``transcript`` this server streams ``transcript-start``, one
``transcript-chunk`` per decoded segment and ``transcript-stop`` (where the installed wyoming
package knows them); clients that do not know these events skip them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable

import numpy as np
from wyoming import asr as wyoming_asr
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import AsrModel, AsrProgram, Attribution

from sesame_voice import InvalidRequest, SesameVoiceError, __version__
from sesame_voice.api.languages import advertised

from .asr_audio import (
    HELD_BYTES_PER_SAMPLE,
    WIDTHS,
    StreamSlots,
    chunk_samples,
    converts_inline,
    held_bytes,
    pcm_to_float,
)
from .options import WyomingOptions

__all__ = ["AsrSession", "StreamSlots", "asr_programs", "pcm_to_float"]

_LOGGER = logging.getLogger(__name__)
PROGRAM = "sesame-voice-stt"
STREAMING = all(hasattr(wyoming_asr, name) for name in ("TranscriptStart", "TranscriptChunk", "TranscriptStop"))
"""True when the installed wyoming package has the streaming transcript events."""
_EVENTS = ("transcribe", "audio-start", "audio-chunk", "audio-stop")


def asr_programs(server) -> list[AsrProgram]:
    """The ``asr`` part of ``info``: one program, a model per speech-to-text provider."""
    stt = server.speech_to_text
    if not stt.providers:
        return []
    models = [
        AsrModel(
            name=provider.model_name(),
            description=provider.description or provider.model_name(),
            attribution=Attribution(name=provider.description or provider.name, url=""),
            installed=provider.state != "failed",
            version=__version__,
            languages=advertised(provider.languages()),  # en, en-US, en_US…: HA checks membership
        )
        for provider in stt.providers.values()
    ]
    extra = {"supports_transcript_streaming": STREAMING}
    fields = {f.name for f in dataclasses.fields(AsrProgram)}
    return [
        AsrProgram(
            name=PROGRAM,
            description="sesame-voice speech to text",
            attribution=Attribution(name="sesame-voice", url=""),
            installed=any(model.installed for model in models),
            version=__version__,
            models=models,
            **{k: v for k, v in extra.items() if k in fields},
        )
    ]


def _format(data: dict) -> tuple[int, int, int]:
    try:
        rate, width, channels = int(data["rate"]), int(data["width"]), int(data["channels"])
    except (KeyError, TypeError, ValueError):
        raise InvalidRequest("audio events need integer rate, width and channels", code="invalid_event") from None
    if not 1000 <= rate <= 192000 or not 1 <= channels <= 8:
        raise InvalidRequest(
            f"unsupported audio format: {rate} Hz, {channels} channels", code="unsupported_audio_format"
        )
    if width not in WIDTHS:
        pcm_to_float(b"", width, channels)  # raises the explanation
    return rate, width, channels


class AsrSession:
    """Speech-to-text state of one Wyoming connection.

    An utterance holds one of the frontend's ``slots`` from its first audio until its transcript
    is sent, and at most ``max_audio_bytes`` of audio; past either bound the client gets an
    ``error``, an empty ``transcript`` and a disconnect. Each chunk is converted (and resampled) in
    a thread, and so is joining the chunks, so the event loop never does the heavy copying.
    """

    def __init__(
        self,
        server,
        options: WyomingOptions,
        write_event: Callable[[Event], Awaitable[None]],
        send_error: Callable[[str, str], Awaitable[None]],
        close: Callable[[], None],
        slots: StreamSlots | None = None,
    ) -> None:
        self.server = server
        self.timeout = options.audio_timeout
        self.max_seconds = options.max_audio_seconds
        self.max_bytes = options.max_audio_bytes
        self.slots = slots or StreamSlots(options.max_stt_streams)
        self._write = write_event
        self._send_error = send_error
        self._close = close
        self._watchdog: asyncio.Task | None = None
        self._has_slot = False
        self.refused = False
        """Set once the client was refused and hung up on: later events are ignored."""
        self._utterance = 0
        """Counts utterances, so a chunk converted while its utterance was dropped is not kept."""
        self._reset()

    def _reset(self) -> None:
        self.language: str | None = None
        self.model: str | None = None
        self.rate: int | None = None
        self.chunks: list[np.ndarray] = []
        self.samples = 0
        self._utterance += 1
        self._last_audio = time.monotonic()

    def _release(self) -> None:
        if self._has_slot:
            self._has_slot = False
            self.slots.give_back()

    @staticmethod
    def handles(event_type: str) -> bool:
        """True for the events of a transcription."""
        return event_type in _EVENTS

    async def handle(self, event: Event) -> None:
        """Take one event of a transcription; the last, ``audio-stop``, answers with the transcript."""
        if self.refused:
            return
        if Transcribe.is_type(event.type):
            request = Transcribe.from_event(event)
            self._drop()
            self.language, self.model = request.language or None, request.name or None
        elif AudioStart.is_type(event.type):
            rate = _format(event.data)[0]
            if await self._take_slot():
                self.rate = rate
                self.chunks, self.samples = [], 0
                self._watch()
        elif AudioChunk.is_type(event.type):
            if await self._take_slot():
                await self._add(event)
        elif AudioStop.is_type(event.type):
            await self._finish()

    async def _take_slot(self) -> bool:
        """Hold a slot for this utterance; False (after refusing the client) when none is free."""
        if self._has_slot:
            return True
        if self.slots.take():
            self._has_slot = True
            self._watch()  # a client that then sends nothing cannot keep the slot
            return True
        await self._refuse(
            f"{self.slots.limit} speech-to-text streams are already open (plugins.wyoming.max_stt_streams); "
            "try again later",
            "overloaded",
        )
        return False

    async def _add(self, event: Event) -> None:
        rate, width, channels = _format(event.data)
        if self.rate is None:  # audio without audio-start, as wyoming-faster-whisper accepts it
            self.rate = rate
        payload = event.payload or b""
        held = self.samples * HELD_BYTES_PER_SAMPLE + held_bytes(len(payload), width, channels, rate, self.rate)
        if held > self.max_bytes:
            await self._refuse(
                f"the utterance needs more than {self.max_bytes} bytes of audio (plugins.wyoming.max_audio_bytes); "
                "it was dropped",
                "audio_too_large",
            )
            return
        utterance = self._utterance
        if converts_inline(len(payload), rate, self.rate):
            samples = chunk_samples(payload, width, channels, rate, self.rate)
        else:
            samples = await asyncio.to_thread(chunk_samples, payload, width, channels, rate, self.rate)
        if utterance != self._utterance:
            return  # dropped meanwhile (timed out)
        self.chunks.append(samples)
        self.samples += samples.size
        self._watch()
        if self.samples > self.max_seconds * self.rate:
            self._drop()
            raise InvalidRequest(
                f"the utterance is longer than {self.max_seconds:.0f} s; it was dropped", code="audio_too_long"
            )

    async def _refuse(self, text: str, code: str) -> None:
        """Drop the utterance, tell the client (``error`` and an empty ``transcript``) and hang up."""
        _LOGGER.info("Wyoming transcription refused: %s (%s)", text, code)
        self.refused = True
        self._drop()
        await self._send_error(text, code)
        with contextlib.suppress(ConnectionError):
            await self._write(Transcript(text="").event())
        self._close()

    async def _finish(self) -> None:
        self._stop_watch()
        rate, chunks, language, model = self.rate, self.chunks, self.language, self.model
        self._reset()
        try:
            try:
                if not chunks or rate is None:
                    raise InvalidRequest("audio-stop came without any audio", code="empty_audio")
                audio = await asyncio.to_thread(np.concatenate, chunks)
                del chunks  # the pieces can go while the transcription runs
                transcription = self.server.speech_to_text.start(audio, rate, language=language, provider=model)
            except SesameVoiceError as err:
                await self._fail(err)
                return
            try:
                await self._answer(transcription)
            except SesameVoiceError as err:
                await self._fail(err)
            finally:
                await transcription.aclose()
        finally:
            self._release()

    async def _answer(self, transcription) -> None:
        started = False
        async for segment in transcription:
            if STREAMING and segment.text.strip():
                if not started:
                    started = True
                    await self._write(wyoming_asr.TranscriptStart(language=transcription.job.detected_language).event())
                await self._write(wyoming_asr.TranscriptChunk(text=segment.text).event())
        transcript = transcription.transcript()
        if started:
            await self._write(wyoming_asr.TranscriptStop().event())
        await self._write(Transcript(text=transcript.text, language=transcript.language).event())

    async def _fail(self, err: SesameVoiceError) -> None:
        """An ``error`` for clients that read it, then an empty ``transcript`` so Home Assistant stops waiting."""
        _LOGGER.info("Wyoming transcription failed: %s (%s)", err, err.code)
        await self._send_error(str(err), err.code)
        await self._write(Transcript(text="").event())

    def _drop(self) -> None:
        self._stop_watch()
        self._reset()
        self._release()

    def _watch(self) -> None:
        """(Re)start the clock: a client that stops sending audio without audio-stop is disconnected."""
        self._last_audio = time.monotonic()
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.create_task(self._expire(), name="wyoming-audio-timeout")

    def _stop_watch(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    async def _expire(self) -> None:
        while (left := self._last_audio + self.timeout - time.monotonic()) > 0:
            await asyncio.sleep(left)
        _LOGGER.info("Wyoming client sent no audio-stop within %.0f s; utterance dropped", self.timeout)
        self._watchdog = None
        self._reset()
        self._release()
        await self._send_error(
            f"no audio for {self.timeout:.0f} s and no audio-stop; the utterance was dropped", "audio_timeout"
        )
        self._close()

    async def close(self) -> None:
        """Drop any unfinished utterance (the client left)."""
        self._drop()
