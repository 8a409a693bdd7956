"""The studio: a page in the browser to hear every voice, clone one, transcribe and converse.

``GET /`` answers the page to browsers (``Accept: text/html``); every other ``Accept`` goes on to
the route that owns ``/`` (the legacy plugin's JSON). The page's files are served from
``/studio/FILE`` out of the package; every URL in them is relative, so the studio works under a
reverse proxy's path prefix (Home Assistant's Ingress) as long as the page's URL ends with ``/``.
The page itself is public (it holds no data and asks for the API key); everything it shows comes
from the API, with the key.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from aiohttp import web

from sesame_voice import hookimpl
from sesame_voice.http.routes import error_response, public

STATIC = Path(__file__).resolve().parent / "static"
ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(js|css|svg|png|wav)$")
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".wav": "audio/wav",
}
SECURITY_HEADERS = {
    # Nothing but this server: no CDN, no other host, no inline script.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def wants_html(request: web.Request) -> bool:
    """Whether the client prefers HTML (a browser's navigation), by the Accept header's first type."""
    accept = request.headers.get("Accept", "")
    first = accept.split(",")[0].split(";")[0].strip().lower()
    return first in ("text/html", "application/xhtml+xml")


def page() -> web.Response:
    return web.Response(
        body=(STATIC / "index.html").read_bytes(), content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS
    )


async def asset(request: web.Request) -> web.StreamResponse:
    """``GET /studio/{name}``: one of the page's files (a fixed set: no paths, no dots but the suffix)."""
    name = request.match_info["name"]
    path = STATIC / name
    if not ASSET_NAME.match(name) or not path.is_file():
        return error_response(404, "no such studio file", code="not_found")
    return web.Response(
        body=path.read_bytes(),
        headers={
            **SECURITY_HEADERS,
            "Content-Type": CONTENT_TYPES[path.suffix]
            + ("; charset=utf-8" if path.suffix in (".js", ".css", ".svg") else ""),
        },
    )


async def server_info(request: web.Request, server) -> web.Response:
    """``GET /studio/info`` (API key when set): what the server serves and where, for the page's overview."""
    wyoming = server.frontend("wyoming")
    return web.json_response(
        {
            "voices_dir": str(server.voices.folder),
            "voice_errors": server.voices.errors,
            "http": {"host": server.settings.host, "port": server.http_port, "api_key": bool(server.settings.api_key)},
            "wyoming": {"port": getattr(wyoming, "port", None)} if wyoming is not None else None,
            "zeroconf": bool(server.settings.zeroconf_enabled),
            "default_voice": server.settings.default_voice,
            "max_input_length": server.settings.max_input_length,
        }
    )


def html_root_middleware():
    """Serve the page for ``GET /`` when the client asks for HTML; leave every other request alone."""

    @web.middleware
    async def studio_root(request: web.Request, handler) -> web.StreamResponse:
        if request.method in ("GET", "HEAD") and request.path == "/" and wants_html(request):
            return page()
        return await handler(request)

    return studio_root


@hookimpl
def register_routes(app: web.Application, server) -> None:
    """Mount the page (``GET /`` for browsers), its files and its overview route."""
    # Outermost, so a browser gets the page even where the key would be asked for: the page asks itself.
    app.middlewares.insert(0, html_root_middleware())
    app.router.add_get("/studio/info", functools.partial(server_info, server=server))
    app.router.add_get("/studio/{name}", public(asset))


@hookimpl(specname="openapi_paths")
def describe_routes(server) -> dict:
    """The studio's routes for /openapi.json."""
    return {
        "/studio/info": {
            "get": {
                "summary": "The studio's overview: voices folder, rejected files, addresses",
                "responses": {"200": {"description": "JSON"}, "401": {"description": "API key"}},
            }
        },
        "/studio/{name}": {
            "get": {
                "summary": "A file of the studio page (script, style sheet, image)",
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The file"}, "404": {"description": "No such file"}},
            }
        },
    }


@hookimpl
def zeroconf_properties(server) -> dict[str, str]:
    """Browsers find the studio at the HTTP API's root."""
    return {"studio": "/"}
