"""Client-side helpers for the Realtime tests: send audio, collect events until one arrives."""

from __future__ import annotations

import asyncio
import base64

import numpy as np

from sesame_voice.audio import from_pcm16, to_pcm16

CHUNK_SAMPLES = 2400
"""100 ms of 24 kHz audio per ``input_audio_buffer.append``, as a microphone client sends it."""


async def append_audio(connection, samples: np.ndarray) -> None:
    for start in range(0, samples.size, CHUNK_SAMPLES):
        chunk = to_pcm16(samples[start : start + CHUNK_SAMPLES])
        await connection.input_audio_buffer.append(audio=base64.b64encode(chunk).decode("ascii"))


async def events_until(connection, stop_type: str, timeout: float = 240.0) -> list:
    """Every event received up to and including the first of type ``stop_type``."""
    events = []

    async def collect() -> None:
        async for event in connection:
            events.append(event)
            if event.type == stop_type:
                return

    await asyncio.wait_for(collect(), timeout)
    return events


def of_type(events: list, kind: str) -> list:
    return [event for event in events if event.type == kind]


def audio_of(events: list) -> np.ndarray:
    """The reply audio: every ``response.output_audio.delta`` decoded, as float32 at 24 kHz."""
    data = b"".join(base64.b64decode(e.delta) for e in of_type(events, "response.output_audio.delta"))
    return from_pcm16(data)
