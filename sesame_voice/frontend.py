"""Base class of protocol frontends that own a listener (Wyoming TCP, …)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # pragma: no cover
    from .server import Server


@dataclass(frozen=True)
class Announcement:
    """A service for zeroconf to advertise, e.g. ``_wyoming._tcp.local.`` on a port."""

    service_type: str
    port: int
    properties: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    """Instance name; defaults to the server's zeroconf name."""


class Frontend:
    """A protocol listener; the server starts it after providers and stops it before them."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    env_names: ClassVar[tuple[str, ...]] = ()
    """Environment variables the frontend reads its settings from (``service install`` passes them on)."""

    def __init__(self, server: "Server") -> None:
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

    async def voices_changed(self, added: list[str], removed: list[str]) -> None:
        """Refresh anything cached about the voices (e.g. Wyoming ``info``)."""
