"""Wyoming speech to text: ``transcribe`` + ``audio-start/chunk/stop`` → ``transcript`` (and its stream).

Home Assistant opens a connection, sends ``transcribe`` (language), ``audio-start``, 16 kHz 16-bit
mono ``audio-chunk``s while the user speaks, ``audio-stop``, and reads until ``transcript``.
Before that final ``transcript`` this server streams ``transcript-start``, one
``transcript-chunk`` per decoded segment and ``transcript-stop`` (where the installed wyoming
package knows them); clients that do not know these events skip them.
"""

from __future__ import annotations

import asyncio
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

from .options import WyomingOptions

_LOGGER = logging.getLogger(__name__)
PROGRAM = "sesame-voice-stt"
STREAMING = all(hasattr(wyoming_asr, name) for name in ("TranscriptStart", "TranscriptChunk", "TranscriptStop"))
"""True when the installed wyoming package has the streaming transcript events."""
WIDTHS = {1: np.int8, 2: np.dtype("<i2"), 4: np.dtype("<i4")}
"""Sample widths accepted (signed little-endian PCM, as the wyoming package's own converter reads them)."""
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


def pcm_to_float(audio: bytes, width: int, channels: int) -> np.ndarray:
    """Signed PCM bytes → float32 mono (channels averaged); InvalidRequest for formats it cannot read."""
    if width not in WIDTHS:
        raise InvalidRequest(
            f"sample width {width} is not supported (use 1, 2 or 4 bytes; 2 is usual)",
            param="width",
            code="unsupported_audio_format",
        )
    frame = width * channels
    usable = len(audio) - len(audio) % frame
    samples = np.frombuffer(audio[:usable], dtype=WIDTHS[width]).astype(np.float32)
    samples /= float(2 ** (8 * width - 1))
    return samples.reshape(-1, channels).mean(axis=1) if channels > 1 else samples


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
    """Speech-to-text state of one Wyoming connection."""

    def __init__(
        self,
        server,
        options: WyomingOptions,
        write_event: Callable[[Event], Awaitable[None]],
        send_error: Callable[[str, str], Awaitable[None]],
        close: Callable[[], None],
    ) -> None:
        self.server = server
        self.timeout = options.audio_timeout
        self.max_seconds = options.max_audio_seconds
        self._write = write_event
        self._send_error = send_error
        self._close = close
        self._watchdog: asyncio.Task | None = None
        self._reset()

    def _reset(self) -> None:
        self.language: str | None = None
        self.model: str | None = None
        self.rate: int | None = None
        self.chunks: list[np.ndarray] = []
        self.samples = 0
        self._last_audio = time.monotonic()

    @staticmethod
    def handles(event_type: str) -> bool:
        """True for the events of a transcription."""
        return event_type in _EVENTS

    async def handle(self, event: Event) -> None:
        """Take one event of a transcription; the last, ``audio-stop``, answers with the transcript."""
        if Transcribe.is_type(event.type):
            request = Transcribe.from_event(event)
            self._reset()
            self.language, self.model = request.language or None, request.name or None
        elif AudioStart.is_type(event.type):
            self.rate = _format(event.data)[0]
            self.chunks, self.samples = [], 0
            self._watch()
        elif AudioChunk.is_type(event.type):
            self._add(event)
        elif AudioStop.is_type(event.type):
            await self._finish()

    def _add(self, event: Event) -> None:
        rate, width, channels = _format(event.data)
        samples = pcm_to_float(event.payload or b"", width, channels)
        if self.rate is None:  # audio without audio-start, as wyoming-faster-whisper accepts it
            self.rate = rate
        if rate != self.rate:
            import soxr

            samples = soxr.resample(samples, rate, self.rate).astype(np.float32)
        self.chunks.append(samples)
        self.samples += samples.size
        self._watch()
        if self.samples > self.max_seconds * self.rate:
            self._drop()
            raise InvalidRequest(
                f"the utterance is longer than {self.max_seconds:.0f} s; it was dropped", code="audio_too_long"
            )

    async def _finish(self) -> None:
        self._stop_watch()
        rate, chunks, language, model = self.rate, self.chunks, self.language, self.model
        self._reset()
        try:
            if not chunks or rate is None:
                raise InvalidRequest("audio-stop came without any audio", code="empty_audio")
            transcription = self.server.speech_to_text.start(
                np.concatenate(chunks), rate, language=language, provider=model
            )
        except SesameVoiceError as err:
            await self._fail(err)
            return
        try:
            await self._answer(transcription)
        except SesameVoiceError as err:
            await self._fail(err)
        finally:
            await transcription.aclose()

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
        await self._send_error(
            f"no audio for {self.timeout:.0f} s and no audio-stop; the utterance was dropped", "audio_timeout"
        )
        self._close()

    async def close(self) -> None:
        """Drop any unfinished utterance (the client left)."""
        self._drop()
