"""Errors in the old FastAPI servers' shape: ``{"detail": message, "code": code}`` with a 4xx/5xx status."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sesame_voice import InvalidRequest, Overloaded, ProviderFailed, ProviderUnavailable, SesameVoiceError
from sesame_voice.sessions import SessionBusy, SessionLimitReached, UnknownSession


def error_response(status: int, message: str, code: str | None = None) -> web.Response:
    """A JSON error as FastAPI answers (``detail``), plus a machine-readable ``code``."""
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return web.json_response({"detail": message, "code": code}, status=status, headers=headers)


def status_of(err: SesameVoiceError) -> int:
    """HTTP status of a core error."""
    if isinstance(err, UnknownSession):
        return 404
    if isinstance(err, (SessionBusy, SessionLimitReached)):
        return 409
    if err.code == "unsupported_media_type":
        return 415
    if err.code == "request_too_large":
        return 413
    if isinstance(err, InvalidRequest):
        return 400
    if isinstance(err, Overloaded):
        return 429
    if isinstance(err, ProviderUnavailable):
        return 503
    if isinstance(err, ProviderFailed):
        return 500
    return 500


def from_exception(err: SesameVoiceError) -> web.Response:
    """The error response for a core error."""
    return error_response(status_of(err), str(err) or "internal error", err.code)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body, or InvalidRequest saying what is wrong."""
    if request.content_type != "application/json":
        raise InvalidRequest(f"Content-Type must be application/json, got {request.content_type or 'none'}",
                             code="unsupported_media_type")
    try:
        body = json.loads(await read_body(request))
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidRequest(f"request body is not valid JSON: {err}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_json")
    return body


async def read_body(request: web.Request) -> bytes:
    """The raw body; InvalidRequest (413) when it is over the server's size limit."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise InvalidRequest(f"request body is larger than {request.client_max_size // (1024 * 1024)} MiB",
                             code="request_too_large") from None
