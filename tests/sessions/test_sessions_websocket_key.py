"""Issue 20: the session WebSocket takes the API key as a subprotocol, the one thing a browser can set.

A real server with API_KEY and a real aiohttp WebSocket client; the browser side (the studio's
Converse view, directly and behind a path-prefix proxy) is tests/studio/test_studio_browser.py.
"""

from __future__ import annotations

import json
import logging

import aiohttp
import pytest

from sesame_voice.http.ws_keys import SESAME_PROTOCOL as PROTOCOL
from sesame_voice.http.ws_keys import key_protocol

KEY = "s3cret/key+with=odd chars é"
"""Not a valid header token as it is: the subprotocol carries it base64url-encoded."""


@pytest.fixture
async def protected(start_sessions):
    async with start_sessions(api_key=KEY) as server:
        yield server


async def _session(client: aiohttp.ClientSession, url: str) -> str:
    async with client.post(f"{url}/v1/sessions", json={}, headers={"Authorization": f"Bearer {KEY}"}) as response:
        assert response.status == 201
        return (await response.json())["id"]


async def test_the_key_as_a_subprotocol_opens_the_socket_and_is_never_echoed(protected, caplog):
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{protected.http_port}"
    async with aiohttp.ClientSession() as client:
        sid = await _session(client, url)
        async with client.ws_connect(f"{url}/v1/sessions/{sid}/ws", protocols=(PROTOCOL, key_protocol(KEY))) as ws:
            assert ws.protocol == PROTOCOL  # the server selects sesame-voice, never the key token
            welcome = json.loads((await ws.receive(timeout=30)).data)
            assert welcome["type"] == "welcome" and welcome["session_id"] == sid
            await ws.send_json({"type": "add_turn", "text": "Hello there.", "speaker": 1})
            assert json.loads((await ws.receive(timeout=30)).data)["type"] == "turn_added"
    encoded = key_protocol(KEY).split(".", 1)[1]
    assert KEY not in caplog.text and encoded not in caplog.text


async def test_a_websocket_without_the_right_key_is_refused_before_the_upgrade(protected):
    url = f"http://127.0.0.1:{protected.http_port}"
    async with aiohttp.ClientSession() as client:
        sid = await _session(client, url)
        ws_url = f"{url}/v1/sessions/{sid}/ws"
        for protocols in ((), (PROTOCOL,), (PROTOCOL, key_protocol("wrong")), (PROTOCOL, "sesame-voice-key.%%%")):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(ws_url, protocols=protocols)
            assert refused.value.status == 401, protocols
        # The key in a query string is not a way in (it would land in logs).
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(ws_url, params={"api_key": KEY})
        assert refused.value.status == 401
        # The plain answer is the API's 401 JSON.
        upgrade = {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Protocol": PROTOCOL,
        }
        async with client.get(ws_url, headers=upgrade) as response:
            assert response.status == 401 and (await response.json())["code"] == "invalid_api_key"
        # Headers still work for clients that can set them.
        async with client.ws_connect(ws_url, headers={"Authorization": f"Bearer {KEY}"}) as ws:
            assert json.loads((await ws.receive(timeout=30)).data)["type"] == "welcome"


async def test_a_key_offered_without_the_sesame_voice_protocol_is_a_400(protected, caplog):
    """Else the handshake would select nothing and log the offered list, key included."""
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{protected.http_port}"
    async with aiohttp.ClientSession() as client:
        sid = await _session(client, url)
        upgrade = {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Protocol": key_protocol(KEY),
        }
        async with client.get(f"{url}/v1/sessions/{sid}/ws", headers=upgrade) as response:
            assert response.status == 400 and (await response.json())["code"] == "websocket_protocol"
    assert key_protocol(KEY) not in caplog.text
