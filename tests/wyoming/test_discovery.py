"""Zeroconf advertising and browsing, bound to 127.0.0.1 only (nothing leaves the loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
import uuid

import pytest
from zeroconf import ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from fakes import FakePlugin, ToneProvider
from sesame_voice import Announcement
from sesame_voice.app.discovery import (
    HTTP_TYPE,
    Discovery,
    advertised_addresses,
    browse,
    host_name,
    instance_name,
    lan_addresses,
)
from sesame_voice_wyoming import WyomingFrontend
from sesame_voice_wyoming.frontend import SERVICE_TYPE as WYOMING_TYPE

LOOPBACK = ["127.0.0.1"]


class Watcher:
    """A zeroconf browser on the loopback that remembers what it saw, and resolves TXT/port."""

    def __init__(self) -> None:
        self.zeroconf = AsyncZeroconf(interfaces=LOOPBACK)
        self.present: dict[str, str] = {}
        self.removed: set[str] = set()
        self.browser = AsyncServiceBrowser(self.zeroconf.zeroconf, [HTTP_TYPE, WYOMING_TYPE], handlers=[self._on])

    def _on(self, zeroconf, service_type, name, state_change) -> None:
        if state_change is ServiceStateChange.Removed:
            self.present.pop(name, None)
            self.removed.add(name)
        else:
            self.present[name] = service_type

    async def wait_for(self, condition, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out; present: {self.present}"
            await asyncio.sleep(0.05)

    async def resolve(self, service_type: str, name: str) -> AsyncServiceInfo:
        info = AsyncServiceInfo(service_type, name)
        assert await info.async_request(self.zeroconf.zeroconf, 3000)
        return info

    async def close(self) -> None:
        await self.browser.async_cancel()
        await self.zeroconf.async_close()


@pytest.fixture
async def watcher():
    watching = Watcher()
    yield watching
    await watching.close()


def txt(info: AsyncServiceInfo) -> dict[str, str]:
    return {k.decode(): (v or b"").decode() for k, v in info.properties.items()}


@pytest.fixture
def zeroconf_name() -> str:
    return f"sv-test-{uuid.uuid4().hex[:8]}"  # unique, so parallel runs on one host never clash


@contextlib.asynccontextmanager
async def advertising_server(start_server, name: str):
    plugins = [FakePlugin(ToneProvider)]
    overrides = dict(zeroconf_enabled=True, zeroconf_name=name, zeroconf_interfaces=("127.0.0.1",))
    async with start_server(plugins=plugins, default_voice="tone", disabled_plugins=("piper",), **overrides) as server:
        yield server, next(f for f in server.frontends if f.name == "wyoming")


@pytest.mark.drives_hook("voices_changed")  # the Wyoming plugin re-advertises its voice count
async def test_both_services_are_found_updated_and_withdrawn(start_server, watcher, voices_dir, zeroconf_name):
    http_name, wyoming_name = f"{zeroconf_name}.{HTTP_TYPE}", f"{zeroconf_name}.{WYOMING_TYPE}"
    async with advertising_server(start_server, zeroconf_name) as (server, frontend):
        await watcher.wait_for(lambda: http_name in watcher.present and wyoming_name in watcher.present)

        http = await watcher.resolve(HTTP_TYPE, http_name)
        assert http.port == server.http_port and http.parsed_addresses() == ["127.0.0.1"]
        assert txt(http)["path"] == "/v1" and txt(http)["default_voice"] == "tone" and txt(http)["version"]
        wyoming = await watcher.resolve(WYOMING_TYPE, wyoming_name)
        assert wyoming.port == frontend.port and wyoming.parsed_addresses() == ["127.0.0.1"]
        assert wyoming.server == http.server == host_name()  # <hostname>.local., not the instance name
        count = len(server.voices.list())
        assert txt(wyoming)["voices"] == str(count)

        (voices_dir / "added.yaml").write_text("provider: tone\ndescription: Added while advertising\n")
        await watcher.wait_for(
            lambda: (
                server.discovery.services[(WYOMING_TYPE, zeroconf_name)].properties.get(b"voices")
                == str(count + 1).encode()
            )
        )
        deadline = time.monotonic() + 10
        while txt(await watcher.resolve(WYOMING_TYPE, wyoming_name))["voices"] != str(count + 1):
            assert time.monotonic() < deadline, "browser never saw the new TXT record"
            await asyncio.sleep(0.2)
    await watcher.wait_for(lambda: {http_name, wyoming_name} <= watcher.removed)
    assert http_name not in watcher.present and wyoming_name not in watcher.present


async def test_browse_lists_our_http_api_and_wyoming_tts(start_server, zeroconf_name):
    async with advertising_server(start_server, zeroconf_name) as (server, frontend):
        found = await browse(timeout=2.0, interfaces=LOOPBACK, peers={WYOMING_TYPE: WyomingFrontend.describe_peer})
    mine = {entry["type"]: entry for entry in found if entry["name"] == zeroconf_name}
    assert set(mine) == {HTTP_TYPE, WYOMING_TYPE}
    assert mine[HTTP_TYPE]["port"] == server.http_port and mine[HTTP_TYPE]["addresses"] == ["127.0.0.1"]
    assert mine[HTTP_TYPE]["properties"]["default_voice"] == "tone"
    assert mine[WYOMING_TYPE]["port"] == frontend.port
    assert "tone" in mine[WYOMING_TYPE]["tts_voices"]


async def test_discovery_registers_updates_and_stops():
    """The Discovery class on its own: a second name, TXT changes, a withdrawn service."""
    from sesame_voice.config import load_settings

    name = f"sv-unit-{uuid.uuid4().hex[:8]}"
    settings = load_settings(env={}, dotenv_file=None, zeroconf_name=name, zeroconf_interfaces=("127.0.0.1",))
    discovery = Discovery(settings)
    watcher = Watcher()
    try:
        await discovery.start([Announcement(HTTP_TYPE, 1234, {"default_voice": "a"})])
        await discovery.update(
            [Announcement(HTTP_TYPE, 1234, {"default_voice": "b"}), Announcement(WYOMING_TYPE, 10200, {}, "other")]
        )
        assert set(discovery.services) == {(HTTP_TYPE, name), (WYOMING_TYPE, "other")}
        await watcher.wait_for(lambda: f"other.{WYOMING_TYPE}" in watcher.present)
        assert txt(await watcher.resolve(HTTP_TYPE, f"{name}.{HTTP_TYPE}"))["default_voice"] == "b"
        await discovery.update([Announcement(HTTP_TYPE, 1234, {"default_voice": "b"})])
        await watcher.wait_for(lambda: f"other.{WYOMING_TYPE}" in watcher.removed)
    finally:
        await discovery.stop()
        await discovery.stop()  # idempotent
        await watcher.close()


def test_addresses_are_the_configured_ones_or_real_lan_addresses():
    assert advertised_addresses(("127.0.0.1", "::1", "127.0.0.1")) == ["127.0.0.1", "::1"]
    for address in lan_addresses():  # enumeration only: nothing is sent
        ip = ipaddress.ip_address(address)
        assert not (ip.is_loopback or ip.is_unspecified or ip.is_link_local)
    assert advertised_addresses(()) == lan_addresses()


def test_the_host_is_this_machine_under_local():
    assert host_name("kitchen.example.com") == "kitchen.local."
    assert host_name("my_box (2)") == "my-box-2.local."
    assert host_name("") == "sesame-voice.local."


def test_instance_names_are_valid_dns_labels():
    assert instance_name("kitchen.voice") == "kitchen-voice"
    assert instance_name("  living   room ") == "living room"
    assert len(instance_name("x" * 100).encode()) == 63
    assert instance_name("") == "sesame-voice"
