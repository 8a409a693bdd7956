"""Testing kit of the Wyoming frontend (a pytest plugin, loaded automatically).

- Test servers bind Wyoming to 127.0.0.1 on a free port.
- ``wyoming_client``: ``async with wyoming_client(server) as client`` gives a connected
  ``wyoming.client.AsyncTcpClient``; ``wyoming_speak(client, text, voice)`` returns the reply's
  float32 samples, rate and event types, assembled as Home Assistant does.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest


def pytest_sesame_voice_settings(values) -> None:
    """Wyoming listens on the loopback, on a free port, in tests."""
    values.setdefault("plugins", {}).setdefault("wyoming", {}).setdefault("uri", "tcp://127.0.0.1:0")


@pytest.fixture
def wyoming_client():
    """``async with wyoming_client(server) as client``: a client of the server's Wyoming frontend."""
    from wyoming.client import AsyncTcpClient

    @contextlib.asynccontextmanager
    async def connect(server):
        frontend = server.frontend("wyoming")
        assert frontend is not None and frontend.port, "the Wyoming frontend is not running"
        async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
            yield client

    return connect


async def wyoming_speak(client, text: str, voice: str | None = None) -> tuple[np.ndarray, int, list[str]]:
    """Send ``synthesize`` and read the answer: (float32 samples, rate, event types)."""
    from wyoming.audio import AudioChunk, AudioStart
    from wyoming.error import Error
    from wyoming.tts import Synthesize, SynthesizeVoice

    await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice) if voice else None).event())
    types: list[str] = []
    pcm = bytearray()
    rate = 0
    while (event := await client.read_event()) is not None:
        types.append(event.type)
        if AudioStart.is_type(event.type):
            rate = AudioStart.from_event(event).rate
        elif AudioChunk.is_type(event.type):
            pcm += AudioChunk.from_event(event).audio
        elif event.type == "audio-stop" or Error.is_type(event.type):
            break
    return np.frombuffer(bytes(pcm), dtype="<i2").astype(np.float32) / 32768.0, rate, types
