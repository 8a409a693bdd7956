"""OpenAPI path items of the legacy routes."""

from __future__ import annotations

_ERROR = {"description": 'Error: {"detail": message, "code": code}'}
_ERRORS = {status: _ERROR for status in ("400", "401", "404", "409", "413", "415", "503")}
_AUDIO = {"description": "A whole audio file", "content": {"audio/wav": {}, "audio/mpeg": {}}}
_JSON = {"description": "JSON", "content": {"application/json": {}}}


def _object(required: tuple[str, ...] = (), **properties: str | dict) -> dict:
    """A JSON object schema; a property given as a string is that type."""
    props = {name: {"type": kind} if isinstance(kind, str) else kind for name, kind in properties.items()}
    return {"type": "object", "required": list(required), "properties": props}


def _operation(
    summary: str, ok: dict, schema: dict | None = None, content_type: str = "application/json", status: str = "200"
) -> dict:
    operation = {"summary": summary, "responses": {status: ok, **_ERRORS}}
    if schema is not None:
        operation["requestBody"] = {"required": True, "content": {content_type: {"schema": schema}}}
    return operation


_SEGMENT = _object(
    text="string",
    speaker="integer",
    audio={"type": "string", "description": "base64 WAV (the sidecar also takes float32 LE 24 kHz)"},
)
_TTS = _object(
    ("text",),
    text="string",
    voice="string",
    speaker={"type": "integer", "minimum": 0},
    format={"type": "string", "enum": ["wav", "mp3", "opus", "aac", "flac", "pcm"], "default": "wav"},
    max_audio_length_ms="integer",
    temperature="number",
    top_k="integer",
    context_segments={"type": "array", "items": _SEGMENT},
)
_SIDECAR = _object(
    ("text",),
    text="string",
    speaker="integer",
    voice="string",
    max_audio_length_ms="integer",
    context={"type": "array", "items": _SEGMENT},
    output={"type": "string", "enum": ["mimi", "pcm"]},
)
_CODES = {
    "description": "{type: mimi_codes, n_q, sample_rate, frame_rate, codes} or "
    "{type: audio_pcm, sample_rate, pcm: base64 float32 LE}",
    "content": {"application/json": {}},
}


def openapi_paths() -> dict:
    """Path items of /, /voices, /tts, /generate, /api/v1/generate, /csm/generate and the WebSocket /ws."""
    return {
        "/": {"get": _operation("API information (JSON, or HTML for a browser)", _JSON)},
        "/voices": {"get": _operation("Voices and speaker ids", _JSON)},
        "/tts": {"post": _operation("Speak text with context segments (CSM FastAPI wrapper)", _AUDIO, _TTS)},
        "/generate": {
            "post": _operation(
                "Form text, speaker -> WAV (a JSON body is the /csm/generate request)",
                _AUDIO,
                _object(text="string", speaker="integer"),
                "application/x-www-form-urlencoded",
            )
        },
        "/api/v1/generate": {
            "post": _operation(
                "Speak text as a persona (maya, neutral, warm, mystic)",
                _AUDIO,
                _object(("text",), text="string", voice="string"),
            )
        },
        "/csm/generate": {
            "post": _operation("Mimi codes or 24 kHz float32 PCM of text (CSM sidecar)", _CODES, _SIDECAR)
        },
        "/ws": {"get": _websocket("Start a session in the legacy voice (or join ?session=ID)", _SESSION_QUERY)},
        "/ws/{session_id}": {"get": _websocket("Join a session", _SESSION_PATH)},
    }


_SESSION_QUERY = {"name": "session", "in": "query", "required": False, "schema": {"type": "string"}}
_SESSION_PATH = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _websocket(summary: str, parameter: dict) -> dict:
    """The persona server's conversation WebSocket (the sessions plugin's protocol, docs/sessions.md)."""
    operation = _operation(f"WebSocket conversation: {summary}", {"description": "Switching protocols"}, status="101")
    return {**operation, "parameters": [parameter]}
