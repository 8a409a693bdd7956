"""pluggy hook specifications: the whole public extension surface of sesame-voice."""

from __future__ import annotations

import pluggy

PROJECT = "sesame_voice"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_providers(register):
    """Register voice provider classes: ``register(ProviderSubclass)``."""


@hookspec
def register_stt_providers(register):
    """Register speech-to-text provider classes: ``register(SttProviderSubclass)``."""


@hookspec
def register_frontends(register):
    """Register protocol frontend classes that own a listener: ``register(FrontendSubclass)``."""


@hookspec
def register_routes(app, server):
    """Add routes to the shared aiohttp application (OpenAI API, legacy API…)."""


@hookspec
def register_commands(subparsers, server_factory):
    """Add ``sesame-voice`` subcommands to an argparse ``subparsers`` object."""


@hookspec(firstresult=True)
def resolve_voice(name, frontend, voices):
    """Map a client's voice name to a ``Voice`` (first non-None answer wins)."""


@hookspec
def server_lifespan(server):
    """Return an async context manager that lives as long as the server, or None."""


@hookspec
def voices_changed(server, added, removed):
    """Called after the voices folder changed; ``added``/``removed`` are voice names."""
