"""OpenAPI path items of the session API."""

from __future__ import annotations

_ERROR = {"description": 'Error: {"detail": message, "code": code}'}
_ERRORS = {status: _ERROR for status in ("400", "401", "404", "409", "413", "415", "503")}
_AUDIO = {"description": "A whole audio file", "content": {"audio/wav": {}, "audio/mpeg": {}}}
_JSON = {"description": "JSON", "content": {"application/json": {}}}
_SESSION_ID = [{"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}]


def _object(required: tuple[str, ...] = (), **properties: str | dict) -> dict:
    """A JSON object schema; a property given as a string is that type."""
    props = {name: {"type": kind} if isinstance(kind, str) else kind for name, kind in properties.items()}
    return {"type": "object", "required": list(required), "properties": props}


def _operation(summary: str, ok: dict, schema: dict | None = None, status: str = "200") -> dict:
    operation = {"summary": summary, "responses": {status: ok, **_ERRORS}}
    if schema is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return operation


_TURN = _object(text="string", speaker="integer", audio={"type": "string", "description": "base64 WAV"})
_SPEAK = _object(
    ("text",), text="string", speaker="integer", voice="string", format="string", max_audio_length_ms="integer"
)


def openapi_paths() -> dict:
    """Path items of /v1/sessions, /v1/sessions/{id}, …/turns, …/speak and …/ws."""
    return {
        "/v1/sessions": {
            "get": _operation("List conversation sessions", _JSON),
            "post": _operation(
                "Create a session", _JSON, _object(voice="string", speaker="integer", id="string"), status="201"
            ),
        },
        "/v1/sessions/{session_id}": {
            "parameters": _SESSION_ID,
            "get": _operation("A session and its turns", _JSON),
            "delete": _operation("Delete a session", {"description": "Deleted"}, status="204"),
        },
        "/v1/sessions/{session_id}/turns": {
            "parameters": _SESSION_ID,
            "post": _operation("Add a turn (text and/or base64 WAV audio)", _JSON, _TURN, status="201"),
        },
        "/v1/sessions/{session_id}/speak": {
            "parameters": _SESSION_ID,
            "post": _operation("Speak text in the session; the turn joins its history", _AUDIO, _SPEAK),
        },
        "/v1/sessions/{session_id}/ws": {
            "parameters": _SESSION_ID,
            "get": _operation(
                "WebSocket conversation (docs/sessions.md)", {"description": "Switching protocols"}, status="101"
            ),
        },
    }
