"""The Whisper plugin's settings: the ``plugins: whisper:`` table of the config file, plus STT_* env vars."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sesame_voice.config import ConfigError

NAME = "whisper"
ENV_OVERRIDES = {
    "model": "STT_MODEL",
    "device": "STT_DEVICE",
    "compute_type": "STT_COMPUTE_TYPE",
    "beam_size": "STT_BEAM_SIZE",
    "cpu_threads": "STT_CPU_THREADS",
    "vad_filter": "STT_VAD_FILTER",
    "short_window": "STT_SHORT_WINDOW",
}


@dataclass(frozen=True)
class WhisperOptions:
    """Which Whisper model to load and how to decode with it."""

    model: str | None = None
    """faster-whisper model name (``small``, ``large-v3``…), hub id or local folder; None: bundled tiny.en."""
    device: str = "cpu"
    """``cpu``, ``cuda`` or ``auto``."""
    compute_type: str = "int8"
    """CTranslate2 compute type (``int8``, ``float16``, ``default``…)."""
    beam_size: int = 5
    """Beam width; 1 decodes greedily (faster, slightly less accurate)."""
    cpu_threads: int = 0
    """CPU threads for inference; 0 uses every core."""
    vad_filter: bool = False
    """Drop non-speech with Silero VAD before decoding (helps long recordings with pauses)."""
    short_window: bool = True
    """Decode utterances up to 25 s in a short encoder window (10-28 s) instead of 30 s: several times
    faster for voice commands; an unreliable result is decoded again the normal way."""
    local_files_only: bool = False
    """Never download a model from the hub."""

    @classmethod
    def from_settings(cls, settings, env: Mapping[str, str] | None = None) -> "WhisperOptions":
        """Options from ``settings.plugin_config('whisper')`` with STT_* env overrides."""
        options = settings.plugin_settings(NAME, cls, ENV_OVERRIDES, environ=env)
        if options.beam_size < 1 or options.cpu_threads < 0:
            raise ConfigError("plugins.whisper: beam_size must be at least 1 and cpu_threads at least 0")
        return options
