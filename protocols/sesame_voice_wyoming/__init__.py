"""Wyoming protocol frontend: Home Assistant's local TTS protocol on TCP port 10200."""

from __future__ import annotations

from sesame_voice.hookspecs import hookimpl

from .frontend import WyomingFrontend

__all__ = ["WyomingFrontend"]


@hookimpl
def register_frontends(register):
    """Register the Wyoming frontend."""
    register(WyomingFrontend)
