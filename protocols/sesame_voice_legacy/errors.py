"""Errors in the old FastAPI servers' shape: ``{"detail": message, "code": code}`` with a 4xx/5xx status."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sesame_voice import InvalidRequest, SesameVoiceError
from sesame_voice.http.routes import error_status, read_json


def error_response(status: int, message: str, code: str | None = None) -> web.Response:
    """A JSON error as FastAPI answers (``detail``), plus a machine-readable ``code``."""
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return web.json_response({"detail": message, "code": code}, status=status, headers=headers)


def from_exception(err: SesameVoiceError) -> web.Response:
    """The error response for a core error, with the project's one status mapping (404 unknown session, 409 busy)."""
    return error_response(error_status(err), str(err) or "internal error", err.code)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body, or InvalidRequest saying what is wrong (the core's checks, and an object)."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_json")
    return body
