"""Example sesame-voice plugin: a provider and a frontend, using only the public hook API."""

from __future__ import annotations

import asyncio

import numpy as np

from sesame_voice import AudioChunk, Frontend, Provider, SesameVoiceError, SynthesisRequest, Voice, hookimpl

RATE = 16000


class BeepProvider(Provider):
    """One 100 ms tone per word; pitch rises with word length."""

    name = "beep"
    description = "Beeps, one per word"

    def default_voices(self):
        return [Voice(name="beeper", provider=self.name, description="Example plugin voice")]

    def synthesize(self, job):
        t = np.arange(RATE // 10) / RATE
        for sentence in job.sentences:
            tones = [np.sin(2 * np.pi * (200 + 40 * len(word)) * t) for word in sentence.split()]
            yield AudioChunk((0.2 * np.concatenate(tones)).astype(np.float32), RATE)


class LineFrontend(Frontend):
    """A tiny TCP protocol: one line of text in, ``OK <provider> <samples> <rate>`` out."""

    name = "lines"
    description = "Example line protocol"

    def __init__(self, server) -> None:
        super().__init__(server)
        self._listener: asyncio.AbstractServer | None = None
        self.port: int | None = None

    async def start(self) -> None:
        config = self.server.settings.plugin_config("example")
        self._listener = await asyncio.start_server(self._handle, "127.0.0.1", int(config.get("port", 0)))
        self.port = self._listener.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            await self._listener.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        text = (await reader.readline()).decode().strip()
        voice, _, text = text.partition(" ")
        try:
            async with self.server.engine.session(SynthesisRequest(text=text, voice=voice, frontend=self.name)) as synthesis:
                samples = 0
                async for chunk in synthesis:
                    samples += len(chunk.samples)
            writer.write(f"OK {synthesis.provider} {samples} {synthesis.sample_rate}\n".encode())
        except SesameVoiceError as err:
            writer.write(f"ERROR {err.code} {err}\n".encode())
        await writer.drain()
        writer.close()


@hookimpl
def register_providers(register):
    """Register the beep provider."""
    register(BeepProvider)


@hookimpl
def register_frontends(register):
    """Register the line frontend."""
    register(LineFrontend)
