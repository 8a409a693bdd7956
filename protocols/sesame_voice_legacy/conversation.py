"""The persona server's conversation WebSocket (``/ws``, ``/ws/{id}``, ``/ws?session=ID``), served by the
``sessions`` plugin's service (docs/sessions.md); without that plugin it answers 400 ``sessions_not_enabled``."""

from __future__ import annotations

from aiohttp import web

from sesame_voice import InvalidRequest

SESSIONS_OFF = (
    "conversation sessions are off: the sessions plugin is not enabled "
    "(remove 'sessions' from DISABLED_PLUGINS / --disable)"
)


def sessions_service(server):
    """The ``sessions`` service, or InvalidRequest ``sessions_not_enabled``."""
    sessions = server.service("sessions")
    if sessions is None:
        raise InvalidRequest(SESSIONS_OFF, code="sessions_not_enabled")
    return sessions


async def websocket(request: web.Request, server, options) -> web.StreamResponse:
    """Join ``/ws/{id}`` or ``/ws?session=ID``, or start a session in the legacy voice at ``/ws``.

    An unknown session is refused with 404 and a full server with 409, before the upgrade."""
    session_id = request.match_info.get("session_id") or request.query.get("session")
    return await sessions_service(server).websocket(request, session_id, voice=options.voice, frontend="legacy")
