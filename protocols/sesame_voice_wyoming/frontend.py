"""The Wyoming frontend: a TCP listener (default port 10200) for Home Assistant and satellites."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlparse

from sesame_voice import Announcement, Frontend, __version__
from sesame_voice.config import ConfigError

from .answer import Answer, WriteEvent
from .asr import asr_programs
from .choice import VoiceChoice
from .handler import WyomingHandler
from .info import build_info

_LOGGER = logging.getLogger(__name__)
SERVICE_TYPE = "_wyoming._tcp.local."
DEFAULT_SAMPLES_PER_CHUNK = 1024


def parse_uri(uri: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` → (host, port); port 0 picks a free one."""
    parsed = urlparse(uri)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme != "tcp" or not parsed.hostname or port is None:
        raise ConfigError(f"WYOMING_URI must look like tcp://HOST:PORT, got {uri!r}")
    return parsed.hostname, port


class WyomingFrontend(Frontend):
    """Serves Wyoming ``describe``/``synthesize`` (and streaming) to any number of clients at once."""

    name = "wyoming"
    description = "Wyoming protocol for Home Assistant (TCP, default port 10200)"

    def __init__(self, server) -> None:
        super().__init__(server)
        self.host, self._requested_port = parse_uri(server.settings.wyoming_uri)
        self.port: int | None = None
        """The bound port, once started."""
        config = server.settings.plugin_config(self.name)
        self.samples_per_chunk = int(config.get("samples_per_chunk", DEFAULT_SAMPLES_PER_CHUNK))
        self.first_clause = bool(config.get("first_clause", True))
        """Speak an answer's first clause on its own, for a faster first audio chunk."""
        self.info_event = None
        """The cached ``info`` event; Home Assistant asks for it every 30 s."""
        self._listener: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()

    @classmethod
    def enabled(cls, settings) -> bool:
        return bool(settings.wyoming_enabled)

    async def start(self) -> None:
        self.refresh_info()
        self.server.speech_to_text.listeners.append(self.refresh_info)
        self._listener = await asyncio.start_server(self._accept, self.host, self._requested_port)
        self.port = self._listener.sockets[0].getsockname()[1]
        _LOGGER.info("Wyoming on tcp://%s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self.refresh_info in self.server.speech_to_text.listeners:
            self.server.speech_to_text.listeners.remove(self.refresh_info)
        if self._listener is not None:
            self._listener.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve each connection in its own task, so ``stop`` can cancel it."""
        handler = WyomingHandler(self, reader, writer)
        task = asyncio.create_task(handler.run(), name=f"wyoming {handler.peer}")
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    def answer(self, choice: VoiceChoice, write_event: WriteEvent) -> Answer:
        """A new reply in ``choice``'s voice, written with ``write_event``."""
        return Answer(self.server.engine, choice, write_event, self.samples_per_chunk, self.first_clause)

    def refresh_info(self) -> None:
        """Rebuild the cached ``info`` from the current voices and speech-to-text models."""
        info = build_info(self.server.voices.list(), self.server.providers)
        info.asr = asr_programs(self.server)
        self.info_event = info.event()

    async def voices_changed(self, added: list[str], removed: list[str]) -> None:
        self.refresh_info()

    def announcements(self) -> list[Announcement]:
        if self.port is None:
            return []
        properties = {"version": __version__, "voices": str(len(self.server.voices.list()))}
        return [Announcement(SERVICE_TYPE, self.port, properties)]
