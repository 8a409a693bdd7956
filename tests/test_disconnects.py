"""Clients that hang up mid-stream leave nothing behind: no live encoder, no growing thread count."""

from __future__ import annotations

import asyncio
import gc
import threading

import aiohttp

from sesame_voice.audio.encoders import StreamEncoder

LONG_TEXT = " ".join(["The quick brown fox jumps over the lazy dog."] * 12)


def _threads() -> int:
    """Threads other than the bounded pools (the loop's default executor, the providers' job pools),
    which grow to their max_workers under concurrency and are not per-request."""
    return sum(1 for thread in threading.enumerate() if not thread.name.startswith(("asyncio_", "job-")))


def _live_encoders() -> int:
    gc.collect()
    return sum(1 for item in gc.get_objects() if isinstance(item, StreamEncoder))


async def _hang_up(base: str, fmt: str) -> None:
    body = {"model": "tts-1", "voice": "joe", "input": LONG_TEXT, "response_format": fmt}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/v1/audio/speech", json=body) as response:
            assert response.status == 200
            await response.content.readany()  # the first bytes, then the client goes away


async def _settle(server) -> None:
    for _ in range(200):
        if server.engine.active == 0:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)


async def test_many_disconnects_leave_no_encoder_or_thread(server):
    base = f"http://127.0.0.1:{server.http_port}"
    formats = ["mp3", "opus", "aac", "pcm"]  # streamed: the first bytes come before the end
    for _ in range(2):  # warm up at the same concurrency: the thread pools grow to their working size once
        await asyncio.gather(*(_hang_up(base, fmt) for fmt in formats))
    await _settle(server)
    threads_after_warm_up = _threads()
    for _ in range(4):
        await asyncio.gather(*(_hang_up(base, fmt) for fmt in formats))
    await _settle(server)
    assert server.engine.active == 0
    assert _live_encoders() == 0
    assert _threads() <= threads_after_warm_up, sorted(t.name for t in threading.enumerate())
