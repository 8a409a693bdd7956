"""Reading Wyoming events defensively: size limits, and malformed input reported, not swallowed."""

from __future__ import annotations

import asyncio
import json

from wyoming.event import Event

MAX_DATA_BYTES = 1 << 20
"""Largest ``data`` block accepted; TTS requests carry text only."""
MAX_PAYLOAD_BYTES = 4 << 20


class MalformedEvent(ValueError):
    """The bytes on the wire are not a Wyoming event; the connection cannot be resynchronised."""


def _length(header: dict, key: str, limit: int) -> int:
    value = header.get(key) or 0
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise MalformedEvent(f"{key} must be an integer from 0 to {limit}, got {value!r}")
    return value


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """The next event, or None when the peer closed the connection (even mid-event).

    Unlike ``wyoming.event.async_read_event`` this raises ``MalformedEvent`` for garbage, so the
    client can be told why it is being disconnected.
    """
    try:
        line = await reader.readline()
    except ValueError:  # longer than the reader's limit (64 KiB)
        raise MalformedEvent("event header line is too long") from None
    if not line.endswith(b"\n"):
        return None  # EOF, possibly in the middle of a line
    try:
        header = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        raise MalformedEvent("event header is not a JSON object on one line") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise MalformedEvent("event header needs a string 'type'")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise MalformedEvent("event 'data' must be an object")
    data_length = _length(header, "data_length", MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
    try:
        if data_length:
            extra = json.loads(await reader.readexactly(data_length))
            if not isinstance(extra, dict):
                raise MalformedEvent("event data block must be a JSON object")
            data.update(extra)
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedEvent("event data block is not JSON") from None
    return Event(type=header["type"], data=data, payload=payload)
