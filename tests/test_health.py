"""/health says what is wrong: degraded, with the reasons, when the server cannot speak its default voice."""

from __future__ import annotations

from fakes import FakePlugin, UnloadableProvider
from sesame_voice.testing import LOOPBACK, SesameClient


def _client(server) -> SesameClient:
    return SesameClient(f"http://{LOOPBACK}:{server.http_port}", server.settings.api_key)


async def test_a_misspelled_default_voice_is_degraded_with_the_reason(start_server):
    async with start_server(default_voice="conversatonal", disabled_plugins=("legacy",)) as server:
        status, health = await _client(server).get_json("/health")
        assert status == 200 and health["status"] == "degraded"
        assert "'conversatonal' does not exist" in health["problems"][0]


async def test_the_old_clients_status_agrees_with_the_core(start_server):
    async with start_server(default_voice="conversatonal") as server:
        _, health = await _client(server).get_json("/health")
        assert health["status"] == "unhealthy" and health["problems"]


async def test_health_names_no_problem_when_the_default_voice_speaks(start_server):
    async with start_server(disabled_plugins=("legacy",)) as server:
        _, health = await _client(server).get_json("/health")
        assert health["status"] == "ok" and health["problems"] == []


async def test_a_default_voice_no_provider_can_speak_is_degraded(start_server):
    async with start_server(
        plugins=[FakePlugin(UnloadableProvider)], entry_points=False, default_voice="needs-fallback", preload=False
    ) as server:
        server.providers["unloadable"].state = "failed"
        health = server.health()
        assert health["status"] == "degraded"
        assert "no provider can speak the default voice 'needs-fallback'" in health["problems"][0]
