"""``POST /v1/audio/speech`` exactly as OpenAI's createSpeech: audio stream or SSE events."""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import math
from typing import Any

from aiohttp import web

from sesame_voice import FRAME_SECONDS, InvalidRequest, SynthesisRequest
from sesame_voice.http.routes import read_json, speech_response

from .captions import caption_options, captioned_response, closing_events, opened, word_events
from .errors import from_exception

STREAM_FORMATS = ("audio", "sse")
# Usage reports output tokens as 80 ms audio frames (CSM's Mimi frame rate): FRAME_SECONDS.
SESSIONS_OFF = (
    "conversation sessions are off: the sessions plugin is not enabled "
    "(remove 'sessions' from DISABLED_PLUGINS / --disable)"
)


def parse_speech_body(body: Any, settings) -> tuple[SynthesisRequest, str]:
    """Validate an OpenAI createSpeech body; return the request and its stream_format."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    model = body.get("model", "csm-1b")
    if not isinstance(model, str):
        raise InvalidRequest("model must be a string", param="model")
    if "input" not in body:
        raise InvalidRequest("missing required parameter 'input'", param="input", code="missing_required_parameter")
    text = body["input"]
    if not isinstance(text, str):
        raise InvalidRequest("input must be a string", param="input")
    voice = body.get("voice")
    if isinstance(voice, dict):
        voice = voice.get("id")
    if voice is not None and not isinstance(voice, str):
        raise InvalidRequest("voice must be a voice name or an object with an 'id'", param="voice")
    response_format = body.get("response_format") or settings.default_format
    if not isinstance(response_format, str):
        raise InvalidRequest("response_format must be a string", param="response_format")
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)):
        raise InvalidRequest("speed must be a number between 0.25 and 4.0", param="speed")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidRequest("instructions must be a string", param="instructions")
    stream_format = body.get("stream_format") or "audio"
    if stream_format not in STREAM_FORMATS:
        raise InvalidRequest("stream_format must be 'audio' or 'sse'", param="stream_format")
    sampling = body.get("sampling") or {}
    if not isinstance(sampling, dict):
        raise InvalidRequest('sampling must be an object, e.g. {"temperature": 0.7}', param="sampling")
    request = SynthesisRequest(
        text=text,
        voice=voice or None,
        speed=float(speed),
        response_format=response_format.lower(),
        instructions=instructions,
        sampling=sampling,
        frontend="openai",
    )
    return request, stream_format


def session_extension(body: dict) -> tuple[str, int | None] | None:
    """``session`` (and optional ``speaker``): a sesame-voice extension to speak within a conversation."""
    session_id = body.get("session")
    if session_id is None:
        return None
    if not isinstance(session_id, str) or not session_id:
        raise InvalidRequest("session must be a session id string", param="session")
    speaker = body.get("speaker")
    if speaker is not None and (isinstance(speaker, bool) or not isinstance(speaker, int) or speaker < 0):
        raise InvalidRequest("speaker must be a non-negative integer", param="speaker")
    return session_id, speaker


async def create_speech(request: web.Request, server) -> web.StreamResponse:
    """Handle one createSpeech call; the audio streams as it is synthesised."""
    try:
        body = await read_json(request)
        speech, stream_format = parse_speech_body(body, server.settings)
        conversation = session_extension(body)
        captions = caption_options(body)
    except InvalidRequest as err:
        return from_exception(err)
    opener = None
    if conversation is not None:  # extension: speak in a conversation session (docs/sessions.md)
        session_id, speaker = conversation
        sessions = server.service("sessions")
        if sessions is None:
            return from_exception(InvalidRequest(SESSIONS_OFF, param="session", code="sessions_not_enabled"))
        opener = functools.partial(
            sessions.speak,
            session_id,
            speech.text,
            speaker=speaker,
            voice=speech.voice,
            frontend="openai",
            sampling=speech.sampling,
            speed=speech.speed,
            response_format=speech.response_format,
            instructions=speech.instructions,
        )

    if captions is not None:  # extension: word timings and subtitles (docs/captions.md)
        speech.word_timings = True
        if stream_format != "sse":
            return await captioned_response(server, speech, captions, opener)
        return await _captioned_events(request, server, speech, captions, opener)
    if stream_format != "sse":
        return await speech_response(request, server, speech, open_synthesis=opener)
    return await speech_response(
        request,
        server,
        speech,
        open_synthesis=opener,
        content_type="text/event-stream",
        frame=lambda data: _sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")}),
        trailer=lambda seconds: _sse_event(_done_event(speech.text, seconds)),
        stream_error=lambda err: _sse_event({"type": "error", "error": {"message": str(err), "code": err.code}}),
    )


async def _captioned_events(request, server, speech, captions, opener) -> web.StreamResponse:
    """SSE audio deltas with ``speech.audio.word`` events: each word no later than the delta that
    carries its audio begins (provider timings), or all after the last delta (aligned timings)."""
    holder: dict = {}
    open_captioned = opened(server, speech, opener)

    @contextlib.asynccontextmanager
    async def remembered():
        async with open_captioned() as synthesis:
            holder["synthesis"] = synthesis
            yield synthesis

    def frame(data: bytes) -> bytes:
        words = b"".join(_sse_event(event) for event in word_events(holder["synthesis"].unsent()))
        return words + _sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")})

    def trailer(seconds: float) -> bytes:
        events = [*closing_events(holder["synthesis"], captions), _done_event(speech.text, seconds)]
        return b"".join(_sse_event(event) for event in events)

    return await speech_response(
        request,
        server,
        speech,
        open_synthesis=remembered,
        content_type="text/event-stream",
        frame=frame,
        trailer=trailer,
        stream_error=lambda err: _sse_event({"type": "error", "error": {"message": str(err), "code": err.code}}),
    )


def _sse_event(payload: dict) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def _done_event(text: str, seconds: float) -> dict:
    input_tokens = len(text.split())
    output_tokens = math.ceil(seconds / FRAME_SECONDS)
    return {
        "type": "speech.audio.done",
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    }
