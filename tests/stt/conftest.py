"""Speech-to-text fixtures: speech from the bundled Piper voice, Wyoming servers, a fake STT plugin."""

from __future__ import annotations

import contextlib

import pytest
from stt_helpers import EchoPlugin


@pytest.fixture
def make_settings(make_settings):
    """The suite's test settings with Whisper enabled (other tests leave it off), CSM off (not needed,
    and an MLX load still running at interpreter exit aborts the process), and ``plugin_settings``
    as the YAML ``plugins:`` table: ``start_server(plugin_settings={"openai": {...}})``."""

    def make(plugin_settings: dict | None = None, **overrides):
        if plugin_settings:
            overrides["plugins"] = plugin_settings  # the kit adds these to each plugin's section
        return make_settings(**{"disabled_plugins": ("csm",), **overrides})

    return make


@pytest.fixture
def speak(openai_client):
    """``await speak(text, fmt)`` → bytes of the bundled Piper voice saying ``text`` in ``fmt``."""

    async def run(text: str, fmt: str = "wav") -> bytes:
        response = await openai_client.audio.speech.with_raw_response.create(
            model="tts-1", voice="joe", input=text, response_format=fmt
        )
        return response.content

    return run


@pytest.fixture
def start_wyoming(start_server):
    """``async with start_wyoming(plugin_settings, **settings) as (server, port)``: a server's Wyoming port."""

    @contextlib.asynccontextmanager
    async def start(plugin_settings: dict | None = None, **overrides):
        async with start_server(plugin_settings=plugin_settings, **overrides) as server:
            frontend = next(f for f in server.frontends if f.name == "wyoming")
            yield server, frontend.port

    return start


@pytest.fixture
def echo_plugin() -> EchoPlugin:
    """A third-party plugin object registering the ``echo`` speech-to-text provider."""
    return EchoPlugin()
