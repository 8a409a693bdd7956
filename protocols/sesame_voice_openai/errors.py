"""OpenAI-shaped error responses: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from aiohttp import web

from sesame_voice import (
    InvalidRequest,
    Overloaded,
    ProviderFailed,
    ProviderUnavailable,
    SesameVoiceError,
    UnknownVoice,
)


def error_response(
    status: int, message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> web.Response:
    """A JSON error response in OpenAI's shape."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return web.json_response(body, status=status, headers=headers)


def from_exception(err: SesameVoiceError) -> web.Response:
    """Map a core error to its HTTP status and OpenAI error type."""
    if isinstance(err, UnknownVoice):
        return error_response(400, str(err), param="voice", code=err.code)
    if isinstance(err, InvalidRequest):
        return error_response(400, str(err), param=err.param, code=err.code)
    if isinstance(err, Overloaded):
        return error_response(429, str(err), type_="rate_limit_error", code=err.code)
    if isinstance(err, ProviderUnavailable):
        return error_response(503, str(err), type_="server_error", code=err.code)
    if isinstance(err, ProviderFailed):
        return error_response(500, str(err), type_="server_error", code=err.code)
    return error_response(500, str(err) or "internal error", type_="server_error", code=err.code)
