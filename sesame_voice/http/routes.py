"""Helpers for HTTP routes that plugins add: the error shape, the API key, streaming speech.

``speech_response(request, server, speech)`` is a whole speech route in one call: it starts the
synthesis, maps errors to HTTP (``error_from_exception``), and streams the audio encoded in
``speech.response_format`` as it is synthesised. Every route on the shared application needs
``Authorization: Bearer API_KEY`` (or ``X-API-Key: API_KEY``; on a WebSocket upgrade also the key as a
subprotocol, ws_keys.py) when ``API_KEY`` is set, except ``/health`` and handlers wrapped with ``public``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sesame_voice.api.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    Overloaded,
    ProviderUnavailable,
    SesameVoiceError,
)
from sesame_voice.api.types import SynthesisRequest
from sesame_voice.http.encoding import encode_in_background
from sesame_voice.http.ws_keys import key_in_protocols

_LOGGER = logging.getLogger(__name__)
ENCODE_SLICE_SECONDS = 0.5
"""Chunks are encoded and sent in slices this long, so the first bytes leave sooner."""
PUBLIC_ATTRIBUTE = "sesame_voice_public"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(
    status: int, message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> web.Response:
    """The project's JSON error: ``{"error": {"message", "type", "param", "code"}}`` (OpenAI's shape)."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return web.json_response(body, status=status, headers=headers)


def error_status(err: SesameVoiceError) -> int:
    """HTTP status of a core error: 400 bad input, 404 not found, 409 conflict, 413 body too large,
    415 wrong content type, 429, 503, 500."""
    if isinstance(err, NotFound):
        return 404
    if isinstance(err, Conflict):
        return 409
    if isinstance(err, InvalidRequest):
        return {
            "unsupported_media_type": 415,
            "request_too_large": 413,
            "too_many_parts": 413,
            "field_too_large": 413,
            "file_too_large": 413,
        }.get(err.code, 400)
    if isinstance(err, Overloaded):
        return 429
    if isinstance(err, ProviderUnavailable):
        return 503
    return 500


def error_from_exception(err: SesameVoiceError) -> web.Response:
    """A core error as the project's JSON error response with its HTTP status."""
    status = error_status(err)
    if status < 500 and not isinstance(err, Overloaded):
        return error_response(status, str(err), param=getattr(err, "param", None), code=err.code)
    type_ = "rate_limit_error" if isinstance(err, Overloaded) else "server_error"
    return error_response(status, str(err) or "internal error", type_=type_, code=err.code)


def public(handler: Handler) -> Handler:
    """Mark a route handler as reachable without the API key (like ``/health``)."""

    @functools.wraps(handler)
    async def public_handler(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    setattr(public_handler, PUBLIC_ATTRIBUTE, True)
    return public_handler


def authorised(request: web.Request, api_key: str | None) -> bool:
    """With an API key configured, require ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; else accept anything.

    Every route takes both headers (the older clients send ``X-API-Key``), and a WebSocket upgrade
    the key as a subprotocol as well (browsers can set no headers there: ws_keys)."""
    if not api_key:
        return True
    expected = api_key.encode()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    bearer = scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected)
    header = hmac.compare_digest(request.headers.get("X-API-Key", "").strip().encode(), expected)
    return bearer or header or key_in_protocols(request, api_key)


def api_key_middleware(api_key: str | None):
    """aiohttp middleware answering 401 to requests without the key, except on ``public`` handlers."""

    @web.middleware
    async def require_api_key(request: web.Request, handler: Handler) -> web.StreamResponse:
        target = getattr(request.match_info, "handler", None)
        if getattr(target, PUBLIC_ATTRIBUTE, False) or authorised(request, api_key):
            return await handler(request)
        return error_response(
            401, "Incorrect or missing API key (Authorization: Bearer KEY or X-API-Key: KEY)", code="invalid_api_key"
        )

    return require_api_key


async def read_json(request: web.Request) -> Any:
    """The JSON body, or an InvalidRequest saying what is wrong with it."""
    if request.content_type != "application/json":
        raise InvalidRequest(
            f"Content-Type must be application/json, got {request.content_type or 'none'}",
            code="unsupported_media_type",
        )
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise InvalidRequest(
            f"request body is larger than {request.client_max_size // (1024 * 1024)} MiB", code="request_too_large"
        ) from None
    try:
        # A body of megabytes (base64 context audio) is parsed off the event loop.
        return json.loads(raw) if len(raw) < 64 * 1024 else await asyncio.to_thread(json.loads, raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidRequest(f"request body is not valid JSON: {err}", code="invalid_json") from None


async def speech_response(
    request: web.Request,
    server,
    speech: SynthesisRequest,
    *,
    errors: Callable[[SesameVoiceError], web.StreamResponse] = error_from_exception,
    content_type: str | None = None,
    frame: Callable[[bytes], bytes] | None = None,
    trailer: Callable[[float], bytes] | None = None,
    stream_error: Callable[[SesameVoiceError], bytes | None] | None = None,
    open_synthesis: Callable[[], Any] | None = None,
) -> web.StreamResponse:
    """Synthesise ``speech`` and stream it as the response, encoded in ``speech.response_format``.

    Errors before the first byte become ``errors(err)`` (the project's JSON errors by default).
    ``frame`` wraps each encoded piece (e.g. as an SSE event, with ``content_type``); ``trailer``
    gets the audio's seconds and returns the last bytes to send. After the status line has gone, an
    error is logged and ``stream_error(err)``'s bytes end the body; without them (plain audio) the
    connection is closed before the end of the chunked body, which clients see as a failed
    download, never as a complete file. ``open_synthesis`` returns the async context manager that
    yields the synthesis (default ``server.engine.synthesis(speech)``; e.g. the sessions service's ``speak``).
    """
    from sesame_voice.audio import StreamEncoder

    async with contextlib.AsyncExitStack() as stack:
        try:
            opened = open_synthesis() if open_synthesis is not None else server.engine.synthesis(speech)
            synthesis = await stack.enter_async_context(opened)
        except SesameVoiceError as err:
            return errors(err)
        settings = server.settings
        encoder = StreamEncoder(
            speech.response_format,
            synthesis.sample_rate,
            mp3_bitrate=settings.mp3_bitrate,
            opus_bitrate=settings.opus_bitrate,
            aac_bitrate=settings.aac_bitrate,
        )
        headers = {
            "X-Sesame-Provider": synthesis.provider,
            "X-Sesame-Voice": synthesis.voice.name,
            "X-Sample-Rate": str(encoder.sample_rate),
            "Content-Type": content_type or encoder.content_type,
        }
        if synthesis.fell_back_from:
            headers["X-Sesame-Fallback-From"] = ",".join(synthesis.fell_back_from)
        response = web.StreamResponse(headers=headers)
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            seconds = await _write_audio(response, synthesis, encoder, frame or _same)
            if trailer is not None:
                await response.write(trailer(seconds))
        except (asyncio.CancelledError, ConnectionResetError):
            _LOGGER.info("Client went away; generation for voice %s stopped", synthesis.voice.name)
            raise
        except SesameVoiceError as err:
            _log_stream_error(err, synthesis.voice.name)
            ending = stream_error(err) if stream_error is not None else None
            if ending is None:
                # The 200 is gone: break the chunked body so the client sees an incomplete download.
                if request.transport is not None:
                    request.transport.close()
                return response
            await response.write(ending)
        finally:
            encoder.abort()  # frees the codec when the client went away; a no-op once finished
        await response.write_eof()
        return response


async def _write_audio(response: web.StreamResponse, synthesis, encoder, frame: Callable[[bytes], bytes]) -> float:
    seconds = 0.0
    encode = asyncio.to_thread  # the first audio at normal priority: nothing may delay the first byte
    async for chunk in synthesis:
        seconds += chunk.duration
        step = max(1, int(chunk.sample_rate * ENCODE_SLICE_SECONDS))
        for start in range(0, len(chunk.samples), step):
            data = await encode(encoder.encode, chunk.samples[start : start + step])
            if data:
                await response.write(frame(data))
        encode = encode_in_background
    data = await asyncio.to_thread(encoder.finish)
    if data:
        await response.write(frame(data))
    return seconds


def _same(data: bytes) -> bytes:
    return data


def _log_stream_error(err: SesameVoiceError, voice: str) -> None:
    """A client's bad input is not the server's failure: WARNING without a traceback, else ERROR."""
    level = logging.WARNING if isinstance(err, InvalidRequest) else logging.ERROR
    _LOGGER.log(level, "Synthesis in voice %s failed after the response began: %s", voice, err)
