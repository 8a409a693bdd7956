"""Honest exposure: the defaults keep the keyless HTTP API on this machine, and the log says who can reach what."""

from __future__ import annotations

from sesame_voice.api.frontend import advertisable, reach
from sesame_voice.config import Settings


def test_the_http_api_listens_on_this_machine_only_by_default():
    assert Settings().host == "127.0.0.1"


def test_reach_in_words():
    assert reach("127.0.0.1") == reach("::1") == reach("localhost") == "this machine only"
    assert reach("0.0.0.0").startswith("every network interface") and reach("::").startswith("every network")
    assert reach("192.168.1.5") == "the network of 192.168.1.5"


def test_a_loopback_listener_is_not_advertised_on_the_lan():
    assert not advertisable("127.0.0.1", Settings())
    assert advertisable("0.0.0.0", Settings())
    assert advertisable("127.0.0.1", Settings(zeroconf_interfaces=("127.0.0.1",)))  # zeroconf on loopback too


async def test_the_start_up_report_says_what_is_reachable_from_where(start_server):
    async with start_server(
        zeroconf_interfaces=(), plugin_settings={"wyoming": {"uri": "tcp://127.0.0.1:0"}}
    ) as server:
        lines = server.exposure()
        assert lines[0].startswith(f"HTTP API on http://127.0.0.1:{server.http_port}: this machine only; no API key")
        assert any(line.startswith("Wyoming on tcp://127.0.0.1:") and "no authentication" in line for line in lines)
        assert lines[-1] == "zeroconf: off"
        assert [a.service_type for a in server.announcements()] == []  # nothing the LAN could reach
    async with start_server(
        api_key="k", host="0.0.0.0", zeroconf_interfaces=(), plugin_settings={"wyoming": {"enabled": False}}
    ) as server:
        lines = server.exposure()
        assert "every network interface" in lines[0] and lines[0].endswith("API key required")
        assert [a.service_type for a in server.announcements()] == ["_http._tcp.local."]
