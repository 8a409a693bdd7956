"""Sesame CSM-1B voice provider on Apple MLX (via mlx-audio); MLX itself is imported only when loading."""

from __future__ import annotations

from sesame_voice.api.hookspecs import hookimpl

from .provider import CsmProvider

__all__ = ["CsmProvider", "register_providers"]


@hookimpl
def register_providers(register):
    """Register the ``csm`` provider."""
    register(CsmProvider)
