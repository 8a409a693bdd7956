"""Conversation sessions: turns (text, speaker, audio) that condition every generation, bounded and expiring.

Offers the ``sessions`` service (a :class:`~.service.SessionService`) that other plugins find with
``server.service("sessions")`` — the OpenAI ``session`` extension and the legacy ``/ws`` routes do —
and serves the REST API at ``/v1/sessions`` and the WebSocket at ``/v1/sessions/{id}/ws``
(docs/sessions.md). Settings: ``plugins: sessions:`` or the environment names in ``options.ENV_NAMES``.
"""

from __future__ import annotations

from pathlib import Path

from sesame_voice import SesameVoiceError, hookimpl
from sesame_voice.audio import FRAME_RATE
from sesame_voice.config import ConfigError

from .memory import MemorySessionStore
from .models import Session, SessionBusy, SessionLimitReached, Turn, UnknownSession
from .options import ENV_NAMES, REDIS_SCHEMES, SessionSettings
from .service import SessionService, SpokenTurn
from .store import SessionLimits, SessionStore

PLUGIN = "sessions"
STORES = {"memory": MemorySessionStore}
"""Session store backends by the name ``plugins.sessions.store`` gives."""

__all__ = [
    "MemorySessionStore",
    "Session",
    "SessionBusy",
    "SessionLimitReached",
    "SessionLimits",
    "SessionService",
    "SessionSettings",
    "SessionStore",
    "SpokenTurn",
    "Turn",
    "UnknownSession",
    "make_store",
]


def make_store(options: SessionSettings, settings) -> SessionStore:
    """The store ``options.store`` names (a Redis URL: the Redis store), with the options' bounds."""
    limits = SessionLimits.from_options(options)
    if options.store.startswith(REDIS_SCHEMES):
        from .redis_store import RedisSessionStore

        try:
            return RedisSessionStore(limits, options.store, options.store_timeout, options.lock_seconds)
        except ImportError as err:
            raise ConfigError(
                f"SESSION_STORE is a Redis URL but the redis client is missing ({err}): "
                "pip install 'sesame-voice[redis]'"
            ) from None
    if options.store not in STORES:
        raise ConfigError(f"plugins.sessions.store must be one of {', '.join(STORES)}, got {options.store!r}")
    return STORES[options.store](limits, Path(settings.cache_dir).expanduser() / "sessions")


def context_rate(server, voice_name: str | None) -> int:
    """Rate a session keeps uploaded audio at: that of the context of the provider serving ``voice_name``
    (the server's default voice when None), or the server's 24 kHz when that provider takes none."""
    try:
        voice = server.voices.get(voice_name or server.settings.default_voice)
        provider = server.providers.get(server.engine.serving_provider(voice) or "")
    except SesameVoiceError:
        provider = None
    return getattr(provider, "context_sample_rate", None) or FRAME_RATE


def _service(server) -> SessionService | None:
    return server.plugin_state(PLUGIN).get("service")


@hookimpl
def register_services(register, server) -> None:
    """Offer the ``sessions`` service; a bad setting stops the server at start with a ConfigError."""
    options = SessionSettings.from_settings(server.settings)
    service = SessionService(
        make_store(options, server.settings),
        server.engine,
        server.speech_to_text,
        server.voices,
        options.max_upload_seconds,
        options.voice,
        audio_rate=lambda voice: context_rate(server, voice),
        keep_implicit=options.ws_keep,
        responders=server.responders,
    )
    service.stage_metric = _stage_metric(server.metrics.registry)
    server.plugin_state(PLUGIN)["service"] = service
    register(PLUGIN, service)


def _stage_metric(registry):
    """``sesame_voice_session_agent_stage_seconds{stage}``: end of the user's turn to its transcript, the
    reply's first token and first audio, for replies on the session WebSocket."""
    if registry is None:
        return None
    from prometheus_client import Histogram

    return Histogram(
        "sesame_voice_session_agent_stage_seconds",
        "Session WebSocket replies: seconds from the end of the user's turn to the transcript, the reply's "
        "first token and its first audio",
        ("stage",),
        buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0),
        registry=registry,
    )


@hookimpl
def server_lifespan(server):
    """The store's life: saved sessions read at start, idle ones expired, kept ones saved at the end."""
    service = _service(server)
    return service.store.running() if service is not None else None


@hookimpl
def register_routes(app, server) -> None:
    service = _service(server)
    if service is not None:
        from .routes import add_routes

        add_routes(app, server, service)


@hookimpl
def health_fields(server, report) -> dict | None:
    """``sessions``: how many are open."""
    service = _service(server)
    return {"sessions": len(service.store.ids())} if service is not None else None


@hookimpl
def openapi_paths(server) -> dict:
    from .openapi import openapi_paths as paths

    return paths()


@hookimpl
def env_names() -> list[str]:
    """The environment names of the settings (``sesame-voice service install`` passes them on)."""
    return list(ENV_NAMES.values())
