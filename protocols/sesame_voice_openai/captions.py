"""Captioned speech (an extension of createSpeech): word timings as SSE events or in a JSON body.

``timestamps: "word"`` asks for them, ``timestamps_format: "srt" | "vtt"`` adds subtitles. Timings
come from the provider (``AudioChunk.words``, e.g. Piper's phoneme durations); otherwise the audio
is aligned with the in-process speech-to-text (Whisper word timestamps) once it is complete; with
no speech-to-text, the words share the audio in proportion to their letters (``timing: "estimate"``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from dataclasses import dataclass, replace

import numpy as np
from aiohttp import web

from sesame_voice import InvalidRequest, SesameVoiceError, Word
from sesame_voice.audio import encode_audio

from .errors import from_exception
from .timing import align_words, subtitles, word_object

_LOGGER = logging.getLogger(__name__)
TIMESTAMP_KINDS = ("word",)
SUBTITLE_FORMATS = ("srt", "vtt")
SUBTITLE_TYPES = {"srt": "application/x-subrip", "vtt": "text/vtt"}


@dataclass(frozen=True)
class CaptionOptions:
    """What the request asked for: word timings, and subtitles in ``subtitle_format`` (or None)."""

    subtitle_format: str | None = None


def caption_options(body: dict) -> CaptionOptions | None:
    """``timestamps`` / ``timestamps_format`` of a createSpeech body (None: no captions asked for)."""
    kind = body.get("timestamps")
    fmt = body.get("timestamps_format")
    if kind is not None and kind not in TIMESTAMP_KINDS:
        raise InvalidRequest("timestamps must be 'word'", param="timestamps")
    if fmt is not None and fmt not in SUBTITLE_FORMATS:
        raise InvalidRequest("timestamps_format must be 'srt' or 'vtt'", param="timestamps_format")
    if kind is None and fmt is None:
        return None
    return CaptionOptions(subtitle_format=fmt)


class CaptionedSynthesis:
    """A synthesis whose chunks pass through unchanged while their words are collected, offset by
    the audio before them; after the last chunk, audio without words is aligned with Whisper."""

    def __init__(self, synthesis, server, text: str) -> None:
        self._synthesis = synthesis
        self._server = server
        self._text = text
        self.words: list[Word] = []
        """Timed words so far, in seconds from the start of the audio."""
        self.sent = 0
        """How many of ``words`` the caller has passed on."""
        self.timing: str | None = None
        """Where the timings came from: ``provider``, ``whisper`` or ``estimate``."""
        self.seconds = 0.0
        self._samples: list[np.ndarray] = []

    def __getattr__(self, name: str):
        return getattr(self._synthesis, name)

    def __aiter__(self):
        return self._iterate()

    async def _iterate(self):
        async for chunk in self._synthesis:
            if self.timing is None:
                self.timing = "provider" if chunk.words is not None else "aligned"
            if self.timing == "provider":
                offset = self.seconds
                self.words += [
                    replace(w, start=round(offset + w.start, 3), end=round(offset + w.end, 3))
                    for w in chunk.words or ()
                ]
            else:
                self._samples.append(chunk.samples)
            self.seconds += chunk.duration
            yield chunk
        if self.timing != "provider":
            self.words = await self._aligned()

    def unsent(self) -> list[Word]:
        """Words not yet passed on (and mark them passed)."""
        words, self.sent = self.words[self.sent :], len(self.words)
        return words

    async def _aligned(self) -> list[Word]:
        if not self._samples:
            self.timing = "estimate"
            return align_words(self._text, [], self.seconds)
        samples = await asyncio.to_thread(np.concatenate, self._samples)
        self._samples = []
        rate = self._synthesis.sample_rate
        try:
            transcript = await self._server.speech_to_text.transcribe(
                samples, rate, word_timestamps=True, language="en", prompt=self._text
            )
        except Exception as err:  # noqa: BLE001 - captions are an extra: the audio is served regardless
            level = logging.INFO if isinstance(err, SesameVoiceError) else logging.WARNING
            _LOGGER.log(level, "Captions estimated: speech-to-text could not align the audio (%s)", err)
            self.timing = "estimate"
            return align_words(self._text, [], self.seconds)
        heard = [word for segment in transcript.segments for word in segment.words]
        self.timing = "whisper" if heard else "estimate"
        return align_words(self._text, heard, self.seconds)


def opened(server, speech, open_synthesis=None):
    """``open_synthesis`` (or the engine's) yielding a ``CaptionedSynthesis``."""

    @contextlib.asynccontextmanager
    async def captioned():
        inner = open_synthesis() if open_synthesis is not None else server.engine.synthesis(speech)
        async with inner as synthesis:
            yield CaptionedSynthesis(synthesis, server, speech.text)

    return captioned


def word_events(words: list[Word]) -> list[dict]:
    """One ``speech.audio.word`` event per word."""
    return [{"type": "speech.audio.word", **word_object(w)} for w in words]


def closing_events(synthesis: CaptionedSynthesis, options: CaptionOptions) -> list[dict]:
    """Events before ``speech.audio.done``: the words not yet sent, then subtitles if asked for."""
    events = word_events(synthesis.unsent())
    if options.subtitle_format:
        events.append(
            {
                "type": "speech.audio.subtitles",
                "format": options.subtitle_format,
                "text": subtitles(synthesis.words, options.subtitle_format),
                "timing": synthesis.timing,
            }
        )
    return events


async def captioned_response(server, speech, options: CaptionOptions, open_synthesis=None) -> web.Response:
    """The whole speech as JSON: base64 audio in the requested format, its words and subtitles."""
    settings = server.settings
    try:
        async with opened(server, speech, open_synthesis)() as synthesis:
            pieces = [chunk.samples async for chunk in synthesis]
    except SesameVoiceError as err:
        return from_exception(err)
    samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    audio = await asyncio.to_thread(
        encode_audio,
        speech.response_format,
        samples,
        synthesis.sample_rate,
        mp3_bitrate=settings.mp3_bitrate,
        opus_bitrate=settings.opus_bitrate,
        aac_bitrate=settings.aac_bitrate,
    )
    body = {
        "audio": base64.b64encode(audio).decode("ascii"),
        "audio_format": speech.response_format,
        "duration": round(synthesis.seconds, 3),
        "words": [word_object(w) for w in synthesis.words],
        # Kokoro-FastAPI's captioned speech names them so; its clients read this list.
        "timestamps": [{"word": w.word, "start_time": w.start, "end_time": w.end} for w in synthesis.words],
        "timing": synthesis.timing,
    }
    if options.subtitle_format:
        body["subtitles"] = subtitles(synthesis.words, options.subtitle_format)
        body["subtitles_format"] = options.subtitle_format
    headers = {"X-Sesame-Provider": synthesis.provider, "X-Sesame-Voice": synthesis.voice.name}
    if synthesis.fell_back_from:
        headers["X-Sesame-Fallback-From"] = ",".join(synthesis.fell_back_from)
    return web.json_response(body, headers=headers)
