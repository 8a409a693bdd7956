"""Sesame CSM-1B voice provider on MLX (mlx-audio) or PyTorch (transformers).

``common/`` holds what both backends share (settings, checkpoint discovery and download, voice
prompts, planning, the provider), ``mlx/`` and ``torch/`` one backend each behind the interface in
``common/backend.py``. A backend (and its torch or MLX) is imported only once weights were found.
"""

from __future__ import annotations

from sesame_voice.api.hookspecs import hookimpl
from sesame_voice_csm.common.provider import CsmProvider

__all__ = ["CsmProvider", "register_providers"]


@hookimpl
def register_providers(register):
    """Register the ``csm`` provider."""
    register(CsmProvider)
