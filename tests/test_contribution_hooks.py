"""The hooks through which plugins contribute to the server: health fields, OpenAPI paths, zeroconf
properties, speech-to-text loading. Each is driven through a real plugin object."""

from __future__ import annotations

import pytest

from sesame_voice import hookimpl


class Contributor:
    """A plugin that contributes to every part of the server a plugin may add to."""

    def __init__(self) -> None:
        self.stt_loaded = 0

    @hookimpl
    def health_fields(self, server, report):
        return {"contributor": {"voices_seen": report["voices"]}}

    @hookimpl
    def openapi_paths(self, server):
        return {
            "/contributed": {"get": {"summary": "A contributed route", "responses": {"200": {"description": "ok"}}}}
        }

    @hookimpl
    def zeroconf_properties(self, server):
        return {"contributed": "yes"}

    @hookimpl
    def speech_to_text_loaded(self, server):
        self.stt_loaded += 1


class Broken:
    @hookimpl
    def health_fields(self, server, report):
        raise RuntimeError("a plugin bug")


@pytest.mark.drives_hook("health_fields", "openapi_paths", "zeroconf_properties", "speech_to_text_loaded")
async def test_plugins_contribute_through_hooks(start_server):
    contributor = Contributor()
    async with start_server(plugins=[contributor, Broken()], zeroconf_interfaces=("127.0.0.1",)) as server:
        health = server.health()  # the broken plugin is logged and skipped; the others still count
        assert health["contributor"] == {"voices_seen": health["voices"]}
        assert "/contributed" in server.openapi()["paths"]
        http = next(a for a in server.announcements() if a.service_type == "_http._tcp.local.")
        assert http.properties["contributed"] == "yes"
        await server.speech_to_text.preload()
        assert contributor.stt_loaded >= 1
