"""The line frontend: a TCP protocol, one line of text in, ``OK <provider> <samples> <rate>`` out."""

from __future__ import annotations

import asyncio

from sesame_voice import Frontend, SesameVoiceError, SynthesisRequest


class LineFrontend(Frontend):
    """``VOICE words…`` in; ``OK <provider> <samples> <rate>`` or ``ERROR <code> <message>`` out."""

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
        voice, _, text = (await reader.readline()).decode().strip().partition(" ")
        try:
            request = SynthesisRequest(text=text, voice=voice, frontend=self.name)
            async with self.server.engine.synthesis(request) as synthesis:
                samples = 0
                async for chunk in synthesis:
                    samples += len(chunk.samples)
            writer.write(f"OK {synthesis.provider} {samples} {synthesis.sample_rate}\n".encode())
        except SesameVoiceError as err:
            writer.write(f"ERROR {err.code} {err}\n".encode())
        await writer.drain()
        writer.close()
