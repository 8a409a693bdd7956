"""Client-side helpers for Wyoming tests: read a reply, assemble its audio as Home Assistant does."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass, field

import numpy as np
from wyoming.audio import AudioChunk, AudioStart
from wyoming.client import AsyncTcpClient
from wyoming.event import Event


@dataclass
class Reply:
    """Every event of one answer, and its audio assembled the way Home Assistant does."""

    events: list[Event] = field(default_factory=list)
    first_audio_at: float | None = None

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.type == kind]

    def wav(self) -> bytes:
        """One WAV from the first audio-start's format and every chunk's bytes (HA's assembly)."""
        start = AudioStart.from_event(self.of("audio-start")[0])
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as writer:
            writer.setframerate(start.rate)
            writer.setsampwidth(start.width)
            writer.setnchannels(start.channels)
            for event in self.of("audio-chunk"):
                writer.writeframes(AudioChunk.from_event(event).audio)
        return buffer.getvalue()

    def samples(self) -> tuple[np.ndarray, int]:
        """The WAV decoded back to float32 samples and its rate."""
        with wave.open(io.BytesIO(self.wav()), "rb") as reader:
            rate = reader.getframerate()
            pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
        return pcm.astype(np.float32) / 32768.0, rate


async def read_reply(client: AsyncTcpClient, until: tuple[str, ...], clock=None) -> Reply:
    """Read events until one whose type is in ``until`` (or the connection closes)."""
    reply = Reply()
    while (event := await client.read_event()) is not None:
        reply.events.append(event)
        if event.type == "audio-chunk" and reply.first_audio_at is None and clock is not None:
            reply.first_audio_at = clock()
        if event.type in until:
            break
    return reply


def split_mid_word(text: str, size: int = 7) -> list[str]:
    """Pieces of ``size`` characters: most end in the middle of a word."""
    return [text[i : i + size] for i in range(0, len(text), size)]
