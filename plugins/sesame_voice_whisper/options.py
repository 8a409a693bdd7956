"""The Whisper plugin's settings: the ``plugins: whisper:`` table of the config file, plus STT_* env vars."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Mapping

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
    """Decode utterances under 27 s in a short encoder window (≥ 10 s) instead of 30 s: several times
    faster for voice commands; an unreliable result is decoded again the normal way."""
    local_files_only: bool = False
    """Never download a model from the hub."""

    @classmethod
    def from_settings(cls, settings, env: Mapping[str, str] | None = None) -> "WhisperOptions":
        """Options from ``settings.plugin_config('whisper')`` with STT_* env overrides."""
        env = os.environ if env is None else env
        raw: dict[str, Any] = dict(settings.plugin_config(NAME))
        for key, var in ENV_OVERRIDES.items():
            if env.get(var):
                raw[key] = env[var]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in fields:
                raise ConfigError(f"plugins.whisper: unknown setting {key!r} (known: {', '.join(fields)})")
            values[key] = _convert(key, fields[key].type, value)
        options = cls(**values)
        if options.beam_size < 1 or options.cpu_threads < 0:
            raise ConfigError("plugins.whisper: beam_size must be at least 1 and cpu_threads at least 0")
        return options


def _convert(key: str, kind: str, value: Any) -> Any:
    try:
        if kind.startswith("str"):
            return None if value in (None, "") else str(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return text in ("1", "true", "yes", "on")
            raise ValueError(value)
        if kind == "int":
            return int(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    env = ENV_OVERRIDES.get(key)
    raise ConfigError(f"plugins.whisper: {key}{f' ({env})' if env else ''} has an invalid value {value!r} "
                      f"(expected {kind})")
