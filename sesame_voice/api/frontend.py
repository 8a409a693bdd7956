"""Base class of protocol frontends that own a listener (Wyoming TCP, …)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # pragma: no cover
    from sesame_voice.api.surface import ServerSurface


@dataclass(frozen=True)
class Announcement:
    """A service for zeroconf to advertise, e.g. ``_wyoming._tcp.local.`` on a port."""

    service_type: str
    port: int
    properties: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    """Instance name; defaults to the server's zeroconf name."""


class Frontend:
    """A protocol listener; the server starts it after providers and stops it before them.

    To refresh what it caches about voices, its plugin implements the ``voices_changed`` hook and
    finds the running instance with ``server.frontend(name)``.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    env_names: ClassVar[tuple[str, ...]] = ()
    """Environment variables the frontend reads its settings from (``service install`` passes them on)."""
    peer_service_type: ClassVar[str | None] = None
    """zeroconf type under which servers speaking this protocol are found by ``sesame-voice discover``."""

    def __init__(self, server: ServerSurface) -> None:
        self.server = server

    @classmethod
    def enabled(cls, settings) -> bool:
        """Whether the server should start this frontend with these settings."""
        return True

    async def start(self) -> None:
        """Bind and start serving."""

    async def stop(self) -> None:
        """Stop serving and close connections."""

    def announcements(self) -> list[Announcement]:
        """Services to advertise on the LAN once started."""
        return []

    @classmethod
    async def describe_peer(cls, addresses: list[str], port: int, timeout: float) -> dict | None:
        """Fields to add to a server found under ``peer_service_type``, or None to leave it out."""
        return {}
