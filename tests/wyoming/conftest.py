"""Wyoming fixtures: a running server with the Wyoming frontend."""

from __future__ import annotations

import contextlib

import pytest


@pytest.fixture
def start_wyoming(start_server):
    """``async with start_wyoming(plugins=[...], **settings) as (server, frontend)``."""

    @contextlib.asynccontextmanager
    async def start(plugins: list | None = None, **overrides):
        async with start_server(plugins=plugins, **overrides) as server:
            frontend = next(f for f in server.frontends if f.name == "wyoming")
            yield server, frontend

    return start


@pytest.fixture
async def piper_wyoming(start_wyoming):
    """A server with the built-in plugins (Piper's bundled voice ``joe``) and Wyoming."""
    async with start_wyoming() as running:
        yield running
