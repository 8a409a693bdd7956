"""The legacy frontend's own settings: ``plugins: legacy:`` in the config file, plus the seeds' env names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sesame_voice.config import ConfigError

OUTPUTS = ("mimi", "pcm")
ENV_OVERRIDES = {
    "voice": "LEGACY_VOICE",
    "preferred_output": "CSM_PREFERRED_OUTPUT",
    "speaker_default": "CSM_SPEAKER_DEFAULT",
}
"""Environment names read by this plugin; the CSM_* names are those of the Mimi-code sidecar's clients."""


@dataclass(frozen=True)
class LegacyOptions:
    """Settings of the compatibility API."""

    voice: str = "maya"
    """Voice of requests that name none (the old deployments all spoke as Maya)."""
    preferred_output: str = "mimi"
    """Sidecar answer when the request does not choose: ``mimi`` codes (CSM voices) or ``pcm``."""
    speaker_default: int = 0
    """Sidecar speaker when the request names none."""
    max_speakers: int = 5
    """``/tts`` and ``/generate`` accept speakers 0 … max_speakers - 1 (the wrapper's 0-4)."""
    max_context_segments: int = 32
    max_segment_seconds: float = 60.0
    max_context_seconds: float = 300.0

    @classmethod
    def from_settings(cls, settings, env: Mapping[str, str] | None = None) -> "LegacyOptions":
        """Options from ``settings.plugin_config('legacy')``, overridden by the environment names above."""
        options = settings.plugin_settings("legacy", cls, ENV_OVERRIDES, environ=env)
        if options.preferred_output not in OUTPUTS:
            raise ConfigError(
                f"CSM_PREFERRED_OUTPUT (plugins.legacy.preferred_output) must be mimi or pcm, "
                f"got {options.preferred_output!r}"
            )
        if options.max_speakers < 1 or options.max_context_segments < 0:
            raise ConfigError("plugins.legacy: max_speakers must be at least 1, max_context_segments at least 0")
        return options
