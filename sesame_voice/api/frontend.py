"""Base class of protocol frontends that own a listener (Wyoming TCP, …)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # pragma: no cover
    from sesame_voice.api.surface import ServerSurface


def reach(host: str) -> str:
    """Who can connect to a listener bound to ``host``, in words for the start-up log."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return "this machine only" if host == "localhost" else f"the network of host name {host}"
    if address.is_loopback:
        return "this machine only"
    if address.is_unspecified:
        return "every network interface (your LAN, and beyond if a router forwards the port)"
    return f"the network of {address}"


def is_loopback(host: str) -> bool:
    """Whether a listener bound to ``host`` is reachable from this machine only."""
    return reach(host) == "this machine only"


def advertisable(host: str, settings) -> bool:
    """Whether to advertise a listener on ``host`` over zeroconf: not when others cannot reach it
    (unless zeroconf itself is confined to loopback, as in tests)."""
    interfaces = tuple(settings.zeroconf_interfaces)
    return not is_loopback(host) or (bool(interfaces) and all(is_loopback(i) for i in interfaces))


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

    def exposure(self) -> list[str]:
        """Where it listens and who can connect, one line each, for the start-up log (e.g. via ``reach``)."""
        return []

    @classmethod
    async def describe_peer(cls, addresses: list[str], port: int, timeout: float) -> dict | None:
        """Fields to add to a server found under ``peer_service_type``, or None to leave it out."""
        return {}
