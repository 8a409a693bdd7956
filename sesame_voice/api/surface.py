"""The ``Server`` surface a plugin may use: what hooks and frontends receive as ``server``.

Anything not listed here is internal and may change without notice (tests/test_plugin_surface.py
checks that the built-in and example plugins use nothing else).
"""

from __future__ import annotations

from typing import Any, Protocol


class ServerSurface(Protocol):
    """What plugins may read and call on the running server."""

    settings: Any
    """The server's ``Settings``; ``settings.plugin_settings(name, Dataclass, env_names)`` for a plugin's own."""
    voices: Any
    """The voice library: ``get(name)``, ``list()``, ``errors``, ``folder``, ``await rescan()``."""
    engine: Any
    """The synthesis engine: ``session(request)``, ``validate(request)``, ``serving_provider(voice)``."""
    speech_to_text: Any
    """The transcription service: ``await transcribe(samples, rate)``, ``start(...)``, ``available``."""
    providers: dict[str, Any]
    """Voice providers by name (read ``status()``; never call ``synthesize`` directly)."""
    responders: dict[str, Any]
    """Reply writers by name (``sesame_voice.api.responder.pick_responder`` finds the configured one)."""
    metrics: Any
    """Prometheus metrics: a plugin registers its own in ``metrics.registry`` (served at /metrics)."""
    http_port: int | None
    """The port the HTTP API listens on, once started."""

    def plugin_state(self, plugin: str) -> dict[str, Any]:
        """A dict private to ``plugin`` that lives as long as this server."""

    def frontend(self, name: str) -> Any:
        """The running frontend called ``name``, if any."""

    def service(self, name: str) -> Any:
        """A service another plugin registered with ``register_services`` (None if absent)."""

    async def announce(self) -> None:
        """Re-publish the zeroconf records after a frontend's announcements changed."""


SURFACE = (
    "settings",
    "voices",
    "engine",
    "speech_to_text",
    "providers",
    "responders",
    "metrics",
    "http_port",
    "plugin_state",
    "frontend",
    "service",
    "announce",
)
"""The attribute names of ``ServerSurface``, for the test that plugins use nothing else."""
