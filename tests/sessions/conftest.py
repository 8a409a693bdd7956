"""A running server with the recording and gated test providers; sessions and the legacy API speak as ``recorder``."""

from __future__ import annotations

import pytest
from conversation_fakes import GatedProvider, legacy_plugin


@pytest.fixture
def start_sessions(start_server):
    """``async with start_sessions(sessions={...}, plugin_settings={...}, **settings) as server`` with the test
    providers; ``sessions`` is the ``plugins: sessions:`` table (its voice is ``recorder`` unless given)."""

    def start(sessions: dict | None = None, plugin_settings: dict | None = None, plugins: tuple = (), **overrides):
        config = {
            "legacy": {"voice": "recorder"},
            "sessions": {"voice": "recorder", **(sessions or {})},
            **(plugin_settings or {}),
        }
        return start_server(plugins=[legacy_plugin(), *plugins], plugin_settings=config, **overrides)

    return start


@pytest.fixture
async def server(start_sessions):
    """A running server whose sessions speak as the recorder by default."""
    GatedProvider.gate.clear()
    GatedProvider.finished.clear()
    async with start_sessions() as running:
        yield running
    GatedProvider.gate.set()


@pytest.fixture
def url(server) -> str:
    return f"http://127.0.0.1:{server.http_port}"


@pytest.fixture
def sessions(server):
    """The running server's ``sessions`` service."""
    return server.service("sessions")


@pytest.fixture
def recorder(server):
    """The recording provider instance of the running server."""
    return server.providers["recorder"]
