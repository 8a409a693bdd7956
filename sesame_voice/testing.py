"""The testing kit for plugin authors: a pytest plugin, loaded automatically once sesame-voice is installed.

Fixtures (see docs/plugins.md, "Testing a plugin"):

- ``voices_dir``: an empty voices folder in ``tmp_path`` (override it to pre-fill one).
- ``make_settings(**fields)``: loopback-only ``Settings``: HTTP on 127.0.0.1 and a free port,
  zeroconf off, a private cache, the voices folder re-scanned every 0.2 s.
- ``start_server(plugins=[...], entry_points=True, plugin_settings={NAME: {...}}, **fields)``:
  ``async with`` a real server running in-process with the installed plugins (unless
  ``entry_points=False``) plus the plugin objects ``plugins``; ``plugin_settings`` is the
  ``plugins:`` table of the config file.
- ``server``: such a server with the installed plugins; ``base_url``: its ``http://127.0.0.1:PORT``.
- ``http_client``: a ``SesameClient`` for the server's HTTP API (aiohttp).

Marker ``@pytest.mark.drives_hook("hook_name", ...)``: the test fails unless it made the server
call that hook with at least one plugin implementing it; the project's meta-test requires one such
test per hookspec. Plugins extend the test settings with the pytest hook
``pytest_sesame_voice_settings(values)`` (e.g. to bind their listener to the loopback).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from sesame_voice.config import Settings, load_settings

LOOPBACK = "127.0.0.1"


class SettingsHooks:
    """pytest hook specifications this plugin adds."""

    @pytest.hookspec
    def pytest_sesame_voice_settings(self, values: dict[str, Any]) -> None:
        """Adjust the field values of test ``Settings`` in place (before a test's own overrides)."""


def pytest_addhooks(pluginmanager) -> None:
    pluginmanager.add_hookspecs(SettingsHooks)


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "drives_hook(*names): the test must make the server call these sesame_voice hooks"
    )


# -- settings and servers -------------------------------------------------------------------------


@pytest.fixture
def voices_dir(tmp_path: Path) -> Path:
    """An empty voices folder."""
    folder = tmp_path / "voices"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def make_settings(tmp_path: Path, voices_dir: Path, pytestconfig) -> Callable[..., Settings]:
    """``make_settings(**fields)``: Settings for a loopback-only test server; ``fields`` override.

    ``env={...}`` is the environment the settings (and plugins' env names) are read from; the real
    environment never is, so tests do not depend on the machine they run on."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "host": LOOPBACK,
            "port": 0,
            "voices_dir": voices_dir,
            "cache_dir": tmp_path / "cache",
            "zeroconf_enabled": False,
            "zeroconf_interfaces": (LOOPBACK,),
            "voices_poll_interval": 0.2,
        }
        pytestconfig.hook.pytest_sesame_voice_settings(values=values)
        # A plugins: table in the overrides adds to each plugin's section rather than replacing it.
        for name, table in (overrides.pop("plugins", None) or {}).items():
            values.setdefault("plugins", {})[name] = {**values.get("plugins", {}).get(name, {}), **table}
        env = overrides.pop("env", None) or {}  # the environment plugins read their env names from
        values.update(overrides)
        return load_settings(env=env, dotenv_file=None, **values)

    return make


@pytest.fixture
def start_server(make_settings):
    """``async with start_server(plugins=[...], entry_points=True, **fields) as server``: a running server."""

    @contextlib.asynccontextmanager
    async def start(
        plugins: list | tuple | None = (),
        entry_points: bool = True,
        plugin_settings: dict | None = None,
        **overrides: Any,
    ) -> AsyncIterator[Any]:
        from sesame_voice.app.plugins import make_plugin_manager
        from sesame_voice.app.server import Server

        if plugin_settings is not None:
            overrides["plugins"] = plugin_settings
        settings = make_settings(**overrides)
        pm = make_plugin_manager(disabled=settings.disabled_plugins, load_entry_points=entry_points)
        for plugin in plugins or ():
            pm.register(plugin)
        async with Server(settings, pm=pm) as server:
            yield server

    return start


@pytest.fixture
async def server(start_server):
    """A running server with the installed plugins, on 127.0.0.1."""
    async with start_server() as running:
        yield running


@pytest.fixture
def base_url(server) -> str:
    """``http://127.0.0.1:PORT`` of ``server``."""
    return f"http://{LOOPBACK}:{server.http_port}"


# -- clients --------------------------------------------------------------------------------------


class SesameClient:
    """A small client for a server's HTTP API (aiohttp), as a test or a script would use it."""

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def request(self, method: str, path: str, json: Any = None) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one request to ``path``."""
        import aiohttp

        async with aiohttp.ClientSession(headers=self._headers()) as session:
            async with session.request(method, self.base_url + path, json=json) as response:
                return response.status, dict(response.headers), await response.read()

    async def get_json(self, path: str) -> tuple[int, Any]:
        """(status, decoded JSON) of ``GET path``."""
        import json as json_module

        status, _, body = await self.request("GET", path)
        return status, json_module.loads(body or b"null")

    async def voices(self) -> dict[str, Any]:
        """``GET /v1/audio/voices``: ``data`` (voices) and ``errors`` (rejected files with reasons)."""
        status, payload = await self.get_json("/v1/audio/voices")
        assert status == 200, payload
        return payload

    async def speech(
        self, text: str, voice: str | None = None, response_format: str = "wav", **fields: Any
    ) -> tuple[int, dict[str, str], bytes]:
        """``POST /v1/audio/speech``: (status, headers, audio bytes or error JSON)."""
        body = {"model": "tts-1", "input": text, "response_format": response_format, **fields}
        if voice is not None:
            body["voice"] = voice
        return await self.request("POST", "/v1/audio/speech", json=body)


@pytest.fixture
def http_client(server) -> SesameClient:
    """A ``SesameClient`` for ``server`` (with its API key, if one is set)."""
    return SesameClient(f"http://{LOOPBACK}:{server.http_port}", server.settings.api_key)


# -- hooks driven by a test -----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _sesame_voice_hook_calls(request, monkeypatch):
    """For tests marked ``drives_hook``: record hook calls and fail if a named hook was not driven."""
    wanted = [name for marker in request.node.iter_markers("drives_hook") for name in marker.args]
    if not wanted:
        yield
        return
    from sesame_voice.app import plugins

    called: dict[str, set[str]] = {}
    original = plugins.PluginManager.__init__

    def monitored(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)

        def before(hook_name, hook_impls, kwargs) -> None:
            if hook_impls:
                called.setdefault(hook_name, set()).update(impl.plugin_name for impl in hook_impls)

        self.add_hookcall_monitoring(before, lambda *_: None)

    monkeypatch.setattr(plugins.PluginManager, "__init__", monitored)
    yield
    missing = [name for name in wanted if name not in called]
    assert not missing, f"test is marked drives_hook but never called {missing} (called: {sorted(called)})"
