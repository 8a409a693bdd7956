"""``POST /v1/audio/transcriptions`` as OpenAI's createTranscription: json, text, srt, vtt, verbose_json, SSE."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field, replace

from aiohttp import web

from sesame_voice import InvalidRequest, SesameVoiceError, Transcript
from sesame_voice.audio import decode_file
from sesame_voice.http.forms import FormLimits, FormTooLarge
from sesame_voice.http.forms import read_form as read_bounded_form

from .errors import error_response, from_exception
from .speech import _sse_event

_LOGGER = logging.getLogger(__name__)
TRANSCRIPTION_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
"""OpenAI model names accepted (served by the default speech-to-text provider); whisper-1 is listed."""
RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")
MAX_UPLOAD_MB = 25
"""OpenAI's own upload limit; ``plugins: openai: max_upload_mb`` changes it."""
MAX_AUDIO_SECONDS = 3600
"""Longest decoded audio accepted; ``plugins: openai: max_audio_seconds`` changes it."""
MAX_FIELD_BYTES = 64 * 1024
"""Largest non-file form field (a prompt)."""
LANGUAGE_NAMES = {
    "en": "english",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "pt": "portuguese",
    "nl": "dutch",
    "pl": "polish",
    "ru": "russian",
    "uk": "ukrainian",
    "sv": "swedish",
    "da": "danish",
    "no": "norwegian",
    "fi": "finnish",
    "cs": "czech",
    "tr": "turkish",
    "ar": "arabic",
    "he": "hebrew",
    "hi": "hindi",
    "ja": "japanese",
    "ko": "korean",
    "zh": "chinese",
    "el": "greek",
    "hu": "hungarian",
}
"""verbose_json names the language as OpenAI does; other codes are given as they are."""


class UploadTooLarge(InvalidRequest):
    """The multipart upload exceeds the configured limit."""

    code = "file_too_large"


@dataclass
class TranscriptionForm:
    """The validated multipart fields of one createTranscription call."""

    audio: bytes
    filename: str
    model: str = "whisper-1"
    language: str | None = None
    prompt: str | None = None
    response_format: str = "json"
    temperature: float | None = None
    granularities: list[str] = field(default_factory=lambda: ["segment"])
    stream: bool = False


@dataclass(frozen=True)
class OpenAIOptions:
    """The OpenAI frontend's settings: ``plugins: {openai: {...}}`` in the config file."""

    max_upload_mb: float = MAX_UPLOAD_MB
    """Largest transcription upload, in MB (OpenAI's own limit is 25)."""
    max_audio_seconds: float = MAX_AUDIO_SECONDS
    """Longest audio a transcription request may carry."""


def _limits(server) -> tuple[int, float]:
    options = server.settings.plugin_settings("openai", OpenAIOptions)
    return int(options.max_upload_mb * 1024 * 1024), float(options.max_audio_seconds)


async def read_form(request: web.Request, max_bytes: int, limits: FormLimits | None = None) -> TranscriptionForm:
    """Read and validate the multipart form, never holding more than ``max_bytes`` of file."""
    limits = limits or FormLimits(max_field_bytes=MAX_FIELD_BYTES)
    if (
        request.content_length is not None
        and request.content_length > max_bytes + limits.max_field_bytes * limits.max_parts
    ):
        raise UploadTooLarge(f"the upload is {request.content_length} bytes; the limit is {max_bytes}", param="file")
    form = await read_bounded_form(request, replace(limits, max_file_bytes=max_bytes), files=("file",))
    if "file" not in form.files:
        raise InvalidRequest("missing required parameter 'file'", param="file", code="missing_required_parameter")
    filename, audio = form.files["file"]
    return _form(audio, filename, form.fields)


def _form(audio: bytes, filename: str, fields: dict[str, list[str]]) -> TranscriptionForm:
    def one(name: str) -> str | None:
        values = fields.get(name)
        return values[-1].strip() if values and values[-1].strip() else None

    form = TranscriptionForm(audio=audio, filename=filename, model=one("model") or "whisper-1")
    form.language, form.prompt = one("language"), one("prompt")
    form.response_format = (one("response_format") or "json").lower()
    if form.response_format not in RESPONSE_FORMATS:
        raise InvalidRequest(
            f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, got {form.response_format!r}",
            param="response_format",
            code="unsupported_format",
        )
    if (temperature := one("temperature")) is not None:
        try:
            form.temperature = float(temperature)
        except ValueError:
            raise InvalidRequest("temperature must be a number between 0 and 1", param="temperature") from None
        if not 0.0 <= form.temperature <= 1.0:
            raise InvalidRequest("temperature must be between 0 and 1", param="temperature")
    granularities = [g.strip() for value in fields.get("timestamp_granularities", []) for g in value.split(",")]
    if bad := [g for g in granularities if g not in GRANULARITIES]:
        raise InvalidRequest(
            f"timestamp_granularities must be word and/or segment, got {bad[0]!r}", param="timestamp_granularities"
        )
    form.granularities = granularities or ["segment"]
    stream = (one("stream") or "false").lower()
    if stream not in ("true", "false"):
        raise InvalidRequest("stream must be true or false", param="stream")
    form.stream = stream == "true"
    return form


async def create_transcription(request: web.Request, server) -> web.StreamResponse:
    """Handle one createTranscription call; with ``stream=true`` text arrives as it is decoded."""
    max_bytes, max_seconds = _limits(server)
    try:
        form = await read_form(request, max_bytes, FormLimits.from_settings(server.settings))
        provider = None if form.model in TRANSCRIPTION_MODELS else form.model
        wanted_rate = server.speech_to_text.provider(provider).sample_rate  # fails fast without one
        samples, rate = await asyncio.to_thread(decode_file, form.audio, max_seconds, wanted_rate)
        form.audio = b""
        transcription = server.speech_to_text.start(
            samples,
            rate,
            language=form.language,
            prompt=form.prompt,
            temperature=form.temperature,
            word_timestamps="word" in form.granularities,
            provider=provider,
        )
    except (UploadTooLarge, FormTooLarge) as err:
        return error_response(413, str(err), param=err.param, code=err.code)
    except InvalidRequest as err:
        status = 415 if err.code == "unsupported_media_type" else 400
        return error_response(status, str(err), param=err.param, code=err.code)
    except SesameVoiceError as err:
        return from_exception(err)
    headers = {"X-Sesame-Provider": transcription.provider.name}
    try:
        if form.stream:
            return await _stream(request, transcription, headers)
        try:
            transcript = await transcription.result()
        except SesameVoiceError as err:
            return from_exception(err)
        return _respond(transcript, form, headers)
    finally:
        await transcription.aclose()


def _respond(transcript: Transcript, form: TranscriptionForm, headers: dict[str, str]) -> web.Response:
    kind = form.response_format
    if kind == "text":
        return web.Response(text=transcript.text + "\n", content_type="text/plain", headers=headers)
    if kind == "srt":
        return web.Response(text=to_srt(transcript), content_type="application/x-subrip", headers=headers)
    if kind == "vtt":
        return web.Response(text=to_vtt(transcript), content_type="text/vtt", headers=headers)
    usage = {"type": "duration", "seconds": math.ceil(transcript.duration)}
    if kind == "json":
        return web.json_response({"text": transcript.text, "usage": usage}, headers=headers)
    return web.json_response(verbose(transcript, form.granularities) | {"usage": usage}, headers=headers)


def verbose(transcript: Transcript, granularities: list[str]) -> dict:
    """The verbose_json body: language, duration, segments (and words when asked for)."""
    body = {
        "task": "transcribe",
        "language": LANGUAGE_NAMES.get(transcript.language or "", transcript.language or ""),
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
    }
    if "segment" in granularities:
        body["segments"] = [
            {
                "id": index,
                "seek": int(segment.start * 100),
                "start": round(segment.start, 3),
                "end": round(segment.end, 3),
                "text": segment.text,
                "tokens": list(segment.tokens),
                "temperature": segment.temperature or 0.0,
                "avg_logprob": segment.avg_logprob or 0.0,
                "compression_ratio": segment.compression_ratio or 0.0,
                "no_speech_prob": segment.no_speech_prob or 0.0,
            }
            for index, segment in enumerate(transcript.segments)
        ]
    if "word" in granularities:
        body["words"] = [
            {"word": word.word.strip(), "start": round(word.start, 3), "end": round(word.end, 3)}
            for segment in transcript.segments
            for word in segment.words
        ]
    return body


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, int(round(seconds * 1000)))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(transcript: Transcript) -> str:
    """SubRip subtitles, one cue per segment."""
    cues = [
        f"{index}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n{s.text.strip()}\n"
        for index, s in enumerate(transcript.segments, start=1)
    ]
    return "\n".join(cues) + ("\n" if cues else "")


def to_vtt(transcript: Transcript) -> str:
    """WebVTT subtitles, one cue per segment."""
    cues = [f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{s.text.strip()}\n" for s in transcript.segments]
    return "WEBVTT\n\n" + "\n".join(cues)


async def _stream(request: web.Request, transcription, headers: dict[str, str]) -> web.StreamResponse:
    """Server-sent events: ``transcript.text.delta`` per decoded segment, then ``transcript.text.done``.

    The first segment is awaited before the headers go out, so a model that cannot load is still
    an HTTP error; a failure after that is an ``error`` event.
    """
    segments = aiter(transcription)
    try:
        first = await anext(segments, None)
    except SesameVoiceError as err:
        return from_exception(err)
    response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    text = ""
    try:
        segment = first
        while segment is not None:
            if piece := segment.text.strip():
                delta = piece if not text else " " + piece
                text += delta
                await response.write(_sse_event({"type": "transcript.text.delta", "delta": delta}))
            segment = await anext(segments, None)
        await response.write(_sse_event({"type": "transcript.text.done", "text": text}))
    except SesameVoiceError as err:
        _LOGGER.error("Transcription failed mid-stream: %s", err)
        await response.write(
            _sse_event(
                {
                    "type": "error",
                    "error": {"message": str(err), "type": "server_error", "code": err.code, "param": None},
                }
            )
        )
    await response.write_eof()
    return response
