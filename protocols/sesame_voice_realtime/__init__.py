"""OpenAI's Realtime API at ``GET /v1/realtime`` (WebSocket): speech in, a written and spoken reply out.

The server's speech to text hears the user, the configured responder (``sesame_voice.api.responder``,
e.g. any OpenAI-compatible LLM endpoint) writes the reply and the session's voice speaks it as it
is written. Enough of the GA API (with the beta names the SDK still sends) for the ``openai``
SDK's ``client.realtime.connect()``; see docs/realtime.md for what is and is not supported.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from aiohttp import web

from sesame_voice import InvalidRequest, hookimpl
from sesame_voice.http.routes import error_response
from sesame_voice.http.ws_keys import refuse_key_without

from .connection import RealtimeConnection

PLUGIN = "realtime"
REALTIME_PROTOCOL = "realtime"
"""The subprotocol ``/v1/realtime`` selects (OpenAI's name); browsers offer the key beside it."""
ENV_NAMES = {"max_connections": "REALTIME_MAX_CONNECTIONS", "max_input_seconds": "REALTIME_MAX_INPUT_SECONDS"}


@dataclass
class RealtimeOptions:
    """Limits of the Realtime frontend (``plugins: realtime:`` or the REALTIME_* variables)."""

    max_connections: int = 8
    """Realtime sockets open at once; more are answered 429."""
    max_input_seconds: float = 120.0
    """Audio the input buffer holds before a commit (120 s of 24 kHz PCM16 is 5.8 MB)."""
    max_event_bytes: int = 16 * 1024 * 1024
    """Largest client event; a bigger one closes the socket (1009), as at OpenAI (15 MiB of audio)."""
    max_items: int = 200
    """Conversation items kept; the oldest are forgotten (and no longer sent to the responder)."""
    voice_context: bool = True
    """Give a conversational voice (CSM) the conversation's earlier turns, audio included."""


def _stage_metric(server):
    """``sesame_voice_agent_stage_seconds{stage}``: end of the user's turn to transcript, first token, first audio."""
    state = server.plugin_state(PLUGIN)
    if "stages" not in state:
        registry = server.metrics.registry
        if registry is None:
            state["stages"] = None
        else:
            from prometheus_client import Histogram

            state["stages"] = Histogram(
                "sesame_voice_agent_stage_seconds",
                "Realtime replies: seconds from the end of the user's turn to the transcript, the reply's "
                "first token and its first audio",
                ("stage",),
                buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0),
                registry=registry,
            )
    return state["stages"]


async def realtime(request: web.Request, server, options: RealtimeOptions) -> web.StreamResponse:
    """Upgrade to a WebSocket and run the Realtime protocol on it.

    The core checked the API key: ``Authorization: Bearer`` (the Python SDK), ``X-API-Key``, or
    OpenAI's browser subprotocols ``realtime`` + ``openai-insecure-api-key.KEY`` (ws_keys)."""
    try:
        refuse_key_without(request, REALTIME_PROTOCOL)  # first: the handshake logs offers it cannot take
    except InvalidRequest as err:
        return error_response(400, str(err), "invalid_request_error", None, err.code)
    state = server.plugin_state(PLUGIN)
    if state.get("open", 0) >= options.max_connections:
        return error_response(
            429,
            f"at most {options.max_connections} realtime connections are open at once",
            "rate_limit_exceeded",
            None,
            "too_many_connections",
        )
    # "realtime" is selected when offered, never the key token, so the key is not echoed back.
    ws = web.WebSocketResponse(max_msg_size=options.max_event_bytes, heartbeat=30.0, protocols=(REALTIME_PROTOCOL,))
    if not ws.can_prepare(request).ok:
        return error_response(
            400,
            "GET /v1/realtime is a WebSocket endpoint; connect with a WebSocket client",
            "invalid_request_error",
            None,
            "websocket_required",
        )
    await ws.prepare(request)
    model = request.query.get("model") or "gpt-realtime"
    state["open"] = state.get("open", 0) + 1
    try:
        await RealtimeConnection(server, ws, options, model[:128], _stage_metric(server)).run()
    finally:
        state["open"] -= 1
        await ws.close()
    return ws


@hookimpl
def register_routes(app: web.Application, server) -> None:
    options = server.settings.plugin_settings(PLUGIN, RealtimeOptions, ENV_NAMES)
    app.router.add_get("/v1/realtime", functools.partial(realtime, server=server, options=options))
    _stage_metric(server)


@hookimpl(specname="openapi_paths")
def describe_routes(server) -> dict:
    """The Realtime API's WebSocket route for /openapi.json."""
    return {
        "/v1/realtime": {
            "get": {
                "summary": "OpenAI Realtime API (WebSocket upgrade): speech in, a written and spoken reply out",
                "parameters": [{"name": "model", "in": "query", "required": False, "schema": {"type": "string"}}],
                "responses": {
                    "101": {"description": "Switching to the WebSocket protocol"},
                    "400": {"description": "Not a WebSocket request, or a key subprotocol offered without `realtime`"},
                    "401": {"description": "API_KEY is set and the request carries no valid key"},
                    "429": {"description": "Too many realtime connections"},
                },
            }
        }
    }
