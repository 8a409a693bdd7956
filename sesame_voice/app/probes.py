"""Probes for orchestrators and balancers: ``GET /health/live`` and ``GET /health/ready``.

``/health/live`` answers 200 while the process runs (its event loop answers). ``/health/ready``
answers 200 once the server can speak its default voice (the voice exists and the provider that
would serve it, or one of its fallbacks, is loaded) and 503 before that and from the moment a
shutdown begins, so a balancer sends new work elsewhere. Both are public, like ``/health``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sesame_voice.api.errors import SesameVoiceError
from sesame_voice.http.routes import public


def readiness(server) -> tuple[bool, dict[str, Any]]:
    """Whether ``server`` can speak its default voice now, with the report ``/health/ready`` serves."""
    if server.shutting_down:
        return False, {"status": "shutting_down", "reason": "the server is shutting down"}
    try:
        voice = server.voices.get(None)
    except SesameVoiceError as err:
        return False, {"status": "not_ready", "reason": str(err)}
    waiting: list[str] = []
    for provider_name, _ in voice.candidates():
        worker = server.engine.workers.get(provider_name)
        if worker is None:
            continue
        state = worker.provider.state
        # With PRELOAD=false nothing loads before its first request; an idle provider is taken at its word.
        if state == "ready" or (state == "idle" and not server.settings.preload):
            return True, {"status": "ready", "voice": voice.name, "provider": provider_name}
        waiting.append(f"{provider_name} {state}")
    reason = f"default voice {voice.name!r} has no loaded provider ({', '.join(waiting) or 'none installed'})"
    return False, {"status": "not_ready", "reason": reason, "voice": voice.name}


def add_probe_routes(app: web.Application, server) -> None:
    """Register both probes on ``app``, without the API key."""

    async def live(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def ready(request: web.Request) -> web.Response:
        ok, report = readiness(server)
        return web.json_response(report, status=200 if ok else 503, headers=None if ok else {"Retry-After": "1"})

    app.router.add_get("/health/live", public(live))
    app.router.add_get("/health/ready", public(ready))


_REPORT = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"type": "string"},
                "reason": {"type": "string"},
                "voice": {"type": "string"},
                "provider": {"type": "string"},
            },
        }
    }
}

OPENAPI_PATHS: dict[str, Any] = {
    "/health/live": {
        "get": {
            "summary": "Liveness: 200 while the process runs (no API key needed)",
            "responses": {
                "200": {
                    "description": "Alive",
                    "content": {
                        "application/json": {"schema": {"type": "object", "properties": {"status": {"const": "alive"}}}}
                    },
                }
            },
        }
    },
    "/health/ready": {
        "get": {
            "summary": "Readiness: 200 once the default voice can be spoken, 503 before that and while "
            "shutting down (no API key needed)",
            "responses": {
                "200": {"description": "Ready: the voice and the provider that serves it", "content": _REPORT},
                "503": {"description": "Not ready (status not_ready or shutting_down) and why", "content": _REPORT},
            },
        }
    },
}
"""The probes' OpenAPI path items."""
