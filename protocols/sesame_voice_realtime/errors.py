"""Realtime ``error`` events in OpenAI's shape, and ids."""

from __future__ import annotations

import secrets

from sesame_voice import InvalidRequest, SesameVoiceError


class RealtimeError(Exception):
    """A client event the server refuses; answered with an ``error`` event, the socket stays open."""

    def __init__(
        self, message: str, param: str | None = None, code: str = "invalid_value", type_: str = "invalid_request_error"
    ) -> None:
        super().__init__(message)
        self.param = param
        self.code = code
        self.type = type_


def new_id(prefix: str) -> str:
    """An id such as ``item_3f9a…`` (OpenAI's prefixes: event, item, resp, sess)."""
    return f"{prefix}_{secrets.token_hex(10)}"


def error_body(err: BaseException, client_event_id: str | None = None) -> dict:
    """The ``error`` object of an ``error`` event for any failure."""
    if isinstance(err, RealtimeError):
        kind, code, param = err.type, err.code, err.param
    elif isinstance(err, InvalidRequest):
        kind, code, param = "invalid_request_error", err.code, getattr(err, "param", None)
    elif isinstance(err, SesameVoiceError):
        kind, code, param = "server_error", err.code, None
    else:
        kind, code, param = "server_error", "internal_error", None
    return {
        "type": kind,
        "code": code,
        "message": str(err) or type(err).__name__,
        "param": param,
        "event_id": client_event_id,
    }


def error_event(err: BaseException, client_event_id: str | None = None) -> dict:
    return {"type": "error", "error": error_body(err, client_event_id)}
