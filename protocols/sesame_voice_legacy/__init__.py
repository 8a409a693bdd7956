"""Compatibility frontend for the older CSM deployments' clients, plus conversation sessions over REST/WebSocket.

Routes (on the shared HTTP server): the FastAPI wrapper's ``/tts``, ``/generate``, ``/voices``, ``/``;
the persona server's ``/api/v1/generate``; the Mimi-code sidecar's ``/csm/generate`` (and JSON
``/generate``); sessions at ``/v1/sessions`` and the WebSocket at ``/v1/sessions/{id}/ws`` and ``/ws``.
``GET /health`` gains ``status: healthy`` and ``model_loaded`` through the ``health_fields`` hook.
"""

from __future__ import annotations

import logging

from aiohttp import web

from sesame_voice import SesameVoiceError, hookimpl
from sesame_voice.http.routes import authorised, public

from . import conversation, sidecar, wrapper
from .errors import error_response, from_exception, read_json_object
from .openapi import openapi_paths
from .options import LegacyOptions

_LOGGER = logging.getLogger(__name__)


def _guarded(handler, server, options, json_body: bool = False):
    """Run ``handler``; core errors become the legacy error shape; unexpected ones a 500 of the same shape."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if not authorised(request, server.settings.api_key):
            return error_response(
                401, "Incorrect or missing API key (Authorization: Bearer KEY or X-API-Key)", "invalid_api_key"
            )
        try:
            if json_body:
                return await handler(request, server, options, await read_json_object(request))
            return await handler(request, server, options)
        except SesameVoiceError as err:
            return from_exception(err)
        except web.HTTPException:
            raise
        except Exception as err:
            _LOGGER.exception("Legacy route %s failed", request.path)
            return error_response(500, f"internal error: {type(err).__name__}", "internal_error")

    return guarded


async def _generate(request: web.Request, server, options) -> web.StreamResponse:
    """``POST /generate``: the wrapper's form request, or (JSON body) the sidecar's."""
    if request.content_type == "application/json":
        return await sidecar.sidecar_generate(request, server, options, await read_json_object(request))
    return await wrapper.generate_form(request, server, options)


async def _voices(request: web.Request, server, options) -> web.Response:
    return web.json_response(wrapper.voices_listing(server, options))


async def _root(request: web.Request, server, options) -> web.Response:
    info = wrapper.api_info(server, options)
    if wrapper.wants_html(request):
        return web.Response(text=wrapper.api_page(info), content_type="text/html")
    return web.json_response(info)


@hookimpl
def register_routes(app: web.Application, server) -> None:
    """Mount the legacy routes (the conversation WebSocket included)."""
    options = LegacyOptions.from_settings(server.settings)
    routes = [
        ("GET", "/", _root, False),
        ("GET", "/voices", _voices, False),
        ("POST", "/tts", wrapper.tts, True),
        ("POST", "/generate", _generate, False),
        ("POST", "/api/v1/generate", wrapper.persona_generate, True),
        ("POST", "/csm/generate", sidecar.sidecar_generate, True),
        ("GET", "/ws", conversation.websocket, False),
        ("GET", "/ws/{session_id}", conversation.websocket, False),
    ]
    for method, path, handler, json_body in routes:
        # public: the core's key check is replaced by this plugin's, which also takes X-API-Key and
        # answers in the old clients' error shape.
        app.router.add_route(method, path, public(_guarded(handler, server, options, json_body)))


@hookimpl(specname="health_fields")
def legacy_health_fields(server, report) -> dict:
    """``status: healthy`` and ``model_loaded`` for the old clients."""
    return wrapper.health_fields(server, LegacyOptions.from_settings(server.settings))(report)


@hookimpl(specname="openapi_paths")
def describe_routes(server) -> dict:
    return openapi_paths()


@hookimpl
def zeroconf_properties(server) -> dict[str, str]:
    return {"legacy": "tts,api/v1,csm,sessions"}
