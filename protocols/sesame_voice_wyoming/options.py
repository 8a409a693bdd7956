"""The Wyoming frontend's settings: ``plugins: {wyoming: {...}}`` in the config file, or env vars."""

from __future__ import annotations

from dataclasses import dataclass

from sesame_voice.config import ConfigError

DEFAULT_SAMPLES_PER_CHUNK = 1024
ENV_NAMES = {"uri": "WYOMING_URI", "enabled": "WYOMING_ENABLED", "samples_per_chunk": "WYOMING_SAMPLES_PER_CHUNK"}
"""Environment variable of each setting that has one."""


@dataclass(frozen=True)
class WyomingOptions:
    """Where the Wyoming listener binds and how it chunks audio."""

    uri: str = "tcp://0.0.0.0:10200"
    """``tcp://HOST:PORT`` to listen on; port 0 picks a free one."""
    enabled: bool = True
    samples_per_chunk: int = DEFAULT_SAMPLES_PER_CHUNK
    """Samples per ``audio-chunk`` event, as wyoming-piper sends them."""
    first_clause: bool = True
    """Speak an answer's first clause on its own, for a faster first audio chunk."""
    stream_idle_timeout: float = 60.0
    """Seconds a streamed answer waits for more text before it ends there (0: forever)."""
    stream_max_chars: int = 16384
    """Characters a streamed text (all its ``synthesize-chunk``s) may have in all."""
    stream_deadline: float = 300.0
    """Seconds from ``synthesize-start`` to ``synthesize-stop``, however the chunks are paced."""
    audio_timeout: float = 30.0
    """Speech-to-text: seconds without an audio event before an unfinished utterance is dropped."""
    max_audio_seconds: float = 300.0
    """Speech-to-text: the longest utterance accepted."""
    max_stt_streams: int = 8
    """Speech-to-text: utterances received or transcribed at once, over all connections."""
    max_audio_bytes: int = 32 * 1024 * 1024
    """Speech-to-text: audio held for one utterance (float32 mono at the client's rate)."""


def wyoming_options(settings) -> WyomingOptions:
    """The frontend's options from the settings; ConfigError names a bad one."""
    options = settings.plugin_settings("wyoming", WyomingOptions, ENV_NAMES)
    if options.samples_per_chunk < 64:
        raise ConfigError(f"WYOMING_SAMPLES_PER_CHUNK must be at least 64, got {options.samples_per_chunk}")
    if options.max_stt_streams < 1 or options.max_audio_bytes < 1:
        raise ConfigError("plugins.wyoming: max_stt_streams and max_audio_bytes must be positive")
    if options.stream_max_chars < 1 or options.stream_deadline <= 0:
        raise ConfigError("plugins.wyoming: stream_max_chars and stream_deadline must be positive")
    return options
