"""faster-whisper speech to text: Whisper tiny.en bundled (no download), any other model by STT_MODEL."""

from __future__ import annotations

from sesame_voice import hookimpl

from .provider import WhisperProvider

__all__ = ["WhisperProvider"]


@hookimpl
def register_stt_providers(register):
    """Register the Whisper speech-to-text provider."""
    register(WhisperProvider)
