"""A running server with the recording and gated test providers; the legacy API's default voice is ``recorder``."""

from __future__ import annotations

import pytest
from conversation_fakes import GatedProvider, legacy_plugin

SMALL_LIMITS = {"max_context_segments": 3, "max_segment_seconds": 2.0, "max_context_seconds": 3.0}


@pytest.fixture
def start_legacy(start_server):
    """``async with start_legacy(legacy={...}, plugin_settings={...}, **settings) as server``, with the test
    providers."""

    def start(legacy: dict | None = None, plugin_settings: dict | None = None, plugins: tuple = (), **overrides):
        config = {"legacy": {"voice": "recorder", **(legacy or {})}, **(plugin_settings or {})}
        return start_server(plugins=[legacy_plugin(), *plugins], plugin_settings=config, **overrides)

    return start


@pytest.fixture
async def legacy(start_legacy):
    """A running server whose legacy voice is the recorder, with small context limits."""
    GatedProvider.gate.clear()
    GatedProvider.finished.clear()
    async with start_legacy(legacy=SMALL_LIMITS) as server:
        yield server
    GatedProvider.gate.set()


@pytest.fixture
def url(legacy) -> str:
    return f"http://127.0.0.1:{legacy.http_port}"


@pytest.fixture
def recorder(legacy):
    """The recording provider instance of the running server."""
    return legacy.providers["recorder"]
