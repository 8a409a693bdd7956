"""The Server: owns settings, plugins, providers, voices, engine, HTTP app and frontends."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from . import __version__
from .config import Settings
from .engine import Engine
from .frontend import Announcement, Frontend
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import ServerMetrics
from .plugins import (PluginManager, collect_frontends, collect_providers, collect_responders, collect_stt_providers,
                      make_plugin_manager)
from .provider import Provider
from .routes import api_key_middleware, public
from .selfcheck import self_check
from .sessions import SessionLimits, SessionStore
from .stt import SpeechToText
from .voices import VoiceChanges, VoiceLibrary

_LOGGER = logging.getLogger(__name__)
SERVER_KEY = web.AppKey("sesame_server", object)


class Server:
    """Runtime state of one sesame-voice server; no module-level globals anywhere.

    ``async with Server(settings) as server:`` starts providers, the voices watcher, the HTTP app,
    frontends and zeroconf on one exit stack, and tears them down in reverse.
    """

    def __init__(self, settings: Settings, pm: PluginManager | None = None) -> None:
        self.settings = settings
        self.pm = pm or make_plugin_manager(disabled=settings.disabled_plugins)
        self.providers: dict[str, Provider] = {
            name: reg.cls(settings) for name, reg in collect_providers(self.pm).items()
        }
        self.frontend_classes = collect_frontends(self.pm)
        self.voices = VoiceLibrary(
            Path(settings.voices_dir), self.providers, settings.default_voice,
        )
        self.engine = Engine(self.providers, self.voices, settings)
        self.engine.resolve_hook = self._resolve_voice_hook
        self.metrics = ServerMetrics()
        self.engine.metrics = self.metrics
        self.metrics.watch(self.engine, self.voices)
        self.voices.call_in_provider = lambda provider, function: self.engine.workers[provider.name].call_blocking(function)
        self._plugin_state: dict[str, dict[str, Any]] = {}
        self.speech_to_text = SpeechToText(
            {name: reg.cls(settings) for name, reg in collect_stt_providers(self.pm).items()}, settings
        )
        """Transcribes audio: ``await server.speech_to_text.transcribe(samples, rate)`` (docs/stt.md)."""
        self.responders = {name: reg.cls(settings) for name, reg in collect_responders(self.pm).items()}
        """Reply writers (``sesame_voice.responder``): ``pick_responder(server.responders)`` finds the configured one."""
        self.sessions = SessionStore(
            SessionLimits.from_settings(settings), self.engine, Path(settings.cache_dir).expanduser() / "sessions",
            speech_to_text=self.speech_to_text,
        )
        """Conversation sessions shared by every frontend (docs/sessions.md)."""
        self.health_fields: list[Any] = []
        """Callables ``(report) -> dict | None`` whose answers are merged into ``GET /health``'s report."""
        self.frontends: list[Frontend] = []
        self.http_properties: dict[str, str] = {}
        """TXT properties for the HTTP zeroconf service; route plugins add theirs."""
        self.openapi_paths: dict[str, Any] = {}
        """OpenAPI path items contributed by route plugins, served at /openapi.json; a value may be a
        zero-argument callable, called for each request of the document (e.g. to list the current voices)."""
        self.app: web.Application | None = None
        self.http_port: int | None = None
        self.discovery = None
        self._runner: web.AppRunner | None = None
        self._stack = contextlib.AsyncExitStack()

    # -- lifecycle -------------------------------------------------------------
    async def __aenter__(self) -> "Server":
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self._stack.aclose()

    @contextlib.asynccontextmanager
    async def prepared(self):
        """``async with server.prepared():`` voices loaded and the engine ready, without any listener.

        For commands that synthesise or list voices; providers are closed on exit.
        """
        try:
            await asyncio.to_thread(self.voices.reload)
            yield self
        finally:
            await self.engine.aclose()

    def plugin_state(self, plugin: str) -> dict[str, Any]:
        """A dict private to ``plugin`` that lives as long as this server (instead of module globals)."""
        return self._plugin_state.setdefault(plugin, {})

    def frontend(self, name: str) -> Frontend | None:
        """The running frontend called ``name``, if any."""
        return next((f for f in self.frontends if f.name == name), None)

    async def _start(self) -> None:
        stack = self._stack
        await asyncio.to_thread(self.voices.reload)
        self.voices.listeners.append(self._on_voices_changed)
        stack.push_async_callback(self.engine.aclose)
        preloads = []
        stack.push_async_callback(self.speech_to_text.aclose)
        for responder in self.responders.values():
            stack.push_async_callback(responder.aclose)
        if self.settings.preload:
            for worker in self.engine.workers.values():
                preload = asyncio.create_task(self._preload(worker), name=f"preload-{worker.provider.name}")
                stack.callback(preload.cancel)
                preloads.append(preload)
            preload = asyncio.create_task(self.speech_to_text.preload(), name="preload-speech-to-text")
            stack.callback(preload.cancel)
            preloads.append(preload)
        report = asyncio.create_task(self._report_when_loaded(preloads), name="self-check")
        stack.callback(report.cancel)
        watcher = asyncio.create_task(self.voices.watch(self.settings.voices_poll_interval), name="voices-watch")
        stack.callback(watcher.cancel)
        await stack.enter_async_context(self.sessions.running())
        await self._start_http()
        for name, registration in self.frontend_classes.items():
            if not registration.cls.enabled(self.settings):
                _LOGGER.info("Frontend %s disabled by configuration", name)
                continue
            frontend = registration.cls(self)
            await frontend.start()
            stack.push_async_callback(frontend.stop)
            self.frontends.append(frontend)
        for lifespan in self.pm.hook.server_lifespan(server=self):
            if lifespan is not None:
                await stack.enter_async_context(lifespan)
        if self.settings.zeroconf_enabled:
            from .discovery import Discovery

            self.discovery = Discovery(self.settings)
            await self.discovery.start(self.announcements())
            stack.push_async_callback(self.discovery.stop)

    @staticmethod
    async def _preload(worker) -> None:
        """Load a provider in its worker thread at start-up, so /health shows progress early."""
        try:
            await worker.call(worker.provider.ensure_loaded)
        except Exception as err:  # noqa: BLE001 - remembered by the provider, shown in /health
            _LOGGER.debug("Provider %s not available: %s", worker.provider.name, err)

    async def _report_when_loaded(self, preloads: list[asyncio.Task], wait: float = 15.0) -> None:
        """Log the self-check once, when providers have loaded (or after ``wait`` seconds)."""
        from .selfcheck import log_self_check

        if preloads:
            await asyncio.wait(preloads, timeout=wait)
        log_self_check(self)

    async def shutdown(self, grace: float) -> None:
        """Withdraw zeroconf, stop accepting connections and new work, let running requests finish.

        Requests still running after ``grace`` seconds are cut when the server context exits.
        """
        if self.discovery is not None:
            await self.discovery.stop()
        if self._runner is not None:
            for site in list(self._runner.sites):
                await site.stop()
        left = await self.engine.drain(grace)
        if left:
            _LOGGER.warning("%d request(s) still running after %.0f s; stopping them", left, grace)

    async def _start_http(self) -> None:
        self.app = web.Application(client_max_size=4 * 1024 * 1024,
                                   middlewares=[api_key_middleware(self.settings.api_key)])
        self.app[SERVER_KEY] = self
        self.app.router.add_get("/health", public(self._health))
        self.app.router.add_get("/openapi.json", self._openapi)
        self.app.router.add_get("/metrics", self._metrics)
        self.pm.hook.register_routes(app=self.app, server=self)
        # Running requests get their grace in ``shutdown`` (the engine drains); after that the
        # runner cuts what is left within a second instead of aiohttp's default minute.
        runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await runner.setup()
        self._runner = runner
        self._stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, self.settings.host, self.settings.port, reuse_address=True)
        await site.start()
        self.http_port = runner.addresses[0][1] if runner.addresses else self.settings.port
        _LOGGER.info("HTTP API on http://%s:%s", self.settings.host, self.http_port)

    def announcements(self) -> list[Announcement]:
        """Every service to advertise: the HTTP API plus each frontend's."""
        found = [
            Announcement(
                "_http._tcp.local.",
                self.http_port or self.settings.port,
                {"version": __version__, "default_voice": self.settings.default_voice, **self.http_properties},
            )
        ]
        for frontend in self.frontends:
            found.extend(frontend.announcements())
        return found

    async def _on_voices_changed(self, changes: VoiceChanges) -> None:
        """Call every ``voices_changed`` hook, awaiting those that are ``async`` one by one."""
        try:
            results = self.pm.hook.voices_changed(server=self, changes=changes)
        except Exception:  # noqa: BLE001 - a plugin bug must not stop the watcher
            _LOGGER.exception("A voices_changed hook failed")
            return
        for result in results:
            if inspect.isawaitable(result):
                try:
                    await result
                except Exception:  # noqa: BLE001 - one plugin's failure must not stop the others
                    _LOGGER.exception("A voices_changed hook failed")

    async def announce(self) -> None:
        """Re-publish the zeroconf records (after a frontend's announcements changed)."""
        if self.discovery is not None:
            await self.discovery.update(self.announcements())

    def _resolve_voice_hook(self, name: str, frontend: str):
        return self.pm.hook.resolve_voice(name=name, frontend=frontend, voices=self.voices)

    async def serve_forever(self) -> None:
        """Run until cancelled (Ctrl-C / SIGTERM)."""
        await asyncio.Event().wait()

    # -- core HTTP routes ------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Status, providers (and whether each is loaded), voices."""
        providers = {name: p.status() for name, p in self.providers.items()}
        default_ok = True
        try:
            self.voices.get(None)
        except Exception:  # noqa: BLE001
            default_ok = False
        report = {
            "status": "ok" if default_ok else "degraded",
            "version": __version__,
            "providers": providers,
            "speech_to_text": {name: p.status() for name, p in self.speech_to_text.providers.items()},
            "voices": len(self.voices.list()),
            "voice_errors": self.voices.errors,
            "default_voice": self.settings.default_voice,
            "frontends": [f.name for f in self.frontends],
            "requests": dict(self.engine.counters),
            "self_check": self_check(self),
            "sessions": len(self.sessions.list()),
            "responders": {name: r.status() for name, r in self.responders.items()},
        }
        for contribute in self.health_fields:
            try:
                report.update(contribute(report) or {})
            except Exception:  # noqa: BLE001 - a plugin's field must not break the health check
                _LOGGER.exception("Health field contributor %r failed", contribute)
        return report

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await asyncio.to_thread(self.metrics.render)
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(self.health())

    async def _openapi(self, request: web.Request) -> web.Response:
        return web.json_response(self.openapi())

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every HTTP route."""
        paths = {
            "/health": {
                "get": {
                    "summary": "Server health: providers, whether each is loaded, voice count",
                    "responses": {"200": {"description": "Health report"}},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics: requests, latency, real-time factor, queues, errors, voices",
                    "responses": {"200": {"description": "Prometheus text format",
                                          "content": {"text/plain": {"schema": {"type": "string"}}}}},
                }
            },
            **{path: item() if callable(item) else item for path, item in self.openapi_paths.items()},
        }
        return {
            "openapi": "3.1.0",
            "info": {"title": "sesame-voice", "version": __version__},
            "paths": paths,
        }

