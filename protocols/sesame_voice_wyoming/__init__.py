"""Wyoming protocol frontend: Home Assistant's local TTS protocol on TCP port 10200."""

from __future__ import annotations

from sesame_voice.hookspecs import hookimpl

from .frontend import WyomingFrontend

__all__ = ["WyomingFrontend"]


@hookimpl
def register_frontends(register):
    """Register the Wyoming frontend."""
    register(WyomingFrontend)


@hookimpl
async def voices_changed(server, changes):
    """Answer ``describe`` with the new voices and re-advertise the voice count over zeroconf."""
    frontend = server.frontend(WyomingFrontend.name)
    if frontend is not None:
        frontend.refresh_info()
        await server.announce()
