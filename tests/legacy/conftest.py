"""A running server with the recording and gated test providers; the legacy API's default voice is ``recorder``."""

from __future__ import annotations

import contextlib

import pytest

from legacy_helpers import GatedProvider, legacy_plugin
from sesame_voice.plugins import make_plugin_manager
from sesame_voice.server import Server

SMALL_LIMITS = {"max_context_segments": 3, "max_segment_seconds": 2.0, "max_context_seconds": 3.0}


@pytest.fixture
def start_legacy(make_settings):
    """``async with start_legacy(legacy={...}, plugin_config={...}, **settings) as server`` with the test providers."""

    @contextlib.asynccontextmanager
    async def start(legacy: dict | None = None, plugin_config: dict | None = None, extra_plugins=(), **overrides):
        config = {"legacy": {"voice": "recorder", **(legacy or {})}, **(plugin_config or {})}
        settings = make_settings(plugins=config, **overrides)
        pm = make_plugin_manager(disabled=settings.disabled_plugins)
        for plugin in (legacy_plugin(), *extra_plugins):
            pm.register(plugin)
        async with Server(settings, pm=pm) as server:
            yield server

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
