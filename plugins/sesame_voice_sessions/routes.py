"""The REST API of sessions (``/v1/sessions…``) and the WebSocket at ``/v1/sessions/{id}/ws``.

Errors are ``{"detail": message, "code": code}`` (the FastAPI shape of the older servers these
routes came from) with the project's one status mapping: 400 bad input, 404 unknown session, 409
busy or a limit, 503 no provider can speak.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
from aiohttp import web

from sesame_voice import InvalidRequest, SesameVoiceError
from sesame_voice.audio import CONTENT_TYPES, encode_audio
from sesame_voice.http.routes import authorised, error_status, public, read_json

from . import fields

_LOGGER = logging.getLogger(__name__)


def error_response(status: int, message: str, code: str | None = None) -> web.Response:
    """A JSON error as FastAPI answers (``detail``), plus a machine-readable ``code``."""
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return web.json_response({"detail": message, "code": code}, status=status, headers=headers)


def from_exception(err: SesameVoiceError) -> web.Response:
    """The error response for a core or session error (``error_status``: 404 unknown, 409 busy/limit)."""
    return error_response(error_status(err), str(err) or "internal error", err.code)


async def read_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body, or InvalidRequest saying what is wrong."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_json")
    return body


def guarded(handler, server, sessions):
    """``handler(request, sessions, server)`` with the API key checked and errors in this API's shape."""

    async def guarded_handler(request: web.Request) -> web.StreamResponse:
        if not authorised(request, server.settings.api_key):
            return error_response(
                401, "Incorrect or missing API key (Authorization: Bearer KEY or X-API-Key)", "invalid_api_key"
            )
        try:
            return await handler(request, sessions, server)
        except SesameVoiceError as err:
            return from_exception(err)
        except web.HTTPException:
            raise
        except Exception as err:
            _LOGGER.exception("Session route %s failed", request.path)
            return error_response(500, f"internal error: {type(err).__name__}", "internal_error")

    # public: the core's key check (both headers; a WebSocket's key subprotocol) is made here, so a
    # refusal comes in this API's error shape.
    return public(guarded_handler)


async def create_session(request: web.Request, sessions, server) -> web.Response:
    body = await read_object(request) if request.can_read_body else {}
    voice = fields.optional_str(body, "voice") or sessions.default_voice
    session = await sessions.create(
        voice=voice, speaker=fields.speaker(body), session_id=fields.optional_str(body, "id")
    )
    return web.json_response(session.describe(with_turns=True), status=201)


async def list_sessions(request: web.Request, sessions, server) -> web.Response:
    return web.json_response(
        {"sessions": [s.describe() for s in await sessions.list()], "limits": vars(sessions.limits)}
    )


async def get_session(request: web.Request, sessions, server) -> web.Response:
    session = await sessions.get(request.match_info["session_id"], audio=False)
    return web.json_response(session.describe(with_turns=True))


async def delete_session(request: web.Request, sessions, server) -> web.Response:
    await sessions.delete(request.match_info["session_id"])
    return web.Response(status=204)


async def add_turn(request: web.Request, sessions, server) -> web.Response:
    session_id = request.match_info["session_id"]
    await sessions.get(session_id, audio=False)  # 404 before reading a large body
    turn = await fields.add_turn(sessions, session_id, await read_object(request))
    return web.json_response(turn.describe(), status=201)


async def speak(request: web.Request, sessions, server) -> web.Response:
    """Speak ``text`` in the session; the audio file comes back and the turn joins the history."""
    body = await read_object(request)
    fmt = fields.audio_format(body.get("format"))
    voice = fields.optional_str(body, "voice")
    sessions.check_voice(voice)
    async with sessions.speak(
        request.match_info["session_id"],
        fields.speech_text(body),
        speaker=fields.speaker(body, None),
        voice=voice,
        frontend="sessions",
        max_audio_length_ms=fields.max_audio_ms(body),
    ) as spoken:
        chunks = [chunk async for chunk in spoken]
    samples = np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)
    settings = server.settings
    data = await asyncio.to_thread(
        encode_audio,
        fmt,
        samples,
        spoken.sample_rate,
        mp3_bitrate=settings.mp3_bitrate,
        opus_bitrate=settings.opus_bitrate,
        aac_bitrate=settings.aac_bitrate,
    )
    headers = {"X-Sesame-Provider": spoken.provider, "X-Sesame-Voice": spoken.voice.name, "X-Sesame-Turn-Id": spoken.id}
    if spoken.fell_back_from:
        headers["X-Sesame-Fallback-From"] = ",".join(spoken.fell_back_from)
    return web.Response(body=data, content_type=CONTENT_TYPES[fmt], headers=headers)


async def websocket(request: web.Request, sessions, server) -> web.StreamResponse:
    """``GET /v1/sessions/{id}/ws``: the conversation protocol on an existing session."""
    return await sessions.websocket(request, request.match_info["session_id"])


ROUTES = [
    ("POST", "/v1/sessions", create_session),
    ("GET", "/v1/sessions", list_sessions),
    ("GET", "/v1/sessions/{session_id}", get_session),
    ("DELETE", "/v1/sessions/{session_id}", delete_session),
    ("POST", "/v1/sessions/{session_id}/turns", add_turn),
    ("POST", "/v1/sessions/{session_id}/speak", speak),
    ("GET", "/v1/sessions/{session_id}/ws", websocket),
]


def add_routes(app: web.Application, server, sessions) -> None:
    """Mount the session API on the server's HTTP app."""
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, guarded(handler, server, sessions))
