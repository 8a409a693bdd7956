"""OpenAI-compatible HTTP frontend: /v1/audio/speech, /v1/audio/transcriptions, /v1/models, /v1/audio/voices
(list, create a clone, delete one)."""

from __future__ import annotations

import functools
import time

from aiohttp import web

from sesame_voice import hookimpl

from .errors import error_response
from .openapi import openapi_paths
from .speech import create_speech
from .transcriptions import TRANSCRIPTION_MODELS, create_transcription
from .voice_admin import create_voice, delete_voice, voice_object

MODELS = ("csm-1b", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")
CREATED = int(time.mktime((2025, 3, 13, 0, 0, 0, 0, 0, 0)))
"""Release date of CSM-1B, reported as every model's ``created``."""


def _model_object(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": "sesame-voice"}


def model_ids(server) -> list[str]:
    """Speech models, then transcription models when a speech-to-text provider is installed."""
    ids = list(MODELS)
    if server.speech_to_text.providers:
        ids += [m for m in (TRANSCRIPTION_MODELS[0], *server.speech_to_text.model_names()) if m not in ids]
    return ids


async def list_models(request: web.Request, server) -> web.Response:
    return web.json_response({"object": "list", "data": [_model_object(m) for m in model_ids(server)]})


async def get_model(request: web.Request, server) -> web.Response:
    model_id = request.match_info["model"]
    if model_id not in model_ids(server):
        return error_response(404, f"The model '{model_id}' does not exist", param="model", code="model_not_found")
    return web.json_response(_model_object(model_id))


async def list_voices(request: web.Request, server) -> web.Response:
    voices = [voice_object(server, voice) for voice in server.voices.list()]
    return web.json_response({"object": "list", "data": voices, "errors": server.voices.errors})


# The API key is checked by the core's middleware for every route on the shared application.


@hookimpl
def register_routes(app: web.Application, server) -> None:
    """Mount the OpenAI routes and describe them for zeroconf and OpenAPI."""
    routes = [
        ("POST", "/v1/audio/speech", create_speech),
        ("POST", "/v1/audio/transcriptions", create_transcription),
        ("GET", "/v1/models", list_models),
        ("GET", "/v1/models/{model}", get_model),
        ("GET", "/v1/audio/voices", list_voices),
        ("POST", "/v1/audio/voices", create_voice),
        ("DELETE", "/v1/audio/voices/{name}", delete_voice),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, functools.partial(handler, server=server))


@hookimpl
def zeroconf_properties(server) -> dict[str, str]:
    """Tell zeroconf browsers where the OpenAI API is and which models it answers to."""
    return {"path": "/v1", "api": "openai", "models": ",".join(MODELS)}


@hookimpl(specname="openapi_paths")
def describe_routes(server) -> dict:
    """The OpenAI routes as the server enforces them (voices as they are now)."""
    return openapi_paths(server)
