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
def register_responders(register):
    """Register responder classes (reply writers, e.g. an LLM endpoint): ``register(ResponderSubclass)``."""


@hookspec
def register_frontends(register):
    """Register protocol frontend classes that own a listener: ``register(FrontendSubclass)``."""


@hookspec
def register_routes(app, server):
    """Add routes to the shared aiohttp application; the API key guards them unless ``routes.public``."""


@hookspec
def register_commands(subparsers, cli):
    """Add ``sesame-voice`` subcommands to an argparse ``subparsers`` object.

    ``cli`` is a ``sesame_voice.commands.CommandContext``: ``cli.settings(args)`` gives the settings
    with the global options applied, ``async with cli.server(args) as server`` a ready server.
    """


@hookspec(firstresult=True)
def resolve_voice(name, frontend, voices):
    """Map a client's voice name to a ``Voice`` (first non-None answer wins)."""


@hookspec
def server_lifespan(server):
    """Return an async context manager that lives as long as the server, or None."""


@hookspec
def voices_changed(server, changes):
    """Called after a re-scan changed the voices; ``changes`` is a ``VoiceChanges`` (added, removed,
    changed voice names). May be ``async def``: the core awaits what it returns."""
