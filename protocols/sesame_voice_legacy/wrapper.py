"""The CSM FastAPI wrapper's API (``/tts``, form ``/generate``, ``/voices``, ``/``) and the persona server's
``/api/v1/generate``: requests as those servers took them, whole audio files back."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from sesame_voice import InvalidRequest, SynthesisRequest, __version__
from sesame_voice.config import RESPONSE_FORMATS
from sesame_voice.http.context import ContextLimits, parse_segments, parse_speaker
from sesame_voice.http.forms import FormLimits, read_form

from .output import speak_file

MAX_AUDIO_MS = 600_000


def context_limits(options) -> ContextLimits:
    """Bounds on context segments from the plugin's options."""
    return ContextLimits(options.max_context_segments, options.max_segment_seconds, options.max_context_seconds)


def text_field(body: Mapping[str, Any]) -> str:
    text = body.get("text")
    if text is None:
        raise InvalidRequest("missing required field 'text'", param="text", code="missing_required_parameter")
    if not isinstance(text, str):
        raise InvalidRequest("text must be a string", param="text")
    return text


def voice_field(body: Mapping[str, Any], options) -> str:
    voice = body.get("voice")
    if voice in (None, ""):
        return options.voice
    if not isinstance(voice, str):
        raise InvalidRequest("voice must be a voice name", param="voice")
    return voice


def format_field(value: Any, param: str = "format") -> str:
    fmt = "wav" if value in (None, "") else value
    if not isinstance(fmt, str) or fmt.lower() not in RESPONSE_FORMATS:
        raise InvalidRequest(
            f"{param} must be one of {', '.join(RESPONSE_FORMATS)}", param=param, code="unsupported_format"
        )
    return fmt.lower()


def number_field(body: Mapping[str, Any], name: str, kind: type, low: float, high: float):
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise InvalidRequest(f"{name} must be a{'n integer' if kind is int else ' number'}", param=name)
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}, got {value}", param=name)
    return kind(value)


def parse_tts(body: Mapping[str, Any], options) -> SynthesisRequest:
    """A ``/tts`` body: text, voice, speaker, format, max_audio_length_ms, temperature, top_k, context_segments."""
    speakers = range(options.max_speakers)
    speaker = parse_speaker(body.get("speaker", 0), "speaker", speakers)
    sampling: dict[str, Any] = {"speaker": speaker}
    temperature = number_field(body, "temperature", float, 0.0, 5.0)
    top_k = number_field(body, "top_k", int, 1, 100_000)
    if temperature is not None:
        sampling["temperature"] = temperature
    if top_k is not None:
        sampling["top_k"] = top_k
    context = parse_segments(
        body.get("context_segments"), "context_segments", context_limits(options), speakers=speakers
    )
    return SynthesisRequest(
        text=text_field(body),
        voice=voice_field(body, options),
        response_format=format_field(body.get("format")),
        context=context,
        max_audio_length_ms=number_field(body, "max_audio_length_ms", int, 80, MAX_AUDIO_MS),
        sampling=sampling,
        frontend="legacy",
    )


async def tts(request: web.Request, server, options, body: dict) -> web.StreamResponse:
    """``POST /tts``: the wrapper's main endpoint."""
    speech = await asyncio.to_thread(parse_tts, body, options)  # decodes the context's base64 WAVs
    # The wrapper's clients always send temperature and top_k; a voice whose providers have no such
    # knobs (Piper) speaks without them rather than refuse the old client.
    known = server.engine.sampling_params(server.engine.resolve_voice(speech))
    speech.sampling = {key: value for key, value in speech.sampling.items() if key in known}
    return await speak_file(server, speech, speech.response_format)


async def generate_form(request: web.Request, server, options) -> web.StreamResponse:
    """``POST /generate`` with form fields ``text`` and ``speaker`` (and optionally ``voice``): a WAV file."""
    form = await _form_fields(request, server)
    speaker = parse_speaker(form.get("speaker", "0") or "0", "speaker", range(options.max_speakers))
    voice = voice_field({"voice": form.get("voice")}, options)
    speech = SynthesisRequest(
        text=text_field({"text": form.get("text")}),
        voice=voice,
        response_format="wav",
        sampling={"speaker": speaker},
        frontend="legacy",
    )
    return await speak_file(server, speech, "wav")


async def _form_fields(request: web.Request, server) -> dict[str, str]:
    """The form's text fields: multipart (bounded by MAX_FORM_PARTS/MAX_FORM_FIELD_BYTES) or urlencoded."""
    if request.content_type == "multipart/form-data":
        form = await read_form(request, FormLimits.from_settings(server.settings, max_file_bytes=0), files=())
        return {name: values[-1] for name, values in form.fields.items()}
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            return {name: value for name, value in (await request.post()).items() if isinstance(value, str)}
        except web.HTTPRequestEntityTooLarge:
            raise InvalidRequest("the form is too large", code="request_too_large") from None
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequest("the form is not valid urlencoded data", code="invalid_form") from None
    raise InvalidRequest(
        f"Content-Type must be multipart/form-data, application/x-www-form-urlencoded or "
        f"application/json, got {request.content_type or 'none'}",
        code="unsupported_media_type",
    )


async def persona_generate(request: web.Request, server, options, body: dict) -> web.StreamResponse:
    """``POST /api/v1/generate`` ``{"text", "voice"?}``: the persona server's endpoint (WAV unless ``format``)."""
    speech = SynthesisRequest(
        text=text_field(body),
        voice=voice_field(body, options),
        response_format=format_field(body.get("format")),
        frontend="legacy",
    )
    return await speak_file(server, speech, speech.response_format)


def voices_listing(server, options) -> dict[str, Any]:
    """``GET /voices``: every voice and the speaker ids."""
    voices = [
        {
            "name": v.name,
            "description": v.description,
            "provider": v.provider,
            "aliases": list(v.aliases),
            "languages": list(v.languages),
        }
        for v in server.voices.list()
    ]
    speakers = [{"id": i, "name": f"Speaker {i}"} for i in range(options.max_speakers)]
    return {"voices": voices, "speakers": speakers, "default_voice": options.voice}


ENDPOINTS = {
    "POST /tts": "text to speech with context segments (JSON) -> wav/mp3",
    "POST /generate": "form text, speaker -> wav (a JSON body is the Mimi-code sidecar request)",
    "POST /api/v1/generate": "JSON text, voice -> wav",
    "POST /csm/generate": "Mimi codes or 24 kHz PCM as JSON",
    "GET /voices": "voices and speaker ids",
    "GET /health": "status, model_loaded, providers",
    "/v1/sessions": "conversation sessions (REST); /v1/sessions/{id}/ws and /ws: WebSocket",
    "POST /v1/audio/speech": "OpenAI speech API",
}


def api_info(server, options) -> dict[str, Any]:
    """``GET /``: what this server is and what it serves."""
    return {
        "name": "sesame-voice",
        "version": __version__,
        "model": "sesame/csm-1b",
        "default_voice": options.voice,
        "endpoints": ENDPOINTS,
        "openapi": "/openapi.json",
    }


def api_page(info: dict[str, Any]) -> str:
    """A small HTML page of ``info`` for a browser."""
    rows = "".join(
        f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(v)}</td></tr>"
        for k, v in info["endpoints"].items()
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>sesame-voice</title></head><body>"
        f"<h1>sesame-voice {html.escape(info['version'])}</h1><p>Default voice: "
        f"<b>{html.escape(info['default_voice'])}</b>. <a href='/openapi.json'>OpenAPI</a>, "
        f"<a href='/health'>health</a>, <a href='/voices'>voices</a>.</p><table>{rows}</table></body></html>"
    )


def wants_html(request: web.Request) -> bool:
    """True when the client prefers HTML to JSON (a browser)."""
    accept = request.headers.get("Accept", "")
    return "text/html" in accept and not accept.lstrip().startswith("application/json")


def health_fields(server, options):
    """``status: healthy`` when the legacy voice can be served; ``model_loaded`` when its first provider is ready."""

    def fields(report: dict) -> dict:
        try:
            voice = server.voices.get(options.voice)
        except InvalidRequest:
            return {"status": "unhealthy", "model_loaded": False}
        providers = [server.providers.get(name) for name, _ in voice.candidates()]
        first = providers[0]
        can_speak = any(p is not None and p.state != "failed" for p in providers)
        healthy = can_speak and report.get("status") != "degraded"
        return {
            "status": "healthy" if healthy else "unhealthy",
            "model_loaded": first is not None and first.state == "ready",
            "model_voice": voice.name,
        }

    return fields
