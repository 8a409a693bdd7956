"""Client-side helpers for speech-to-text tests, and a deterministic third-party STT provider."""

from __future__ import annotations

import io
import threading

import numpy as np
import soundfile
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event

from fakes import think
from sesame_voice import Segment, SttProvider, hookimpl


def read_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Float32 mono samples and rate of a WAV/FLAC file, as soundfile reads it."""
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples.mean(axis=1), rate


def pcm16(samples: np.ndarray) -> bytes:
    """16-bit little-endian PCM of float samples."""
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


async def transcribe_like_home_assistant(
    port: int,
    audio: bytes,
    rate: int = 16000,
    width: int = 2,
    channels: int = 1,
    language: str | None = "en",
    chunk_bytes: int = 2048,
) -> list[Event]:
    """Every event the server sends for one utterance, sent exactly as Home Assistant's wyoming stt does."""
    events: list[Event] = []
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language=language).event())
        await client.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
        for offset in range(0, len(audio), chunk_bytes):
            chunk = AudioChunk(rate=rate, width=width, channels=channels, audio=audio[offset : offset + chunk_bytes])
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        while (event := await client.read_event()) is not None:
            events.append(event)
            if event.type == "transcript":
                break
    return events


class EchoStt(SttProvider):
    """Says what it heard instead of what was said: "N samples at R hertz", one segment per second.

    Runs at 8 kHz so tests see the service resample; ``delay`` seconds per segment let tests
    cancel a transcription half-way.
    """

    name = "echo"
    description = "test speech to text"
    sample_rate = 8000
    delay = 0.0

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.jobs: list = []
        self.cancelled_seen = threading.Event()

    def model_name(self) -> str:
        return "echo-1"

    def languages(self) -> list[str]:
        return ["en", "de"]

    def transcribe(self, job):
        self.jobs.append(job)
        job.detected_language = job.language or "en"
        seconds = int(np.ceil(job.duration))
        for second in range(seconds):
            if not think(self.delay, job.cancelled):
                self.cancelled_seen.set()
                return
            text = f"{len(job.samples)} samples at {job.sample_rate} hertz" if second == 0 else f"second {second + 1}"
            yield Segment(start=float(second), end=float(min(second + 1, job.duration)), text=text)


class EchoPlugin:
    """A plugin object registering ``EchoStt``, as a third-party package would."""

    def __init__(self, provider: type = EchoStt) -> None:
        self.provider = provider

    @hookimpl
    def register_stt_providers(self, register):
        register(self.provider)
