"""The Server: owns settings, plugins, providers, voices, engine, HTTP app and frontends."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
from pathlib import Path
from typing import Any

from aiohttp import web

from sesame_voice.api.errors import SesameVoiceError
from sesame_voice.api.frontend import Announcement, Frontend, advertisable, reach
from sesame_voice.api.provider import Provider
from sesame_voice.api.version import __version__
from sesame_voice.app.plugins import (
    PluginManager,
    built_in_stt,
    collect_frontends,
    collect_providers,
    collect_responders,
    make_plugin_manager,
    stt_providers,
)
from sesame_voice.app.probes import OPENAPI_PATHS as PROBE_PATHS
from sesame_voice.app.probes import add_probe_routes
from sesame_voice.app.selfcheck import self_check
from sesame_voice.config import Settings
from sesame_voice.engine.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from sesame_voice.engine.metrics import ServerMetrics
from sesame_voice.engine.synthesis import Engine
from sesame_voice.engine.transcription import SpeechToText
from sesame_voice.http.redact import hide_paths
from sesame_voice.http.routes import api_key_middleware, authorised, public
from sesame_voice.voices.library import VoiceChanges, VoiceLibrary

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
            Path(settings.voices_dir),
            self.providers,
            settings.default_voice,
        )
        self.engine = Engine(self.providers, self.voices, settings)
        self.engine.resolve_hook = self._resolve_voice_hook
        self.metrics = ServerMetrics()
        self.engine.metrics = self.metrics
        self.metrics.watch(self.engine, self.voices)
        self.voices.call_in_provider = lambda provider, function: self.engine.workers[provider.name].call_blocking(
            function
        )
        self._plugin_state: dict[str, dict[str, Any]] = {}
        self.speech_to_text = SpeechToText(stt_providers(self.pm, settings), settings, built_in=built_in_stt(self.pm))
        """Transcribes audio: ``await server.speech_to_text.transcribe(samples, rate)`` (docs/stt.md)."""
        self.responders = {name: reg.cls(settings) for name, reg in collect_responders(self.pm).items()}
        """Reply writers (``sesame_voice.api.responder``); ``pick_responder(server.responders)`` finds the
        configured one."""
        self.frontends: list[Frontend] = []
        self._services: dict[str, Any] = {}
        self.shutting_down = False
        """True from the start of ``shutdown``: ``GET /health/ready`` answers 503."""
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

    def service(self, name: str) -> Any:
        """A service a plugin offered through ``register_services`` (None if no plugin offers it)."""
        return self._services.get(name)

    def _register_service(self, name: str, service: Any) -> None:
        if name in self._services:
            raise ValueError(f"two plugins offer the service {name!r}")
        self._services[name] = service

    async def _start(self) -> None:
        stack = self._stack
        await asyncio.to_thread(self.voices.reload)
        self.voices.listeners.append(self._on_voices_changed)
        self.speech_to_text.listeners.append(lambda: self.pm.hook.speech_to_text_loaded(server=self))
        self.pm.hook.register_services(register=self._register_service, server=self)
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
            from sesame_voice.app.discovery import Discovery

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
        from sesame_voice.app.selfcheck import log_self_check

        if preloads:
            await asyncio.wait(preloads, timeout=wait)
        log_self_check(self)

    async def shutdown(self, grace: float) -> None:
        """Withdraw zeroconf, stop accepting connections and new work, let running requests finish.

        Requests still running after ``grace`` seconds are cut when the server context exits.
        """
        self.shutting_down = True
        if self.discovery is not None:
            await self.discovery.stop()
        if self._runner is not None:
            for site in list(self._runner.sites):
                await site.stop()
        left = await self.engine.drain(grace)
        if left:
            _LOGGER.warning("%d request(s) still running after %.0f s; stopping them", left, grace)

    async def _start_http(self) -> None:
        self.app = web.Application(
            client_max_size=4 * 1024 * 1024, middlewares=[api_key_middleware(self.settings.api_key)]
        )
        self.app[SERVER_KEY] = self
        self.app.router.add_get("/health", public(self._health))
        add_probe_routes(self.app, self)
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
        self.metrics.instance = self.settings.metrics_instance or f"{socket.gethostname()}:{self.http_port}"
        _LOGGER.info("HTTP API on http://%s:%s", self.settings.host, self.http_port)

    def announcements(self) -> list[Announcement]:
        """Every service to advertise: the HTTP API (when others can reach it) plus each frontend's."""
        found = []
        if advertisable(self.settings.host, self.settings):
            properties = {
                "version": __version__,
                "default_voice": self.settings.default_voice,
                **self._zeroconf_properties(),
            }
            found.append(Announcement("_http._tcp.local.", self.http_port or self.settings.port, properties))
        for frontend in self.frontends:
            found.extend(frontend.announcements())
        return found

    def exposure(self) -> list[str]:
        """Where the server listens and who can connect, one line each (logged at start)."""
        key = "API key required" if self.settings.api_key else "no API key: anyone who can connect may use it"
        lines = [f"HTTP API on http://{self.settings.host}:{self.http_port}: {reach(self.settings.host)}; {key}"]
        for frontend in self.frontends:
            lines.extend(frontend.exposure())
        if self.discovery is None:
            lines.append("zeroconf: off")
        else:
            advertised = ", ".join(a.service_type for a in self.announcements()) or "nothing"
            lines.append(f"zeroconf: advertising {advertised}")
        return lines

    def _zeroconf_properties(self) -> dict[str, str]:
        properties: dict[str, str] = {}
        for contributed in self.pm.hook.zeroconf_properties(server=self):
            properties.update(contributed or {})
        return properties

    async def _on_voices_changed(self, changes: VoiceChanges) -> None:
        """Call every ``voices_changed`` hook, awaiting those that are ``async`` one by one."""
        try:
            results = self.pm.hook.voices_changed(server=self, changes=changes)
        except Exception:
            _LOGGER.exception("A voices_changed hook failed")
            return
        for result in results:
            if inspect.isawaitable(result):
                try:
                    await result
                except Exception:
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
        problems = self.problems()
        report = {
            "status": "degraded" if problems else "ok",
            "problems": problems,
            "version": __version__,
            "providers": providers,
            "speech_to_text": {name: p.status() for name, p in self.speech_to_text.providers.items()},
            "voices": len(self.voices.list()),
            "voice_errors": self.voices.errors,
            "default_voice": self.settings.default_voice,
            "frontends": [f.name for f in self.frontends],
            "requests": self.metrics.summary(),
            "self_check": self_check(self),
            "responders": {name: r.status() for name, r in self.responders.items()},
        }
        impls = self.pm.hook.health_fields.get_hookimpls()
        for impl in impls:  # one plugin at a time, so one that raises cannot hide the others' fields
            others = [other.plugin for other in impls if other is not impl]
            try:
                for fields in self.pm.subset_hook_caller("health_fields", others)(server=self, report=report):
                    report.update(fields or {})
            except Exception:
                _LOGGER.exception("The health_fields hook of plugin %s failed", impl.plugin_name)
        return report

    def problems(self) -> list[str]:
        """Why the server cannot do what it is configured to do (empty when it can)."""
        stt = self.speech_to_text
        found = (
            []
            if not stt.configured_default or stt.find(stt.configured_default)
            else [f"the default speech-to-text provider DEFAULT_STT={stt.configured_default!r} is not installed"]
        )
        try:
            voice = self.voices.get(None)
        except SesameVoiceError as err:
            return [f"the default voice {self.settings.default_voice!r} does not exist ({err})", *found]
        if self.engine.serving_provider(voice) is None:
            tried = ", ".join(name for name, _ in voice.candidates())
            return [f"no provider can speak the default voice {voice.name!r} (tried {tried})", *found]
        return found

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await asyncio.to_thread(self.metrics.render)
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def _health(self, request: web.Request) -> web.Response:
        """Public, so file paths are hidden unless API_KEY is set and the request carries it."""
        report = self.health()
        if not (self.settings.api_key and authorised(request, self.settings.api_key)):
            report = hide_paths(report)
        return web.json_response(report)

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
            **PROBE_PATHS,
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics: requests, latency, real-time factor, queues, errors, voices",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        }
        for contributed in self.pm.hook.openapi_paths(server=self):
            paths.update(contributed or {})
        return {
            "openapi": "3.1.0",
            "info": {"title": "sesame-voice", "version": __version__},
            "paths": paths,
        }
