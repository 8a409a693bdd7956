"""The Wyoming frontend: a TCP listener (default port 10200) for Home Assistant and satellites."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlparse

from wyoming.event import Event

from sesame_voice import Announcement, Frontend, SesameVoiceError, __version__
from sesame_voice.api.frontend import advertisable, reach
from sesame_voice.config import ConfigError

from .asr import StreamSlots, asr_programs
from .handler import WyomingHandler
from .info import build_info
from .options import ENV_NAMES, wyoming_options
from .peers import describe_peer
from .spoken_reply import SpokenReply, WriteEvent
from .voice_choice import VoiceChoice

_LOGGER = logging.getLogger(__name__)
SERVICE_TYPE = "_wyoming._tcp.local."


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
    env_names = tuple(ENV_NAMES.values())
    peer_service_type = SERVICE_TYPE

    @classmethod
    async def describe_peer(cls, addresses: list[str], port: int, timeout: float) -> dict | None:
        return await describe_peer(addresses, port, timeout)

    def __init__(self, server) -> None:
        super().__init__(server)
        options = wyoming_options(server.settings)
        self.options = options
        """The plugin's settings (``plugins.wyoming`` / WYOMING_* env)."""
        self.host, self._requested_port = parse_uri(options.uri)
        self.port: int | None = None
        """The bound port, once started."""
        self.samples_per_chunk = options.samples_per_chunk
        self.first_clause = options.first_clause
        """Speak an answer's first clause on its own, for a faster first audio chunk."""
        self.stream_idle_timeout = options.stream_idle_timeout
        """Seconds a streamed answer waits for more text before it ends there (0: forever)."""
        self._info: tuple[tuple, Event] | None = None
        """The cached ``info`` event and the provider states it was built for."""
        self.stt_slots = StreamSlots(options.max_stt_streams)
        """Speech-to-text utterances in progress over all connections (``max_stt_streams``)."""
        self._listener: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()

    @classmethod
    def enabled(cls, settings) -> bool:
        return wyoming_options(settings).enabled

    async def start(self) -> None:
        self.refresh_info()
        self._listener = await asyncio.start_server(self._accept, self.host, self._requested_port)
        self.port = self._listener.sockets[0].getsockname()[1]
        _LOGGER.info("Wyoming on tcp://%s:%s", self.host, self.port)

    async def stop(self) -> None:
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

    def reply(self, choice: VoiceChoice, write_event: WriteEvent) -> SpokenReply:
        """A new answer in ``choice``'s voice, written with ``write_event``."""
        return SpokenReply(self.server.engine, choice, write_event, self.samples_per_chunk, self.first_clause)

    def info_event(self) -> Event:
        """The ``info`` event (Home Assistant asks every 30 s): from memory unless a provider's state changed."""
        states = tuple((name, provider.state) for name, provider in self.server.providers.items())
        if self._info is None or self._info[0] != states:
            self._info = (states, self._build_info())
        return self._info[1]

    def refresh_info(self) -> None:
        """Rebuild the cached ``info`` from the current voices and speech-to-text models."""
        self._info = None
        self.info_event()

    def _build_info(self) -> Event:
        try:
            default = self.server.voices.get(None).name
        except SesameVoiceError:
            default = None
        voices = self.server.voices.list()
        info = build_info(voices, self.server.providers, self.server.engine.serving_provider, default)
        info.asr = asr_programs(self.server)
        return info.event()

    def exposure(self) -> list[str]:
        return [
            f"Wyoming on tcp://{self.host}:{self.port}: {reach(self.host)}; no authentication (the "
            "Wyoming protocol has none)"
        ]

    def announcements(self) -> list[Announcement]:
        if self.port is None or not advertisable(self.host, self.server.settings):
            return []
        properties = {"version": __version__, "voices": str(len(self.server.voices.list()))}
        return [Announcement(SERVICE_TYPE, self.port, properties)]
