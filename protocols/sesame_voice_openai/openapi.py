"""OpenAPI path items for the OpenAI-compatible routes."""

from __future__ import annotations

VOICE_NAMES = ["alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin", "cedar"]

_ERROR = {
    "description": "Error in OpenAI's shape",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {
                            "message": {"type": "string"},
                            "type": {"type": "string"},
                            "param": {"type": ["string", "null"]},
                            "code": {"type": ["string", "null"]},
                        },
                    }
                },
            }
        }
    },
}

_SPEECH_BODY = {
    "type": "object",
    "required": ["input"],
    "properties": {
        "model": {"type": "string", "description": "Any value; csm-1b, tts-1, tts-1-hd and gpt-4o-mini-tts are listed"},
        "input": {"type": "string", "description": "Text to speak (at most MAX_INPUT_LENGTH characters)"},
        "voice": {
            "description": "A voice name from /v1/audio/voices, an OpenAI voice name (alias), or {id}",
            "anyOf": [
                {"type": "string", "examples": ["conversational", *VOICE_NAMES]},
                {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
            ],
        },
        "response_format": {"type": "string", "enum": ["mp3", "opus", "aac", "flac", "wav", "pcm"], "default": "mp3"},
        "speed": {"type": "number", "minimum": 0.25, "maximum": 4.0, "default": 1.0},
        "instructions": {"type": "string", "description": "Accepted; passed to providers, which may ignore it"},
        "stream_format": {"type": "string", "enum": ["audio", "sse"], "default": "audio"},
        "session": {"type": "string", "description": "Extension: speak within this conversation session "
                                                     "(docs/sessions.md); the speech joins its history"},
        "speaker": {"type": "integer", "minimum": 0, "description": "Extension: speaker id within the session"},
    },
}


def openapi_paths() -> dict:
    """Path items of /v1/audio/speech, /v1/models and /v1/audio/voices."""
    errors = {"400": _ERROR, "401": _ERROR, "415": _ERROR, "429": _ERROR, "500": _ERROR, "503": _ERROR}
    return {
        "/v1/audio/speech": {
            "post": {
                "summary": "Generate audio from text (OpenAI createSpeech)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _SPEECH_BODY}}},
                "responses": {
                    "200": {
                        "description": "Audio, streamed with chunked transfer encoding (or SSE events)",
                        "headers": {"X-Sesame-Provider": {"schema": {"type": "string"}}},
                        "content": {
                            "audio/mpeg": {},
                            "audio/ogg": {},
                            "audio/aac": {},
                            "audio/flac": {},
                            "audio/wav": {},
                            "audio/pcm": {},
                            "text/event-stream": {},
                        },
                    },
                    **errors,
                },
            }
        },
        "/v1/models": {"get": {"summary": "List models", "responses": {"200": {"description": "Model list"}}}},
        "/v1/models/{model}": {
            "get": {
                "summary": "Retrieve a model",
                "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "Model"}, "404": _ERROR},
            }
        },
        "/v1/audio/voices": {"get": {"summary": "List voices", "responses": {"200": {"description": "Voice list"}}}},
    }
