"""The sessions plugin's settings: ``plugins: sessions:`` in the config file, ``--set sessions.KEY=VALUE``,
and the environment names these settings have always had."""

from __future__ import annotations

from dataclasses import dataclass

from sesame_voice.config import ConfigError

ENV_NAMES = {
    "idle_seconds": "SESSION_IDLE_SECONDS",
    "max_sessions": "MAX_SESSIONS",
    "max_turns": "SESSION_MAX_TURNS",
    "max_audio_seconds": "SESSION_MAX_AUDIO_SECONDS",
    "overflow": "SESSION_OVERFLOW",
    "persist": "SESSIONS_PERSIST",
    "store": "SESSION_STORE",
    "store_timeout": "SESSION_STORE_TIMEOUT",
    "lock_seconds": "SESSION_LOCK_SECONDS",
    "ws_keep": "SESSION_WS_KEEP",
}
"""Field → environment variable (the names of the settings when they lived in the core)."""
OVERFLOW_POLICIES = ("drop_oldest", "refuse")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True)
class SessionSettings:
    """Bounds and behaviour of conversation sessions (docs/sessions.md)."""

    idle_seconds: float = 3600.0
    """A session unused this long is deleted (never while it speaks)."""
    max_sessions: int = 32
    max_turns: int = 200
    """Turns kept per session."""
    max_audio_seconds: float = 240.0
    """Seconds of audio kept per session; a single longer turn is refused."""
    overflow: str = "drop_oldest"
    """When a session is full: ``drop_oldest`` turns make room, or ``refuse`` the new turn."""
    persist: bool = False
    """Keep sessions in CACHE_DIR/sessions across restarts (the memory store)."""
    store: str = "memory"
    """Where sessions live: ``memory`` (this process) or a Redis/Valkey URL (``redis://HOST:PORT/DB``,
    ``rediss://`` for TLS, ``redis://:PASSWORD@HOST``) shared by every replica."""
    store_timeout: float = 2.0
    """Seconds one call to the Redis store may take before the request gets 503 ``session_store_unavailable``."""
    lock_seconds: float = 15.0
    """Expiry of a session's speaking lock in Redis (renewed while it speaks): how long a replica that
    died mid-speech keeps the session busy."""
    ws_keep: bool = False
    """Keep sessions that a WebSocket created implicitly (``GET /ws`` without an id) after it closes;
    a client may also ask with ``?keep=true``."""
    voice: str | None = None
    """Voice of sessions created without one over REST; unset: the server's DEFAULT_VOICE when speaking."""
    max_upload_seconds: float = 60.0
    """Longest audio a client may upload with one turn (it is decoded before the session's bounds apply)."""

    @classmethod
    def from_settings(cls, settings) -> "SessionSettings":
        """The plugin's settings; ConfigError names a bad one by its environment name and table key."""
        options = settings.plugin_settings("sessions", cls, ENV_NAMES)
        numbers = ("idle_seconds", "max_sessions", "max_turns", "max_audio_seconds", "max_upload_seconds")
        for name in (*numbers, "store_timeout", "lock_seconds"):
            value = getattr(options, name)
            if not value > 0:
                raise ConfigError(f"{_label(name)} must be positive, got {value}")
        if options.overflow not in OVERFLOW_POLICIES:
            raise ConfigError(
                f"{_label('overflow')} must be one of {', '.join(OVERFLOW_POLICIES)}, got {options.overflow!r}"
            )
        if "://" in options.store and not options.store.startswith(REDIS_SCHEMES):
            raise ConfigError(
                f"{_label('store')} must be memory or a Redis URL (redis://HOST:PORT/DB, rediss://…), "
                f"got {options.store!r}"
            )
        return options


def _label(name: str) -> str:
    """``MAX_SESSIONS (plugins.sessions.max_sessions)``: both ways a user may have set it."""
    env = ENV_NAMES.get(name)
    return f"{env} (plugins.sessions.{name})" if env else f"plugins.sessions.{name}"
