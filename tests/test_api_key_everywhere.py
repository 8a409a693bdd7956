"""Issue 18: with API_KEY set, every route takes the key in the same headers and refuses without it.

A real server with the installed plugins. The HTTP test walks every operation of the served
/openapi.json (and checks the document lists every route the server serves); the WebSocket test
opens every WebSocket route with real clients (aiohttp, websockets, the ``openai`` SDK's realtime
client) by header and, as browsers must, by subprotocol. A refusal is a 401 in the route's own
error shape; the key never reaches the server's log. The public exceptions are docs/security.md's.
"""

from __future__ import annotations

import json
import logging
import re

import aiohttp
import pytest

from sesame_voice.http.ws_keys import SESAME_PROTOCOL, key_protocol

KEY = "sk-local-s3cret_key"
OPENAI_KEY_PREFIX = "openai-insecure-api-key."  # what the openai JavaScript SDK offers in a browser
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/studio/{name}"),
}
"""Reachable without the key (docs/security.md); GET / with Accept: text/html (the studio page) too."""
WEBSOCKETS = {"/v1/realtime", "/ws", "/ws/{session_id}", "/v1/sessions/{session_id}/ws"}
FASTAPI_SHAPED = ("/v1/sessions", "/tts", "/generate", "/api/v1/generate", "/csm/generate", "/voices", "/ws")
"""Routes answering in the older servers' shape ``{"detail", "code"}``; the rest use OpenAI's ``{"error": {…}}``."""
PATH_VALUES = {"name": "app.js", "session_id": "no-such-session"}
HEADER_FORMS = {"bearer": {"Authorization": f"Bearer {KEY}"}, "x-api-key": {"X-API-Key": KEY}}
REFUSED_FORMS = {
    "none": {},
    "wrong bearer": {"Authorization": "Bearer wrong"},
    "wrong x-api-key": {"X-API-Key": "wrong"},
    "basic": {"Authorization": f"Basic {KEY}"},
}
METHODS = {"get", "post", "put", "patch", "delete"}
CLIENT_LOGGERS = ("websockets.client", "openai", "httpx", "httpcore", "aiohttp.client")
"""The test's own clients, which log what they send at DEBUG; every other record is the server's."""
UNDOCUMENTED = {("GET", "/openapi.json")}
"""Served, walked too, but not in the document it serves."""


@pytest.fixture
async def protected(start_server):
    settings = {"legacy": {"voice": "joe"}, "sessions": {"voice": "joe"}}
    async with start_server(api_key=KEY, default_voice="joe", plugin_settings=settings) as server:
        yield server


def _server_log(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS))


def _code_in_shape(path: str, body: dict) -> str:
    """The error's ``code``, asserting the body is in the shape ``path``'s API answers in."""
    if path == "/" or path.startswith(FASTAPI_SHAPED):
        assert set(body) == {"detail", "code"}, (path, body)
        return body["code"]
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, (path, body)
    return body["error"]["code"]


def _concrete(path: str) -> str:
    """``path`` with each ``{parameter}`` filled (``PATH_VALUES``, else a name nothing has)."""
    return re.sub(r"\{(\w+)\}", lambda match: PATH_VALUES.get(match[1], "no-such-thing"), path)


def _operations(document: dict) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in document["paths"].items() for m in item if m in METHODS}


async def test_every_http_route_takes_both_headers_and_refuses_without_the_key(protected, caplog):
    caplog.set_level(logging.DEBUG)
    base = f"http://127.0.0.1:{protected.http_port}"
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{base}/openapi.json", headers=HEADER_FORMS["bearer"]) as response:
            document = await response.json()
        operations = _operations(document)
        served = {
            (route.method, route.resource.canonical)
            for route in protected.app.router.routes()
            if route.method in {m.upper() for m in METHODS}
        }
        assert served == operations | UNDOCUMENTED, "every route the server serves is in /openapi.json, and only those"
        assert {path for _, path in operations} >= WEBSOCKETS
        checked = 0
        for method, path in sorted(operations | UNDOCUMENTED):
            # A WebSocket route is asked here as plain HTTP (400 with the key); opened for real below.
            url = base + _concrete(path)
            for form, headers in REFUSED_FORMS.items():
                async with client.request(method, url, headers=headers) as response:
                    if (method, path) in PUBLIC:
                        assert response.status != 401, (method, path, form)
                        continue
                    assert response.status == 401, (method, path, form)
                    assert _code_in_shape(path, await response.json()) == "invalid_api_key", (method, path)
            for form, headers in HEADER_FORMS.items():
                async with client.request(method, url, headers=headers) as response:
                    documented = document["paths"].get(path, {}).get(method.lower(), {}).get("responses", {})
                    assert response.status != 401, (method, path, form)
                    assert response.status < 500 or str(response.status) in documented, (method, path, response.status)
            checked += 1
    assert checked >= 20, f"only {checked} HTTP operations walked"
    assert KEY not in _server_log(caplog)


async def test_the_studio_page_is_public_and_its_data_is_not(protected):
    base = f"http://127.0.0.1:{protected.http_port}"
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{base}/", headers={"Accept": "text/html"}) as response:
            assert response.status == 200 and response.content_type == "text/html"
        async with client.get(f"{base}/studio/info", headers={"Accept": "text/html"}) as response:
            assert response.status == 401


async def _refused(client: aiohttp.ClientSession, url: str, path: str, *, protocols=(), headers=None) -> tuple:
    """Status and error code of a WebSocket upgrade that must not succeed, read as plain HTTP."""
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        **({"Sec-WebSocket-Protocol": ", ".join(protocols)} if protocols else {}),
        **(headers or {}),
    }
    async with client.get(url, headers=upgrade) as response:
        assert response.status != 101, (path, protocols, headers)
        return response.status, _code_in_shape(path, await response.json())


async def test_every_websocket_takes_the_key_by_header_and_by_subprotocol(protected, caplog):
    caplog.set_level(logging.DEBUG)
    base = f"http://127.0.0.1:{protected.http_port}"
    async with aiohttp.ClientSession() as client:
        async with client.post(f"{base}/v1/sessions", json={}, headers=HEADER_FORMS["bearer"]) as response:
            session_id = (await response.json())["id"]
        conversation = {
            "/ws": "/ws",
            "/ws/{session_id}": f"/ws/{session_id}",
            "/v1/sessions/{session_id}/ws": f"/v1/sessions/{session_id}/ws",
        }
        for path, route in conversation.items():
            url = base + route
            for form, headers in REFUSED_FORMS.items():
                assert await _refused(client, url, path, headers=headers) == (401, "invalid_api_key"), (path, form)
            for protocols in ((SESAME_PROTOCOL,), (SESAME_PROTOCOL, key_protocol("wrong"))):
                assert await _refused(client, url, path, protocols=protocols) == (401, "invalid_api_key")
            # The key without the protocol the server selects: refused before the handshake could log it.
            assert await _refused(client, url, path, protocols=(key_protocol(KEY),)) == (400, "websocket_protocol")
            for offer in (
                {"headers": HEADER_FORMS["bearer"]},
                {"headers": HEADER_FORMS["x-api-key"]},
                {"protocols": (SESAME_PROTOCOL, key_protocol(KEY))},
            ):
                async with client.ws_connect(url, **offer) as ws:
                    welcome = json.loads((await ws.receive(timeout=60)).data)
                    assert welcome["type"] == "welcome", (path, offer)
                    if "protocols" in offer:
                        assert ws.protocol == SESAME_PROTOCOL  # never the key token

        url = f"{base}/v1/realtime?model=gpt-realtime"
        for form, headers in REFUSED_FORMS.items():
            assert await _refused(client, url, "/v1/realtime", headers=headers) == (401, "invalid_api_key"), form
        wrong = ("realtime", OPENAI_KEY_PREFIX + "wrong")
        assert await _refused(client, url, "/v1/realtime", protocols=wrong) == (401, "invalid_api_key")
        without = (OPENAI_KEY_PREFIX + KEY, "openai-beta.realtime-v1")
        assert await _refused(client, url, "/v1/realtime", protocols=without) == (400, "websocket_protocol")
        async with client.ws_connect(url, headers=HEADER_FORMS["x-api-key"]) as ws:
            assert json.loads((await ws.receive(timeout=60)).data)["type"] == "session.created"
        # What the 400 above prevents: an offer the handshake cannot select is logged, token by token.
        async with client.ws_connect(url, headers=HEADER_FORMS["bearer"], protocols=("openai-beta.realtime-v1",)) as ws:
            assert ws.protocol is None
            assert json.loads((await ws.receive(timeout=60)).data)["type"] == "session.created"
    assert "openai-beta.realtime-v1" in _server_log(caplog)
    assert KEY not in _server_log(caplog)


@pytest.mark.parametrize(
    "protocols",
    [
        ["realtime", OPENAI_KEY_PREFIX + KEY],  # the openai JavaScript SDK in a browser (GA)
        ["realtime", OPENAI_KEY_PREFIX + KEY, "openai-beta.realtime-v1"],  # its beta form, still common
    ],
)
async def test_realtime_takes_openais_browser_subprotocols(protected, caplog, protocols):
    from websockets.asyncio.client import connect

    caplog.set_level(logging.DEBUG)
    url = f"ws://127.0.0.1:{protected.http_port}/v1/realtime?model=gpt-realtime"
    async with connect(url, subprotocols=protocols) as ws:
        assert ws.subprotocol == "realtime"
        assert json.loads(await ws.recv())["type"] == "session.created"
    assert KEY not in _server_log(caplog)


async def test_the_openai_sdk_realtime_client_sends_its_api_key(protected, caplog):
    from openai import AsyncOpenAI, AuthenticationError

    caplog.set_level(logging.DEBUG)
    base = f"http://127.0.0.1:{protected.http_port}/v1"
    client = AsyncOpenAI(base_url=base, api_key=KEY, max_retries=0)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        assert (await connection.recv()).type == "session.created"
        await connection.session.update(session={"type": "realtime", "instructions": "Be brief."})
        while (event := await connection.recv()).type != "session.updated":
            pass
        assert event.session.instructions == "Be brief."
    assert KEY not in _server_log(caplog)

    from websockets.exceptions import InvalidStatus

    wrong = AsyncOpenAI(base_url=base, api_key="wrong", max_retries=0)
    with pytest.raises((InvalidStatus, AuthenticationError)) as refused:
        async with wrong.realtime.connect(model="gpt-realtime") as connection:
            await connection.recv()
    assert "401" in str(refused.value)
