"""OpenAPI path items for the OpenAI-compatible routes."""

from __future__ import annotations

VOICE_NAMES = [
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "onyx",
    "nova",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
]

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

SPOKEN_TEXT_PATTERN = r"[^\W_]"
"""``input`` must hold a letter or digit: text of only punctuation or symbols is refused with 400
``no_speakable_text``."""


def _session_properties(server) -> dict:
    """The ``session`` and ``speaker`` extension, with today's session ids; none without the sessions plugin."""
    sessions = server.service("sessions")
    if sessions is None:
        return {}
    return {
        "session": {
            "type": "string",
            "enum": sorted(sessions.store.ids()),
            "description": "Extension: speak within this live conversation session "
            "(docs/sessions.md); the speech joins its history",
        },
        "speaker": {"type": "integer", "minimum": 0, "description": "Extension: speaker id within the session"},
    }


def speech_body_schema(server) -> dict:
    """The createSpeech body exactly as the server enforces it, with today's voice names."""
    voices = server.voices.list()
    names = sorted({v.name for v in voices} | {alias for v in voices for alias in v.aliases})
    return {
        "type": "object",
        "required": ["input"],
        "properties": {
            "model": {
                "type": "string",
                "description": "Any value; csm-1b, tts-1, tts-1-hd and gpt-4o-mini-tts are listed",
            },
            "input": {
                "type": "string",
                "minLength": 1,
                "maxLength": server.settings.max_input_length,
                "pattern": SPOKEN_TEXT_PATTERN,
                "description": "Text to speak: at most MAX_INPUT_LENGTH characters, not only white space",
            },
            "voice": {
                "description": "A voice name from /v1/audio/voices or one of its aliases (OpenAI voice names "
                "map to presets), as a string or {id}; omitted means the default voice",
                "anyOf": [
                    {"type": "string", "enum": names, "examples": ["conversational", *VOICE_NAMES]},
                    {"type": "object", "properties": {"id": {"type": "string", "enum": names}}, "required": ["id"]},
                ],
            },
            "response_format": {
                "type": "string",
                "enum": ["mp3", "opus", "aac", "flac", "wav", "pcm"],
                "default": server.settings.default_format,
            },
            "speed": {"type": "number", "minimum": 0.25, "maximum": 4.0, "default": 1.0},
            "instructions": {"type": "string", "description": "Accepted; passed to providers, which may ignore it"},
            "stream_format": {"type": "string", "enum": ["audio", "sse"], "default": "audio"},
            "timestamps": {
                "type": "string",
                "enum": ["word"],
                "description": "Extension (docs/captions.md): word timings. With stream_format sse, "
                "speech.audio.word events among the deltas; otherwise a JSON body with the base64 audio "
                "and its words",
            },
            "timestamps_format": {
                "type": "string",
                "enum": ["srt", "vtt"],
                "description": "Extension: subtitles of the word timings (implies timestamps word)",
            },
            **_session_properties(server),
        },
        # Per-voice extensions (``sampling``, docs/plugins.md) are accepted but depend on the voice's
        # providers, so the schema leaves them out rather than describe bodies that may be refused.
        "additionalProperties": False,
    }


_WORD = {
    "type": "object",
    "properties": {"word": {"type": "string"}, "start": {"type": "number"}, "end": {"type": "number"}},
}
_CAPTIONED = {
    "type": "object",
    "description": "Captioned speech (timestamps without stream_format sse)",
    "properties": {
        "audio": {"type": "string", "format": "byte", "description": "The audio file in audio_format, base64"},
        "audio_format": {"type": "string"},
        "duration": {"type": "number", "description": "Seconds of audio"},
        "words": {"type": "array", "items": _WORD},
        "timestamps": {
            "type": "array",
            "description": "The words as Kokoro-FastAPI's captioned speech lists them",
            "items": {
                "type": "object",
                "properties": {
                    "word": {"type": "string"},
                    "start_time": {"type": "number"},
                    "end_time": {"type": "number"},
                },
            },
        },
        "timing": {"type": "string", "enum": ["provider", "whisper", "estimate"]},
        "subtitles": {"type": "string"},
        "subtitles_format": {"type": "string", "enum": ["srt", "vtt"]},
    },
}


_TRANSCRIPTION_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "Audio in any format FFmpeg decodes (≤ 25 MB)"},
        "model": {
            "type": "string",
            "description": "whisper-1, gpt-4o-transcribe or gpt-4o-mini-transcribe (the default provider) "
            "or a speech-to-text model name; any other is 400 model_not_found",
        },
        "language": {"type": "string", "description": "ISO 639-1 code of the speech; detected when absent"},
        "prompt": {"type": "string", "description": "Text preceding the audio (names, spelling)"},
        "response_format": {
            "type": "string",
            "enum": ["json", "text", "srt", "vtt", "verbose_json"],
            "default": "json",
        },
        "temperature": {"type": "number", "minimum": 0, "maximum": 1, "default": 0},
        "timestamp_granularities[]": {"type": "array", "items": {"type": "string", "enum": ["word", "segment"]}},
        "stream": {"type": "boolean", "default": False, "description": "Server-sent transcript.text.delta/done events"},
    },
}


_VOICE_FORM = {
    "type": "object",
    "required": ["name", "file", "transcript"],
    "properties": {
        "name": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
            "description": "The new voice's name (letters, digits, '_', '-'; at most 64)",
        },
        "file": {
            "type": "string",
            "format": "binary",
            "description": "The speaker clip in any format FFmpeg decodes (at most 25 MB); its length must "
            "suit a cloning provider (CSM: 0.5-30 s), else 400 code clip_out_of_range naming the limits",
        },
        "transcript": {"type": "string", "minLength": 1, "maxLength": 4000, "description": "What the clip says"},
        "description": {"type": "string", "maxLength": 500},
    },
}


def openapi_paths(server) -> dict:
    """Path items of /v1/audio/speech (with today's voices), /v1/audio/transcriptions, /v1/models and
    /v1/audio/voices; built for each request of the document."""
    errors = {"400": _ERROR, "401": _ERROR, "415": _ERROR, "429": _ERROR, "500": _ERROR, "503": _ERROR}
    return {
        "/v1/audio/transcriptions": {
            "post": {
                "summary": "Transcribe audio into text (OpenAI createTranscription)",
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _TRANSCRIPTION_FORM}}},
                "responses": {
                    "200": {
                        "description": "The transcript in the requested format, or SSE events with stream=true",
                        "content": {
                            "application/json": {},
                            "text/plain": {},
                            "application/x-subrip": {},
                            "text/vtt": {},
                            "text/event-stream": {},
                        },
                    },
                    "413": _ERROR,
                    **errors,
                },
            }
        },
        "/v1/audio/speech": {
            "post": {
                "summary": "Generate audio from text (OpenAI createSpeech)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": speech_body_schema(server)}},
                },
                "responses": {
                    "200": {
                        "description": "Audio, streamed with chunked transfer encoding (or SSE events); "
                        "with timestamps and no SSE, JSON {audio, audio_format, duration, words, timestamps, "
                        "timing, subtitles?, subtitles_format?}",
                        "headers": {"X-Sesame-Provider": {"schema": {"type": "string"}}},
                        "content": {
                            "audio/mpeg": {},
                            "audio/ogg": {},
                            "audio/aac": {},
                            "audio/flac": {},
                            "audio/wav": {},
                            "audio/pcm": {},
                            "text/event-stream": {},
                            "application/json": {"schema": _CAPTIONED},
                        },
                    },
                    **errors,
                    "404": {**_ERROR, "description": "Extension: unknown conversation session"},
                    "409": {**_ERROR, "description": "Extension: the session is already speaking or full"},
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
        "/v1/audio/voices": {
            "get": {
                "summary": "List voices (with rejected voice files and why)",
                "responses": {"200": {"description": "Voice list"}},
            },
            "post": {
                "summary": "Create a cloned voice from a speaker clip and its transcript (stored in the voices folder)",
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _VOICE_FORM}}},
                "responses": {
                    "201": {"description": "The new voice, as GET /v1/audio/voices lists it"},
                    "409": _ERROR,
                    "413": _ERROR,
                    **errors,
                },
            },
        },
        "/v1/audio/voices/{name}": {
            "delete": {
                "summary": "Delete a voice cloned into the voices folder (presets and providers' voices: 409)",
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"204": {"description": "Deleted"}, "401": _ERROR, "404": _ERROR, "409": _ERROR},
            }
        },
    }
