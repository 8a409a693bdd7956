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


@hookspec
def health_fields(server, report):
    """Return a dict of fields to merge into ``GET /health``'s report (or None); ``report`` is the core's."""


@hookspec
def openapi_paths(server):
    """Return OpenAPI path items (``{"/path": {...}}``) for the routes this plugin adds; called for each
    request of ``/openapi.json``, so the document can list what exists now (e.g. the current voices)."""


@hookspec
def zeroconf_properties(server):
    """Return TXT properties (str → str) to add to the HTTP API's zeroconf service."""


@hookspec
def speech_to_text_loaded(server):
    """Called once the speech-to-text providers have finished loading at start (ready or failed)."""


@hookspec
def register_services(register, server):
    """Offer a service to other plugins: ``register(name, service)``; they find it with
    ``server.service(name)`` (e.g. the ``sessions`` plugin's store). Called before frontends start."""


@hookspec
def env_names():
    """Return the environment variable names this plugin reads besides its providers' and frontends'
    ``env_names`` (e.g. a service's settings), so ``sesame-voice service install`` passes them on."""
