"""``sesame-voice`` command line: serve, voices, say, transcribe, plugins, discover (+ plugin commands)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from . import __version__
from .config import ConfigError, Settings, load_settings
from .plugins import collect_frontends, collect_providers, collect_stt_providers, make_plugin_manager, plugin_rows
from .types import RESPONSE_FORMATS, SesameVoiceError, SynthesisRequest

_LOGGER = logging.getLogger(__name__)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML config file (or SESAME_CONFIG)")
    parser.add_argument("--voices-dir", type=Path, help="voices folder (VOICES_DIR; default ./voices)")
    parser.add_argument("--disable", action="append", default=[], metavar="PLUGIN", help="do not load this plugin (repeatable)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="LOG_LEVEL")


def build_parser(pm=None) -> argparse.ArgumentParser:
    """The argparse parser, including subcommands that plugins add."""
    parser = argparse.ArgumentParser(
        prog="sesame-voice",
        description="Self-hosted voice server: OpenAI speech API, Wyoming for Home Assistant, zeroconf, "
        "CSM-1B and Piper voices. Settings come from env vars / .env (HOST, PORT, VOICES_DIR, "
        "DEFAULT_VOICE, API_KEY, ...) and an optional YAML config.",
    )
    parser.add_argument("--version", action="version", version=f"sesame-voice {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server (HTTP API, Wyoming, zeroconf)")
    _common(serve)
    serve.add_argument("--host", help="HTTP bind address (HOST, default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="HTTP port (PORT, default 8880)")
    serve.add_argument("--wyoming-uri", help="Wyoming listener, e.g. tcp://0.0.0.0:10200 (WYOMING_URI)")
    serve.add_argument("--no-wyoming", action="store_true", help="do not start the Wyoming frontend")
    serve.add_argument("--no-zeroconf", action="store_true", help="do not advertise on the LAN")
    serve.add_argument("--zeroconf-interface", action="append", default=[], metavar="IP", help="advertise only on this address (repeatable)")

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

    transcribe = sub.add_parser("transcribe", help="transcribe an audio FILE (any format FFmpeg reads), without a server")
    _common(transcribe)
    transcribe.add_argument("file", type=Path, help="audio file")
    transcribe.add_argument("--language", help="ISO 639-1 code of the speech (default: detect)")
    transcribe.add_argument("--prompt", help="text that precedes the audio (names, spelling)")
    transcribe.add_argument("--json", action="store_true", help="text, language, duration and segments as JSON")

    plugins = sub.add_parser("plugins", help="list loaded plugins, providers and frontends")
    _common(plugins)
    plugins.add_argument("--json", action="store_true", help="machine-readable output")

    discover = sub.add_parser("discover", help="list sesame-voice and Wyoming TTS servers on the LAN")
    discover.add_argument("--timeout", type=float, default=3.0, help="seconds to listen")
    discover.add_argument("--interface", action="append", default=[], metavar="IP", help="browse only on this address")
    discover.add_argument("--json", action="store_true", help="machine-readable output")

    if pm is not None:
        pm.hook.register_commands(subparsers=sub, server_factory=_server_factory)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "voices_dir": getattr(args, "voices_dir", None),
        "log_level": getattr(args, "log_level", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "wyoming_uri": getattr(args, "wyoming_uri", None),
    }
    if getattr(args, "no_wyoming", False):
        overrides["wyoming_enabled"] = False
    if getattr(args, "no_zeroconf", False):
        overrides["zeroconf_enabled"] = False
    if getattr(args, "zeroconf_interface", None):
        overrides["zeroconf_interfaces"] = tuple(args.zeroconf_interface)
    settings = load_settings(config_file=getattr(args, "config", None), **overrides)
    if getattr(args, "disable", None):
        settings.disabled_plugins = (*settings.disabled_plugins, *args.disable)
    return settings


def _server_factory(settings: Settings):
    from .server import Server

    return Server(settings)


async def _serve(settings: Settings) -> None:
    from .server import Server

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            pass
    async with Server(settings) as server:
        voices = ", ".join(v.name for v in server.voices.list())
        _LOGGER.info("sesame-voice %s ready on port %s; voices: %s", __version__, server.http_port, voices)
        await stop.wait()
        _LOGGER.info("Shutting down")


def _voices(settings: Settings, as_json: bool) -> int:
    server = _server_factory(settings)
    server.voices.reload()
    voices = server.voices.list()
    if as_json:
        rows = [
            {"name": v.name, "provider": v.provider, "fallbacks": [f["provider"] for f in v.fallbacks],
             "aliases": list(v.aliases), "description": v.description, "source": str(v.source or "")}
            for v in voices
        ]
        print(json.dumps({"voices": rows, "errors": server.voices.errors}, indent=2))
    else:
        for v in voices:
            chain = " → ".join([v.provider, *(f["provider"] for f in v.fallbacks)])
            default = " (default)" if v.name.lower() == settings.default_voice.lower() else ""
            aliases = f"  aliases: {', '.join(v.aliases)}" if v.aliases else ""
            print(f"{v.name}{default}  [{chain}]  {v.description}{aliases}")
        for name, error in server.voices.errors.items():
            print(f"SKIPPED {name}: {error}", file=sys.stderr)
    return 0


async def _say(settings: Settings, args: argparse.Namespace) -> int:
    from .audio import StreamEncoder

    text = sys.stdin.read() if args.text == "-" else args.text
    fmt = args.format or args.output.suffix.lstrip(".").lower() or settings.default_format
    if fmt == "ogg":
        fmt = "opus"
    server = _server_factory(settings)
    await asyncio.to_thread(server.voices.reload)
    request = SynthesisRequest(text=text, voice=args.voice, speed=args.speed, response_format=fmt, frontend="cli")
    try:
        async with server.engine.session(request) as synthesis:
            encoder = StreamEncoder(fmt, synthesis.sample_rate, mp3_bitrate=settings.mp3_bitrate,
                                    opus_bitrate=settings.opus_bitrate, aac_bitrate=settings.aac_bitrate)
            with args.output.open("wb") as out:
                async for chunk in synthesis:
                    out.write(encoder.encode(chunk.samples))
                out.write(encoder.finish())
            print(f"{args.output}: {fmt}, voice {synthesis.voice.name} via {synthesis.provider}", file=sys.stderr)
    finally:
        await server.engine.aclose()
    return 0


async def _transcribe(settings: Settings, args: argparse.Namespace) -> int:
    from .audio import decode_file

    try:
        data = args.file.read_bytes()
    except OSError as err:
        print(f"sesame-voice: cannot read {args.file}: {err.strerror or err}", file=sys.stderr)
        return 1
    server = _server_factory(settings)
    try:
        rate = server.speech_to_text.provider().sample_rate
        samples, rate = await asyncio.to_thread(decode_file, data, None, rate)
        transcript = await server.speech_to_text.transcribe(samples, rate, language=args.language, prompt=args.prompt)
    finally:
        await server.speech_to_text.aclose()
    if args.json:
        segments = [{"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text.strip()}
                    for s in transcript.segments]
        print(json.dumps({"text": transcript.text, "language": transcript.language,
                          "duration": round(transcript.duration, 3), "provider": transcript.provider,
                          "model": transcript.model, "segments": segments}, indent=2))
    else:
        print(transcript.text)
    return 0


def _plugins(settings: Settings, as_json: bool) -> int:
    pm = make_plugin_manager(disabled=settings.disabled_plugins)
    rows = plugin_rows(pm)
    providers = {n: r.plugin for n, r in collect_providers(pm).items()}
    frontends = {n: r.plugin for n, r in collect_frontends(pm).items()}
    stt = {n: r.plugin for n, r in collect_stt_providers(pm).items()}
    if as_json:
        print(json.dumps({"plugins": rows, "providers": providers, "stt_providers": stt, "frontends": frontends,
                          "failed": pm.failed, "disabled": list(settings.disabled_plugins)}, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']}  {row['distribution'] or '-'} {row['version'] or ''}  hooks: {', '.join(row['hooks'])}")
    print(f"providers: {', '.join(f'{n} ({p})' for n, p in providers.items()) or 'none'}")
    print(f"speech to text: {', '.join(f'{n} ({p})' for n, p in stt.items()) or 'none'}")
    print(f"frontends: {', '.join(f'{n} ({p})' for n, p in frontends.items()) or 'none'}")
    for name, error in pm.failed.items():
        print(f"FAILED {name}: {error}", file=sys.stderr)
    for name in settings.disabled_plugins:
        print(f"disabled: {name}")
    return 0


async def _discover(args: argparse.Namespace) -> int:
    from .discovery import browse

    found = await browse(timeout=args.timeout, interfaces=args.interface or None)
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        for item in found:
            addresses = ", ".join(item.get("addresses", []))
            voices = item.get("tts_voices")
            spoken = f"  voices: {', '.join(voices)}" if voices else ""
            print(f"{item['name']}  {item['type']}  {addresses}:{item['port']}  {item.get('properties', {})}{spoken}")
        if not found:
            print("no sesame-voice or Wyoming TTS servers found", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sesame-voice`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    pm = make_plugin_manager(disabled=_disabled_from_argv(argv))
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
    level = (settings.log_level if settings else "info").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "serve":
            asyncio.run(_serve(settings))
            return 0
        if args.command == "voices":
            return _voices(settings, args.json)
        if args.command == "say":
            return asyncio.run(_say(settings, args))
        if args.command == "transcribe":
            return asyncio.run(_transcribe(settings, args))
        if args.command == "plugins":
            return _plugins(settings, args.json)
        if args.command == "discover":
            return asyncio.run(_discover(args))
        handler = getattr(args, "handler", None)
        if handler is not None:
            return int(handler(args) or 0)
    except SesameVoiceError as err:
        print(f"sesame-voice: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    parser.print_help()
    return 2


def _disabled_from_argv(argv: list[str]) -> list[str]:
    """Plugins named by ``--disable`` must not even load before the parser is built."""
    names = []
    for i, arg in enumerate(argv):
        if arg == "--disable" and i + 1 < len(argv):
            names.append(argv[i + 1])
        elif arg.startswith("--disable="):
            names.append(arg.split("=", 1)[1])
    return names


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
