"""OpenAPI path items of the legacy routes and the session API."""

from __future__ import annotations

_ERROR = {"description": "Error: {\"detail\": message, \"code\": code}"}
_AUDIO = {"description": "A whole audio file", "content": {"audio/wav": {}, "audio/mpeg": {}}}
_SEGMENT = {"type": "object", "properties": {"text": {"type": "string"}, "speaker": {"type": "integer"},
                                               "audio": {"type": "string", "description": "base64 WAV"}}}


def _post(summary: str, schema: dict | None, ok: dict, content_type: str = "application/json") -> dict:
    item = {"summary": summary, "responses": {"200": ok, "400": _ERROR, "404": _ERROR, "409": _ERROR, "503": _ERROR}}
    if schema is not None:
        item["requestBody"] = {"required": True, "content": {content_type: {"schema": schema}}}
    return {"post": item}


def openapi_paths() -> dict:
    """Path items of /tts, /generate, /api/v1/generate, /csm/generate, /voices, / and /v1/sessions…"""
    tts = {"type": "object", "required": ["text"], "properties": {
        "text": {"type": "string"}, "voice": {"type": "string"}, "speaker": {"type": "integer", "minimum": 0},
        "format": {"type": "string", "enum": ["wav", "mp3", "opus", "aac", "flac", "pcm"], "default": "wav"},
        "max_audio_length_ms": {"type": "integer"}, "temperature": {"type": "number"}, "top_k": {"type": "integer"},
        "context_segments": {"type": "array", "items": _SEGMENT}}}
    sidecar = {"type": "object", "required": ["text"], "properties": {
        "text": {"type": "string"}, "speaker": {"type": "integer"}, "voice": {"type": "string"},
        "context": {"type": "array", "items": {**_SEGMENT, "description": "audio: base64 WAV or float32 LE 24 kHz"}},
        "max_audio_length_ms": {"type": "integer"}, "output": {"type": "string", "enum": ["mimi", "pcm"]}}}
    codes = {"description": "{type: mimi_codes, n_q, sample_rate, frame_rate, codes} or {type: audio_pcm, "
                            "sample_rate, pcm: base64 float32 LE}", "content": {"application/json": {}}}
    turn = {"type": "object", "properties": {"text": {"type": "string"}, "speaker": {"type": "integer"},
                                             "audio": {"type": "string", "description": "base64 WAV"}}}
    session = {"parameters": [{"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}]}
    return {
        "/": {"get": {"summary": "API information (JSON, or HTML for a browser)", "responses": {"200": {"description": "Info"}}}},
        "/voices": {"get": {"summary": "Voices and speaker ids", "responses": {"200": {"description": "Voices"}}}},
        "/tts": _post("Speak text with context segments (CSM FastAPI wrapper)", tts, _AUDIO),
        "/generate": _post("Form text, speaker -> WAV (a JSON body is the /csm/generate request)",
                           {"type": "object", "properties": {"text": {"type": "string"}, "speaker": {"type": "integer"}}},
                           _AUDIO, "application/x-www-form-urlencoded"),
        "/api/v1/generate": _post("Speak text as a persona (maya, neutral, warm, mystic)",
                                  {"type": "object", "required": ["text"], "properties": {
                                      "text": {"type": "string"}, "voice": {"type": "string"}}}, _AUDIO),
        "/csm/generate": _post("Mimi codes or 24 kHz float32 PCM of text (CSM sidecar)", sidecar, codes),
        "/v1/sessions": {"get": {"summary": "List conversation sessions", "responses": {"200": {"description": "Sessions"}}},
                         "post": {"summary": "Create a session {voice?, speaker?, id?}", "responses": {"201": {"description": "Session"}, "409": _ERROR}}},
        "/v1/sessions/{session_id}": {**session,
                                      "get": {"summary": "A session and its turns", "responses": {"200": {"description": "Session"}, "404": _ERROR}},
                                      "delete": {"summary": "Delete a session", "responses": {"204": {"description": "Deleted"}, "404": _ERROR}}},
        "/v1/sessions/{session_id}/turns": {**session, **_post("Add a turn (text and/or base64 WAV audio)", turn, {"description": "Turn"})},
        "/v1/sessions/{session_id}/speak": {**session, **_post("Speak text in the session; the turn joins its history",
                                                               {"type": "object", "required": ["text"], "properties": {
                                                                   "text": {"type": "string"}, "speaker": {"type": "integer"},
                                                                   "voice": {"type": "string"}, "format": {"type": "string"}}}, _AUDIO)},
        "/v1/sessions/{session_id}/ws": {**session, "get": {"summary": "WebSocket conversation (docs/sessions.md)",
                                                            "responses": {"101": {"description": "Switching protocols"}, "404": _ERROR}}},
    }
