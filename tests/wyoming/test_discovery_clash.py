"""Two servers with one ZEROCONF_NAME on a network: the second renames both its services alike."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from test_discovery import Watcher, advertising_server

from sesame_voice.app.discovery import HTTP_TYPE, clash_name
from sesame_voice_wyoming.frontend import SERVICE_TYPE as WYOMING_TYPE


@pytest.fixture
def zeroconf_name() -> str:
    return f"sv-clash-{uuid.uuid4().hex[:8]}"  # unique, so parallel runs on one host never clash


async def test_a_name_clash_renames_both_services_of_the_second_server_alike(start_server, zeroconf_name):
    watcher = Watcher()
    first_names = {t: f"{zeroconf_name}.{t}" for t in (HTTP_TYPE, WYOMING_TYPE)}
    second_names = {t: f"{zeroconf_name} (2).{t}" for t in (HTTP_TYPE, WYOMING_TYPE)}
    try:
        async with contextlib.AsyncExitStack() as servers:
            first, first_wyoming = await servers.enter_async_context(advertising_server(start_server, zeroconf_name))
            await watcher.wait_for(lambda: set(first_names.values()) <= set(watcher.present))
            second, second_wyoming = await servers.enter_async_context(advertising_server(start_server, zeroconf_name))
            await watcher.wait_for(lambda: set(second_names.values()) <= set(watcher.present))
            ours = {name for name in watcher.present if name.startswith(zeroconf_name)}
            assert ours == set(first_names.values()) | set(second_names.values())  # no third spelling
            for names, server, wyoming in (
                (first_names, first, first_wyoming),
                (second_names, second, second_wyoming),
            ):
                http = await watcher.resolve(HTTP_TYPE, names[HTTP_TYPE])
                assert http.port == server.http_port
                assert (await watcher.resolve(WYOMING_TYPE, names[WYOMING_TYPE])).port == wyoming.port
            assert {info.name for info in second.discovery.services.values()} == set(second_names.values())
    finally:
        await watcher.close()


def test_clash_names_count_up_within_a_dns_label():
    assert clash_name("sesame-voice", 1) == "sesame-voice"
    assert clash_name("sesame-voice", 2) == "sesame-voice (2)"
    long = clash_name("x" * 63, 12)
    assert long.endswith(" (12)") and len(long.encode()) == 63
