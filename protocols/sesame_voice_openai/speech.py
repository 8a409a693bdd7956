"""``POST /v1/audio/speech`` exactly as OpenAI's createSpeech: audio stream or SSE events."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
from typing import Any

from aiohttp import web

from sesame_voice import InvalidRequest, SesameVoiceError, SynthesisRequest
from sesame_voice.audio import StreamEncoder

from .errors import error_response, from_exception

_LOGGER = logging.getLogger(__name__)
STREAM_FORMATS = ("audio", "sse")
ENCODE_SLICE_SECONDS = 0.5
"""Chunks are encoded and sent in slices this long, so the first bytes leave sooner."""
FRAME_SECONDS = 0.08
"""Usage reports output tokens as 80 ms audio frames (CSM's Mimi frame rate)."""


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
    request = SynthesisRequest(
        text=text,
        voice=voice or None,
        speed=float(speed),
        response_format=response_format.lower(),
        instructions=instructions,
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


async def read_json(request: web.Request) -> Any:
    """The JSON body, or an InvalidRequest saying what is wrong with it."""
    if request.content_type != "application/json":
        raise InvalidRequest(
            f"Content-Type must be application/json, got {request.content_type or 'none'}",
            code="unsupported_media_type",
        )
    raw = await request.read()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidRequest(f"request body is not valid JSON: {err}", code="invalid_json") from None


async def create_speech(request: web.Request, server) -> web.StreamResponse:
    """Handle one createSpeech call; the audio streams as it is synthesised."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            body = await read_json(request)
            speech, stream_format = parse_speech_body(body, server.settings)
            conversation = session_extension(body)
            if conversation is not None:  # extension: speak in a conversation session (docs/sessions.md)
                session_id, speaker = conversation
                synthesis = await stack.enter_async_context(server.sessions.speak(
                    session_id, speech.text, speaker=speaker, voice=speech.voice, frontend="openai",
                    speed=speech.speed, response_format=speech.response_format, instructions=speech.instructions))
            else:
                # The engine's session stops the generation, and counts it, if the client goes away.
                synthesis = await stack.enter_async_context(server.engine.session(speech))
        except InvalidRequest as err:
            status = 415 if err.code == "unsupported_media_type" else 400
            return error_response(status, str(err), param=err.param, code=err.code)
        except SesameVoiceError as err:
            return from_exception(err)
        return await _stream(request, server, speech, stream_format == "sse", synthesis)


async def _stream(request: web.Request, server, speech, sse: bool, synthesis) -> web.StreamResponse:
    """Write the synthesis to the client as encoded audio (or SSE events) as it arrives."""
    encoder = StreamEncoder(
        speech.response_format,
        synthesis.sample_rate,
        mp3_bitrate=server.settings.mp3_bitrate,
        opus_bitrate=server.settings.opus_bitrate,
        aac_bitrate=server.settings.aac_bitrate,
    )
    headers = {
        "X-Sesame-Provider": synthesis.provider,
        "X-Sesame-Voice": synthesis.voice.name,
        "X-Sample-Rate": str(encoder.sample_rate),
        "Content-Type": "text/event-stream" if sse else encoder.content_type,
    }
    if synthesis.fell_back_from:
        headers["X-Sesame-Fallback-From"] = ",".join(synthesis.fell_back_from)
    response = web.StreamResponse(headers=headers)
    response.enable_chunked_encoding()
    seconds = 0.0
    try:
        await response.prepare(request)
        async for chunk in synthesis:
            seconds += chunk.duration
            step = max(1, int(chunk.sample_rate * ENCODE_SLICE_SECONDS))
            for start in range(0, len(chunk.samples), step):
                data = await asyncio.to_thread(encoder.encode, chunk.samples[start : start + step])
                await _send(response, data, sse)
        await _send(response, await asyncio.to_thread(encoder.finish), sse)
        if sse:
            await response.write(_sse_event(_done_event(speech.text, seconds)))
        await response.write_eof()
    except (asyncio.CancelledError, ConnectionResetError):
        _LOGGER.info("Client went away; generation for voice %s stopped", synthesis.voice.name)
        raise
    except SesameVoiceError as err:
        # Headers are gone: an SSE client gets an error event, an audio client a broken stream.
        _LOGGER.error("Synthesis failed mid-stream: %s", err)
        if not sse:
            raise
        await response.write(_sse_event({"type": "error", "error": {"message": str(err), "code": err.code}}))
        await response.write_eof()
    return response


async def _send(response: web.StreamResponse, data: bytes, sse: bool) -> None:
    if not data:
        return
    if sse:
        data = _sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")})
    await response.write(data)


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
