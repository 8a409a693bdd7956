"""What a plugin's ``sesame-voice`` command gets: settings from the global options, a ready server."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from sesame_voice.app.plugins import PluginManager
    from sesame_voice.app.server import Server
    from sesame_voice.config import Settings


class CommandContext:
    """Handed to ``register_commands(subparsers, cli)``.

    Every subcommand a plugin adds gets the global options (``--config``, ``--voices-dir``,
    ``--disable``, ``--log-level``) automatically; its handler (``parser.set_defaults(handler=...)``,
    a function or ``async def`` of ``args``) returns the exit code.
    """

    def __init__(self, pm: "PluginManager", settings_from_args: Callable[[argparse.Namespace], "Settings"]) -> None:
        self.pm = pm
        self._settings_from_args = settings_from_args

    def settings(self, args: argparse.Namespace) -> "Settings":
        """Settings from env, ``.env``, the config file, and this command's global options."""
        return self._settings_from_args(args)

    @contextlib.asynccontextmanager
    async def server(self, args: argparse.Namespace, listen: bool = False) -> AsyncIterator["Server"]:
        """``async with cli.server(args) as server:`` voices loaded, engine ready, providers closed on exit.

        ``listen=True`` also starts the HTTP API, the frontends and zeroconf, as ``serve`` does.
        """
        from sesame_voice.app.server import Server

        server = Server(self.settings(args), pm=self.pm)
        if listen:
            async with server:
                yield server
        else:
            async with server.prepared():
                yield server
