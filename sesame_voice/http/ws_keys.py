"""The API key offered as a WebSocket subprotocol, for browsers, which cannot set headers on one.

A browser's ``new WebSocket(url, protocols)`` chooses only the ``Sec-WebSocket-Protocol`` header,
so every WebSocket route also takes the key as one of the offered subprotocols, in two forms:

- ``sesame-voice-key.`` + the key's UTF-8 bytes in unpadded base64url (any key is a valid header
  token that way), offered beside ``sesame-voice``: the session and legacy conversation sockets;
- any ``NAME-api-key.`` + the key as it is (``RAW_KEY_SUFFIX``): the form OpenAI's browser SDK
  sends to ``/v1/realtime`` (``openai-insecure-api-key.KEY`` beside ``realtime``).

``authorised`` (routes.py) accepts either form on a WebSocket upgrade. A route selects its own
protocol (``sesame-voice``, the Realtime plugin's ``realtime``), never the key token, so the key is never echoed back;
``refuse_key_without(request, protocol)`` is called before the handshake, because aiohttp logs
the whole offered list when it can select nothing. The key never rides in the URL.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re

from aiohttp import hdrs, web

from sesame_voice.api.errors import InvalidRequest

SESAME_PROTOCOL = "sesame-voice"
"""What the conversation sockets select; a client offering a ``sesame-voice-key.`` offers it too."""
SESAME_KEY_PREFIX = "sesame-voice-key."
RAW_KEY_SUFFIX = "-api-key."
"""A token ``NAME-api-key.KEY`` carries the key as it is (NAME: lowercase letters and hyphens)."""
_RAW_KEY_TOKEN = re.compile(r"[a-z][a-z-]*" + re.escape(RAW_KEY_SUFFIX) + r"(.+)", re.DOTALL)
MAX_KEY_TOKENS = 8
"""Key tokens compared per request (the header's size is already capped by aiohttp)."""


def offered_protocols(request: web.BaseRequest) -> list[str]:
    """Every subprotocol the client offered, in its order, over all ``Sec-WebSocket-Protocol`` headers."""
    offered = []
    for header in request.headers.getall(hdrs.SEC_WEBSOCKET_PROTOCOL, ()):
        offered.extend(token.strip() for token in header.split(",") if token.strip())
    return offered


def key_protocol(api_key: str) -> str:
    """The ``sesame-voice-key.…`` token that carries ``api_key`` (what the studio's page sends)."""
    return SESAME_KEY_PREFIX + base64.urlsafe_b64encode(api_key.encode()).decode().rstrip("=")


def is_websocket_upgrade(request: web.BaseRequest) -> bool:
    return request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


def _key_of(token: str) -> bytes | None:
    """The key a token carries, or None (not a key token, or base64 that does not decode)."""
    if not token.startswith(SESAME_KEY_PREFIX):
        raw = _RAW_KEY_TOKEN.fullmatch(token)
        return raw.group(1).encode() if raw else None
    encoded = token[len(SESAME_KEY_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return None


def _key_tokens(request: web.BaseRequest) -> list[str]:
    return [token for token in offered_protocols(request) if _is_key_token(token)]


def _is_key_token(token: str) -> bool:
    return token.startswith(SESAME_KEY_PREFIX) or _RAW_KEY_TOKEN.fullmatch(token) is not None


def key_in_protocols(request: web.BaseRequest, api_key: str) -> bool:
    """Whether a WebSocket upgrade offers ``api_key`` as a subprotocol (either form)."""
    if not api_key or not is_websocket_upgrade(request):
        return False
    expected = api_key.encode()
    for token in _key_tokens(request)[:MAX_KEY_TOKENS]:
        key = _key_of(token)
        if key is not None and hmac.compare_digest(key, expected):
            return True
    return False


def refuse_key_without(request: web.BaseRequest, protocol: str) -> None:
    """InvalidRequest ``websocket_protocol`` when a key token is offered but ``protocol`` is not
    one the handshake will select: else it would select nothing and log the offer, key included.

    aiohttp reads only the first ``Sec-WebSocket-Protocol`` header, so ``protocol`` must be there."""
    if not _key_tokens(request):
        return
    first = request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL, "")
    if protocol not in (token.strip() for token in first.split(",")):
        raise InvalidRequest(f"offer the {protocol!r} subprotocol along with the key", code="websocket_protocol")
