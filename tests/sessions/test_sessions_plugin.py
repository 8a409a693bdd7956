"""Sessions as a plugin: the service it registers, its settings, its absence, and one status per session error."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import aiohttp
import pytest
from conversation_fakes import GatedProvider

from sesame_voice.config import Settings, load_settings
from sesame_voice_sessions import SessionService, SessionSettings

UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}
SESSION_ENV = {
    "SESSION_IDLE_SECONDS": "10",
    "MAX_SESSIONS": "5",
    "SESSION_MAX_TURNS": "7",
    "SESSION_MAX_AUDIO_SECONDS": "9.5",
    "SESSION_OVERFLOW": "refuse",
    "SESSIONS_PERSIST": "yes",
}


async def _call(method: str, url: str, **kwargs) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as client:
        async with client.request(method, url, **kwargs) as response:
            return response.status, dict(response.headers), await response.read()


async def _json(method: str, url: str, **kwargs) -> tuple[int, dict]:
    status, _, body = await _call(method, url, **kwargs)
    return status, json.loads(body) if body else {}


@pytest.mark.drives_hook("register_services", "openapi_paths")
async def test_the_plugin_offers_the_sessions_service_and_reports_its_count(start_sessions):
    async with start_sessions() as server:
        sessions = server.service("sessions")
        assert isinstance(sessions, SessionService)
        url = f"http://127.0.0.1:{server.http_port}"
        assert (await _json("GET", f"{url}/health"))[1]["sessions"] == 0
        session = await sessions.create(session_id="from-a-plugin")
        await sessions.add_turn(session.id, text="Hello from another plugin.")
        status, health = await _json("GET", f"{url}/health")
        assert status == 200 and health["sessions"] == 1
        status, listed = await _json("GET", f"{url}/v1/sessions/from-a-plugin")  # the REST API sees it
        assert status == 200 and [t["text"] for t in listed["turns"]] == ["Hello from another plugin."]
        _, document = await _json("GET", f"{url}/openapi.json")
        schema = document["paths"]["/v1/audio/speech"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert schema["properties"]["session"]["enum"] == ["from-a-plugin"]
        assert "/v1/sessions/{session_id}/turns" in document["paths"]


async def test_without_the_plugin_sessions_answer_a_clear_400_and_speech_still_works(start_sessions):
    from openai import AsyncOpenAI, BadRequestError

    async with start_sessions(disabled_plugins=("sessions",)) as server:
        assert server.service("sessions") is None
        url = f"http://127.0.0.1:{server.http_port}"
        status, health = await _json("GET", f"{url}/health")
        assert status == 200 and "sessions" not in health
        async with AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
            with pytest.raises(BadRequestError) as caught:
                await client.audio.speech.create(
                    model="csm-1b", voice="recorder", input="Hi.", extra_body={"session": "any"}
                )
            assert caught.value.body["code"] == "sessions_not_enabled"
            assert "sessions plugin" in caught.value.body["message"]
            spoken = await client.audio.speech.with_raw_response.create(
                model="csm-1b", voice="recorder", input="Plain speech still works.", response_format="wav"
            )
            assert spoken.headers["X-Sesame-Provider"] == "recorder"
        for path in ("/ws", "/ws/some-id"):  # the legacy plugin's routes, in its error shape
            status, error = await _json("GET", f"{url}{path}", headers=UPGRADE)
            assert (status, error["code"]) == (400, "sessions_not_enabled") and "sessions plugin" in error["detail"]
        assert (await _call("GET", f"{url}/v1/sessions"))[0] == 404  # no such route
        _, document = await _json("GET", f"{url}/openapi.json")
        schema = document["paths"]["/v1/audio/speech"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert "session" not in schema["properties"] and "/v1/sessions" not in document["paths"]


async def test_session_errors_have_one_status_on_every_surface(url, sessions):
    from openai import AsyncOpenAI, ConflictError, NotFoundError

    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
        # Unknown: 404 over REST, the OpenAI extension, both WebSocket routes (before the upgrade).
        assert (await _json("GET", f"{url}/v1/sessions/nope"))[1]["code"] == "session_not_found"
        for path in ("/v1/sessions/nope/ws", "/ws/nope", "/ws?session=nope"):
            status, error = await _json("GET", f"{url}{path}", headers=UPGRADE)
            assert (status, error["code"]) == (404, "session_not_found"), path
        with pytest.raises(NotFoundError) as unknown:
            await client.audio.speech.create(
                model="csm-1b", voice="recorder", input="x", extra_body={"session": "nope"}
            )
        assert unknown.value.status_code == 404 and unknown.value.body["code"] == "session_not_found"

        # Busy: 409 over REST and the OpenAI extension while the session speaks elsewhere.
        session = await sessions.create(voice="gated")
        speaking = asyncio.create_task(_call("POST", f"{url}/v1/sessions/{session.id}/speak", json={"text": "Hold."}))
        try:
            while not (await sessions.get(session.id)).speaking:
                await asyncio.sleep(0.02)
            status, error = await _json("POST", f"{url}/v1/sessions/{session.id}/speak", json={"text": "Me too."})
            assert (status, error["code"]) == (409, "session_busy")
            with pytest.raises(ConflictError) as busy:
                await client.audio.speech.create(
                    model="csm-1b", voice="gated", input="Me too.", extra_body={"session": session.id}
                )
            assert busy.value.status_code == 409 and busy.value.body["code"] == "session_busy"
        finally:
            GatedProvider.gate.set()
            status, headers, _ = await speaking
        assert status == 200 and headers["Content-Type"] == "audio/wav"
        assert len((await sessions.get(session.id)).turns) == 1  # the held speech joined the history


async def test_session_limit_is_409_over_rest_and_the_legacy_websocket(start_sessions):
    async with start_sessions(sessions={"max_sessions": 1}) as server:
        url = f"http://127.0.0.1:{server.http_port}"
        assert (await _json("POST", f"{url}/v1/sessions"))[0] == 201
        status, error = await _json("POST", f"{url}/v1/sessions")
        assert (status, error["code"]) == (409, "session_limit")
        status, error = await _json("GET", f"{url}/ws", headers=UPGRADE)
        assert (status, error["code"]) == (409, "session_limit")


def test_settings_keep_their_environment_names_and_take_the_table_and_set(monkeypatch):
    from sesame_voice.app.cli import _settings, build_parser

    core = {f.name for f in dataclasses.fields(Settings)}
    assert (
        not {
            "session_idle_seconds",
            "max_sessions",
            "session_max_turns",
            "session_max_audio_seconds",
            "session_overflow",
            "sessions_persist",
        }
        & core
    )  # no longer core settings
    options = SessionSettings.from_settings(load_settings(env=SESSION_ENV, dotenv_file=None))
    assert (
        options.idle_seconds,
        options.max_sessions,
        options.max_turns,
        options.max_audio_seconds,
        options.overflow,
        options.persist,
    ) == (10.0, 5, 7, 9.5, "refuse", True)
    for name in (*SESSION_ENV, "SESAME_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    args = build_parser().parse_args(["serve", "--set", "sessions.max_sessions=3", "--set", "sessions.persist=on"])
    options = SessionSettings.from_settings(_settings(args))
    assert (options.max_sessions, options.persist, options.max_turns) == (3, True, 200)
    monkeypatch.setenv("MAX_SESSIONS", "4")  # the environment wins over the table, as for every plugin
    assert SessionSettings.from_settings(_settings(args)).max_sessions == 4


@pytest.mark.drives_hook("env_names")
def test_service_install_passes_the_session_env_names_on(tmp_path):
    from sesame_voice.app.service import service_environment

    environ = {"MAX_SESSIONS": "4", "SESSIONS_PERSIST": "true", "SHELL": "/bin/zsh"}
    settings = load_settings(env={}, dotenv_file=None, cache_dir=tmp_path, voices_dir=tmp_path)
    env = service_environment(settings, environ=environ)
    assert env["MAX_SESSIONS"] == "4" and env["SESSIONS_PERSIST"] == "true" and "SHELL" not in env
    settings.disabled_plugins = ("sessions",)
    assert "MAX_SESSIONS" not in service_environment(settings, environ=environ)
