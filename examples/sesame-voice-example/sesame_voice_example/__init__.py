"""Example sesame-voice plugin using every hook and only the public API.

A provider (beeps; ``NAME.beep`` voice files), a TCP frontend, HTTP routes, a command, voice
resolution (``beep:HZ``), a server lifespan, and a ``voices_changed`` listener. Its tests use the
testing kit (``sesame_voice.testing``).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from aiohttp import web

from sesame_voice import SynthesisRequest, Voice, VoiceChanges, hookimpl
from sesame_voice.http.routes import error_response, public, read_json, speech_response

from .frontend import LineFrontend
from .provider import BeepProvider

PLUGIN = "example"


@hookimpl
def register_providers(register):
    """Register the beep provider."""
    register(BeepProvider)


@hookimpl
def register_frontends(register):
    """Register the line frontend."""
    register(LineFrontend)


@hookimpl
def register_routes(app: web.Application, server):
    """``POST /beep`` speaks ``{"text", "voice"}`` as WAV; ``GET /beep/status`` is public."""

    async def beep(request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return error_response(400, 'send {"text": ..., "voice": ...}', param="text")
        server.plugin_state(PLUGIN)["requests"] = server.plugin_state(PLUGIN).get("requests", 0) + 1
        speech = SynthesisRequest(
            text=body["text"],
            voice=body.get("voice") or "beeper",
            response_format="wav",
            sampling=body.get("sampling") or {},
            frontend="beep-http",
        )
        return await speech_response(request, server, speech)

    async def status(request: web.Request) -> web.Response:
        state = server.plugin_state(PLUGIN)
        return web.json_response({"requests": state.get("requests", 0), "running": state.get("running", False)})

    app.router.add_post("/beep", beep)
    app.router.add_get("/beep/status", public(status))


@hookimpl(specname="openapi_paths")
def describe_routes(server):
    return {"/beep": {"post": {"summary": "Beep some words", "responses": {"200": {"description": "WAV"}}}}}


@hookimpl
def register_commands(subparsers, cli):
    """``sesame-voice beep TEXT -o FILE``: beeps into a WAV file, without a server listening."""
    parser = subparsers.add_parser("beep", help="beep TEXT into a WAV file (example plugin)")
    parser.add_argument("text")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--voice", default="beeper")

    async def run(args) -> int:
        import numpy as np
        import soundfile as sf

        async with cli.server(args) as server:
            request = SynthesisRequest(text=args.text, voice=args.voice, frontend="beep-cli")
            async with server.engine.synthesis(request) as synthesis:
                chunks = [chunk.samples async for chunk in synthesis]
            sf.write(args.output, np.concatenate(chunks), synthesis.sample_rate)
        print(f"{args.output}: {len(chunks)} chunk(s) from {synthesis.provider}")
        return 0

    parser.set_defaults(handler=run)


@hookimpl
def resolve_voice(name: str, frontend: str, voices):
    """``beep:HZ`` is a beep voice at that pitch, for any frontend."""
    prefix, _, hertz = name.partition(":")
    if prefix != "beep" or not hertz.replace(".", "", 1).isdigit():
        return None
    return Voice(name=name, provider=BeepProvider.name, params={"pitch": float(hertz)})


@hookimpl
def server_lifespan(server):
    """A heartbeat task that lives exactly as long as the server."""

    @contextlib.asynccontextmanager
    async def lifespan():
        state = server.plugin_state(PLUGIN)
        state["running"] = True
        task = asyncio.create_task(asyncio.Event().wait(), name="example-heartbeat")
        try:
            yield
        finally:
            task.cancel()
            state["running"] = False

    return lifespan()


@hookimpl
async def voices_changed(server, changes: VoiceChanges):
    """Remember every change (the tests read it back)."""
    server.plugin_state(PLUGIN).setdefault("changes", []).append(changes)
