"""Wyoming protocol frontend: Home Assistant's local TTS protocol on TCP port 10200."""

from __future__ import annotations

from sesame_voice.api.hookspecs import hookimpl

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


@hookimpl
def speech_to_text_loaded(server):
    """Answer ``describe`` with the speech-to-text models that loaded (or without those that failed)."""
    frontend = server.frontend(WyomingFrontend.name)
    if frontend is not None:
        frontend.refresh_info()
