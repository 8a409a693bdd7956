"""``sesame-voice`` command line: serve, voices, say, transcribe, plugins, discover (+ plugin commands)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import logging
import signal
import sys
from pathlib import Path

from sesame_voice.api.errors import SesameVoiceError
from sesame_voice.api.version import __version__
from sesame_voice.app.audio_commands import say, transcribe
from sesame_voice.app.commands import CommandContext
from sesame_voice.app.listings import plugins_command, voices_command
from sesame_voice.app.plugins import (
    PluginClash,
    collect_frontends,
    make_plugin_manager,
)
from sesame_voice.config import RESPONSE_FORMATS, ConfigError, Settings, load_settings

_LOGGER = logging.getLogger(__name__)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML config file (or SESAME_CONFIG)")
    parser.add_argument("--voices-dir", type=Path, help="voices folder (VOICES_DIR; default ./voices)")
    parser.add_argument(
        "--disable", action="append", default=[], metavar="PLUGIN", help="do not load this plugin (repeatable)"
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="LOG_LEVEL")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PLUGIN.KEY=VALUE",
        dest="plugin_settings",
        help="a setting of one plugin, as in the config file's plugins: table "
        "(each plugin's docs list its keys; repeatable)",
    )


def build_parser(pm=None) -> argparse.ArgumentParser:
    """The argparse parser, including subcommands that plugins add."""
    parser = argparse.ArgumentParser(
        prog="sesame-voice",
        description="Self-hosted voice server: its voice providers and protocols are plugins "
        "('sesame-voice plugins' lists them), found on the LAN through zeroconf. Settings come from env "
        "vars / .env (HOST, PORT, VOICES_DIR, DEFAULT_VOICE, API_KEY, ...) and an optional YAML config.",
    )
    parser.add_argument("--version", action="version", version=f"sesame-voice {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server (HTTP API, every frontend, zeroconf)")
    _common(serve)
    serve.add_argument("--host", help="HTTP bind address (HOST, default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="HTTP port (PORT, default 8880)")
    serve.add_argument("--no-zeroconf", action="store_true", help="do not advertise on the LAN")
    serve.add_argument(
        "--zeroconf-interface",
        action="append",
        default=[],
        metavar="IP",
        help="advertise only on this address (repeatable)",
    )

    voices = sub.add_parser("voices", help="list voices and the voice files that were skipped")
    _common(voices)
    voices.add_argument("--json", action="store_true", help="machine-readable output")

    say = sub.add_parser("say", help="synthesise TEXT into an audio file, without a server")
    _common(say)
    say.add_argument("text", help="text to speak ('-' reads standard input)")
    say.add_argument("-o", "--output", type=Path, required=True, help="output file; its suffix picks the format")
    say.add_argument("--voice", help="voice name or alias (default: DEFAULT_VOICE)")
    say.add_argument("--format", choices=RESPONSE_FORMATS, help="audio format (default: from the file suffix)")
    say.add_argument("--speed", type=float, default=1.0, help="tempo 0.25–4.0 (pitch is kept)")

    transcribe = sub.add_parser(
        "transcribe", help="transcribe an audio FILE (any format FFmpeg reads), without a server"
    )
    _common(transcribe)
    transcribe.add_argument("file", type=Path, help="audio file")
    transcribe.add_argument("--language", help="ISO 639-1 code of the speech (default: detect)")
    transcribe.add_argument("--prompt", help="text that precedes the audio (names, spelling)")
    transcribe.add_argument("--json", action="store_true", help="text, language, duration and segments as JSON")

    plugins = sub.add_parser("plugins", help="list loaded plugins, providers and frontends")
    _common(plugins)
    plugins.add_argument("--json", action="store_true", help="machine-readable output")

    service = sub.add_parser(
        "service",
        help="run the server as a service: launchd agent (macOS) or systemd unit (Linux)",
        description="Writes a unit for this install (its real paths, and the settings of this "
        "environment: HOST, PORT, VOICES_DIR, CACHE_DIR, …) and loads it with launchctl or systemctl.",
    )
    _common(service)
    service.add_argument("action", choices=["install", "uninstall", "start", "stop", "status"])
    service.add_argument(
        "--system",
        action="store_true",
        help="a system service (/etc/systemd/system, /Library/LaunchDaemons) instead of the user's",
    )
    service.add_argument("--manager", choices=["launchd", "systemd"], help="default: launchd on macOS, else systemd")
    service.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the service (repeatable)",
    )
    service.add_argument("--dry-run", action="store_true", help="print what would be written and run")

    discover = sub.add_parser(
        "discover", help="list sesame-voice servers, and the voice servers the installed frontends find, on the LAN"
    )
    discover.add_argument("--timeout", type=float, default=3.0, help="seconds to listen")
    discover.add_argument("--interface", action="append", default=[], metavar="IP", help="browse only on this address")
    discover.add_argument("--json", action="store_true", help="machine-readable output")

    if pm is not None:
        builtin = set(sub.choices)
        pm.hook.register_commands(subparsers=sub, cli=CommandContext(pm, _settings))
        for name, command in sub.choices.items():
            if name not in builtin:
                _common(command)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "voices_dir": getattr(args, "voices_dir", None),
        "log_level": getattr(args, "log_level", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
    }
    if getattr(args, "no_zeroconf", False):
        overrides["zeroconf_enabled"] = False
    if getattr(args, "zeroconf_interface", None):
        overrides["zeroconf_interfaces"] = tuple(args.zeroconf_interface)
    settings = load_settings(config_file=getattr(args, "config", None), **overrides)
    for item in getattr(args, "plugin_settings", None) or []:
        key, sep, value = item.partition("=")
        plugin, dot, name = key.partition(".")
        if not (sep and dot and plugin and name):
            raise ConfigError(f"--set wants PLUGIN.KEY=VALUE, got {item!r}")
        settings.plugins.setdefault(plugin, {})[name] = value
    if getattr(args, "disable", None):
        settings.disabled_plugins = (*settings.disabled_plugins, *args.disable)
    return settings


async def _serve(settings: Settings, pm=None) -> None:
    """Run until SIGTERM/SIGINT; then drain running requests (a second signal stops at once)."""
    from sesame_voice.app.runtime import pid_file
    from sesame_voice.app.server import Server

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal(sig: signal.Signals) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            _LOGGER.info(
                "%s received: finishing running requests (up to %.0f s; again to stop now)",
                sig.name,
                settings.shutdown_grace,
            )
            stop.set()
        elif drain is not None:
            drain.cancel()

    drain: asyncio.Task | None = None
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            pass
    with pid_file(settings.cache_path(settings.pid_file)):
        async with Server(settings, pm=pm) as server:
            _announce_ready(server, settings)
            await stop.wait()
            drain = asyncio.create_task(server.shutdown(settings.shutdown_grace))
            with contextlib.suppress(asyncio.CancelledError):
                await drain
            _LOGGER.info("Shutting down")
    _LOGGER.info("Stopped")


def _announce_ready(server, settings: Settings) -> None:
    """Say loudly if the default voice is missing; otherwise that the server is ready."""
    voices = ", ".join(v.name for v in server.voices.list())
    try:
        server.voices.get(None)
    except SesameVoiceError as err:
        _LOGGER.error(
            "NOT READY: %s. Requests without a voice will fail. Voices folder: %s; available voices: %s",
            err,
            settings.voices_dir,
            voices or "none",
        )
    else:
        _LOGGER.info("sesame-voice %s ready on port %s; voices: %s", __version__, server.http_port, voices)
    for line in server.exposure():
        _LOGGER.info("Reachable: %s", line)


async def _discover(args: argparse.Namespace, pm) -> int:
    from sesame_voice.app.discovery import browse

    peers = {
        reg.cls.peer_service_type: reg.cls.describe_peer
        for reg in collect_frontends(pm).values()
        if reg.cls.peer_service_type
    }
    found = await browse(timeout=args.timeout, interfaces=args.interface or None, peers=peers)
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        for item in found:
            addresses = ", ".join(item.get("addresses", []))
            voices = item.get("tts_voices")
            spoken = f"  voices: {', '.join(voices)}" if voices else ""
            print(f"{item['name']}  {item['type']}  {addresses}:{item['port']}  {item.get('properties', {})}{spoken}")
        if not found:
            print("no voice servers found", file=sys.stderr)
    return 0


def _service(settings: Settings, args: argparse.Namespace) -> int:
    from sesame_voice.app.service import ServiceError, plan, run_action

    extra = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"sesame-voice: --env wants NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        extra[name] = value
    if args.voices_dir:
        extra["VOICES_DIR"] = str(args.voices_dir.expanduser().resolve())
    try:
        unit = plan(settings, kind=args.manager, system=args.system, extra_env=extra)
        return run_action(args.action, unit, dry_run=args.dry_run)
    except ServiceError as err:
        print(f"sesame-voice: {err}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sesame-voice`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    # One plugin manager for the whole command: a broken plugin is reported once, and disabled
    # plugins (--disable, DISABLED_PLUGINS, the config file) never load, commands included.
    pm = make_plugin_manager(disabled=_disabled_early(argv))
    parser = build_parser(pm)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        settings = _settings(args) if args.command != "discover" else None
    except ConfigError as err:
        print(f"sesame-voice: configuration error: {err}", file=sys.stderr)
        return 2
    from sesame_voice.app.runtime import adopt_old_cache, setup_logging

    moved = adopt_old_cache(settings) if settings is not None else None
    log_path = setup_logging(settings or Settings(), to_file=args.command == "serve")
    if moved is not None:
        _LOGGER.info("Moved the cache of an older release from %s to %s", moved, settings.cache_dir)
    if log_path is not None:
        _LOGGER.info("Logging to %s", log_path)
    try:
        if args.command == "serve":
            asyncio.run(_serve(settings, pm))
            return 0
        if args.command == "voices":
            return voices_command(settings, args.json, pm)
        if args.command == "say":
            return asyncio.run(say(settings, args, pm))
        if args.command == "transcribe":
            return asyncio.run(transcribe(settings, args, pm))
        if args.command == "plugins":
            return plugins_command(settings, args.json, pm)
        if args.command == "discover":
            return asyncio.run(_discover(args, pm))
        if args.command == "service":
            return _service(settings, args)
        handler = getattr(args, "handler", None)
        if handler is not None:
            result = handler(args)
            if inspect.isawaitable(result):
                result = asyncio.run(_awaited(result))
            return int(result or 0)
    except ConfigError as err:  # a plugin's setting, found bad when the plugin reads it
        print(f"sesame-voice: configuration error: {err}", file=sys.stderr)
        return 2
    except (SesameVoiceError, PluginClash) as err:
        print(f"sesame-voice: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # e.g. a port already in use: one line, not a traceback
        print(f"sesame-voice: cannot {args.command}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    parser.print_help()
    return 2


async def _awaited(awaitable):
    return await awaitable


def _disabled_early(argv: list[str]) -> list[str]:
    """Plugins disabled by ``--disable``, DISABLED_PLUGINS or the config file, known before any loads."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--config", type=Path)
    early.add_argument("--disable", action="append", default=[])
    known, _ = early.parse_known_args(argv)
    try:
        configured = load_settings(config_file=known.config).disabled_plugins
    except ConfigError:
        configured = ()  # reported with the parsed command's settings
    return [*configured, *known.disable]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
