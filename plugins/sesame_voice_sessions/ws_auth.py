"""The API key on a WebSocket from a browser, which cannot set headers on one (issue 20).

A browser's ``new WebSocket(url, protocols)`` can only choose the ``Sec-WebSocket-Protocol``
header. Like OpenAI's Realtime API (``openai-insecure-api-key.KEY``), the session WebSocket takes
the key as one of the offered subprotocols: ``sesame-voice-key.`` followed by the key's UTF-8
bytes in unpadded base64url (so any key is a valid header token), offered together with the
protocol ``sesame-voice``, which is the one the server selects and echoes: the key is never sent
back, and it never rides in the URL, where access logs and proxies would keep it.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from aiohttp import hdrs, web

PROTOCOL = "sesame-voice"
"""The subprotocol the server selects; a client offering the key must offer it as well."""
KEY_PREFIX = "sesame-voice-key."
MAX_OFFERED = 8
"""Subprotocols looked at per request (the header's size is already capped by aiohttp)."""


def offered_protocols(request: web.BaseRequest) -> list[str]:
    """The subprotocols the client offered, in its order (at most MAX_OFFERED)."""
    offered = []
    for header in request.headers.getall(hdrs.SEC_WEBSOCKET_PROTOCOL, ()):
        offered.extend(token.strip() for token in header.split(",") if token.strip())
    return offered[:MAX_OFFERED]


def key_protocol(api_key: str) -> str:
    """The subprotocol token that carries ``api_key`` (what the studio's page sends)."""
    encoded = base64.urlsafe_b64encode(api_key.encode()).decode().rstrip("=")
    return KEY_PREFIX + encoded


def _decoded(token: str) -> bytes | None:
    encoded = token[len(KEY_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return None


def is_websocket_upgrade(request: web.BaseRequest) -> bool:
    return request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


def key_in_protocols(request: web.BaseRequest, api_key: str) -> bool:
    """Whether a WebSocket upgrade offers ``api_key`` as a ``sesame-voice-key.…`` subprotocol."""
    if not is_websocket_upgrade(request):
        return False
    expected = api_key.encode()
    for token in offered_protocols(request):
        if token.startswith(KEY_PREFIX):
            key = _decoded(token)
            if key is not None and hmac.compare_digest(key, expected):
                return True
    return False


def carries_key_without_protocol(request: web.BaseRequest) -> bool:
    """A key token offered without ``sesame-voice``: refused, so no protocol list holding a key is
    ever logged by the handshake (aiohttp logs the offer when it selects none) or echoed back."""
    offered = offered_protocols(request)
    return PROTOCOL not in offered and any(token.startswith(KEY_PREFIX) for token in offered)
