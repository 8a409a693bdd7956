"""Other Wyoming servers found on the LAN (``sesame-voice discover``): which voices they speak."""

from __future__ import annotations

import asyncio
import logging

from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

_LOGGER = logging.getLogger(__name__)


async def tts_voices(address: str, port: int, timeout: float) -> list[str] | None:
    """Voice names of a Wyoming server's TTS programs ([] if it has none), None if unreachable."""

    async def ask() -> list[str]:
        async with AsyncTcpClient(address, port) as client:
            await client.write_event(Describe().event())
            while (event := await client.read_event()) is not None:
                if Info.is_type(event.type):
                    info = Info.from_event(event)
                    return [voice.name for program in info.tts if program.installed for voice in program.voices]
            raise ConnectionError("closed before info")

    try:
        return await asyncio.wait_for(ask(), timeout)
    except (OSError, asyncio.TimeoutError, ValueError, KeyError, TypeError) as err:
        _LOGGER.debug("Wyoming %s:%s did not describe itself: %s", address, port, err)
        return None


async def describe_peer(addresses: list[str], port: int, timeout: float) -> dict | None:
    """``tts_voices`` of a Wyoming server (None when unreachable: listed, unconfirmed); no TTS: left out."""
    for address in addresses:
        voices = await tts_voices(address, port, timeout)
        if voices is not None:
            return {"tts_voices": voices} if voices else None  # a server without TTS (wake word, STT…)
    return {"tts_voices": None}
