"""Client-side helpers for the session WebSocket agent tests: a microphone that streams in real time
and a reader that sorts the server's messages."""

from __future__ import annotations

import asyncio
import json

import numpy as np

from sesame_voice.audio import to_pcm16

MIC_CHUNK_MS = 40
"""A microphone client sends 40 ms of audio per binary message."""


async def stream_microphone(ws, samples: np.ndarray, rate: int, pace: float = 1.0) -> None:
    """Send ``samples`` as 16-bit PCM binary messages, ``pace`` times as fast as real time."""
    step = rate * MIC_CHUNK_MS // 1000
    loop = asyncio.get_running_loop()
    start = loop.time()
    for index, offset in enumerate(range(0, samples.size, step)):
        await ws.send_bytes(to_pcm16(samples[offset : offset + step]))
        due = start + (index + 1) * MIC_CHUNK_MS / 1000 / pace
        await asyncio.sleep(max(0.0, due - loop.time()))


class Inbox:
    """Reads every message of a session WebSocket in the background: JSON messages in ``messages``,
    reply audio (float32 frames) in ``frames`` with the index of the JSON message before each."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.messages: list[dict] = []
        self.frames: list[tuple[int, np.ndarray]] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        import aiohttp

        async for message in self.ws:
            async with self._changed:
                if message.type == aiohttp.WSMsgType.TEXT:
                    self.messages.append(json.loads(message.data))
                elif message.type == aiohttp.WSMsgType.BINARY:
                    self.frames.append((len(self.messages), np.frombuffer(message.data, dtype="<f4")))
                self._changed.notify_all()

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 240.0) -> dict:
        """The ``count``-th message of type ``kind`` (waiting for it)."""

        async def arrived():
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.of_type(kind)) >= count or self._task.done())
            found = self.of_type(kind)
            assert len(found) >= count, f"the socket closed before {kind}: {self.types()}"
            return found[count - 1]

        return await asyncio.wait_for(arrived(), timeout)

    async def wait_frames(self, count: int, timeout: float = 240.0) -> None:
        async def arrived():
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.frames) >= count or self._task.done())

        await asyncio.wait_for(arrived(), timeout)

    def of_type(self, kind: str) -> list[dict]:
        return [message for message in self.messages if message["type"] == kind]

    def types(self) -> list[str]:
        return [message["type"] for message in self.messages]

    def audio_after(self, message: dict) -> np.ndarray:
        """The frames received after ``message`` (and before the next ``audio_start``)."""
        first = self.messages.index(message)
        starts = [i for i, m in enumerate(self.messages) if m["type"] == "audio_start" and i > first]
        end = starts[0] if starts else len(self.messages) + 1
        chunks = [frame for position, frame in self.frames if first < position <= end]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
