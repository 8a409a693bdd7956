"""Zeroconf (mDNS): advertise the server's services on the LAN, and browse for other servers."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import ifaddr
from zeroconf import InterfaceChoice, NonUniqueNameException, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from sesame_voice.api.frontend import Announcement

_LOGGER = logging.getLogger(__name__)
HTTP_TYPE = "_http._tcp.local."
MAX_INSTANCE_NAME = 63
"""DNS labels (the instance part of a service name) are at most 63 bytes."""
MAX_NAME_NUMBER = 20
"""On a name clash, ``NAME (2)`` … ``NAME (20)`` are tried before advertising is given up."""


def lan_addresses() -> list[str]:
    """Every address of this host worth advertising: not loopback, link-local, or unspecified; IPv4 first."""
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            raw = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                address = ipaddress.ip_address(raw)
            except ValueError:
                continue
            if not (address.is_loopback or address.is_link_local or address.is_unspecified or address.is_multicast):
                found.add(address)
    return [str(a) for a in sorted(found, key=lambda a: (a.version, a))]


def advertised_addresses(interfaces: Sequence[str]) -> list[str]:
    """Exactly ``interfaces`` when set, otherwise every LAN address (never 0.0.0.0)."""
    return list(dict.fromkeys(interfaces)) if interfaces else lan_addresses()


def instance_name(name: str) -> str:
    """A usable mDNS instance name: no dots (they separate labels), at most 63 bytes."""
    cleaned = " ".join(name.replace(".", "-").split()) or "sesame-voice"
    return cleaned.encode("utf-8")[:MAX_INSTANCE_NAME].decode("utf-8", errors="ignore")


def clash_name(name: str, number: int) -> str:
    """``name`` for the ``number``-th server using it: ``name`` itself, then ``name (2)``, ``name (3)``…"""
    if number <= 1:
        return name
    suffix = f" ({number})"
    room = MAX_INSTANCE_NAME - len(suffix.encode("utf-8"))
    return name.encode("utf-8")[:room].decode("utf-8", errors="ignore").rstrip() + suffix


def host_name(hostname: str | None = None) -> str:
    """This machine's mDNS host, ``<hostname>.local.``: the host every service record points at.

    Devices that resolve a service's host by name (as Home Assistant and satellites may) find the
    machine under the name it already has, as with other Wyoming servers.
    """
    label = (hostname if hostname is not None else socket.gethostname()).split(".")[0]
    label = re.sub(r"[^A-Za-z0-9-]+", "-", label).strip("-")[:MAX_INSTANCE_NAME].strip("-")
    return f"{label or 'sesame-voice'}.local."


def _zeroconf_interfaces(interfaces: Sequence[str]):
    return list(interfaces) if interfaces else InterfaceChoice.All


class Discovery:
    """Advertises each Announcement (``_http._tcp`` and the frontends' own) under the configured name.

    ``start`` registers, ``update`` re-registers what changed (TXT, port, addresses), ``stop``
    sends goodbyes and closes. Failures are logged, never raised: a server without multicast keeps
    serving, it just cannot be found automatically.
    """

    def __init__(self, settings) -> None:
        self.settings = settings
        self.services: dict[tuple[str, str], AsyncServiceInfo] = {}
        """Registered services by (service type, configured instance name)."""
        self._zeroconf: AsyncZeroconf | None = None
        self._lock = asyncio.Lock()
        self._number = 1
        """Which ``clash_name`` every service is advertised under (2 and up after a clash)."""

    async def start(self, announcements: Iterable[Announcement]) -> None:
        """Bind to the configured interfaces (all if none) and register every announcement."""
        interfaces = tuple(self.settings.zeroconf_interfaces)
        try:
            self._zeroconf = AsyncZeroconf(interfaces=_zeroconf_interfaces(interfaces))
        except (OSError, RuntimeError, ValueError) as err:
            _LOGGER.warning("Zeroconf disabled: cannot bind to %s: %s", list(interfaces) or "all interfaces", err)
            return
        await self.update(announcements)

    async def update(self, announcements: Iterable[Announcement]) -> None:
        """Register new services, update changed ones, withdraw those no longer announced."""
        async with self._lock:
            if self._zeroconf is None:
                return
            addresses = advertised_addresses(self.settings.zeroconf_interfaces)
            if not addresses:
                _LOGGER.warning("Zeroconf: this host has no LAN address to advertise")
                return
            wanted = {(a.service_type, instance_name(a.name or self.settings.zeroconf_name)): a for a in announcements}
            await asyncio.gather(*(self._withdraw(key) for key in set(self.services) - set(wanted)))
            while self._number <= MAX_NAME_NUMBER:
                steps = [self._publish(key, a, addresses) for key, a in wanted.items()]
                results = await asyncio.gather(*steps, return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException) and not isinstance(result, NonUniqueNameException):
                        raise result
                if not any(isinstance(result, NonUniqueNameException) for result in results):
                    return
                # Another host has one of our names: every service moves to the next name together,
                # so a client sees "NAME (2)" for both the HTTP API and Wyoming, never a mix.
                await asyncio.gather(*(self._withdraw(key) for key in list(self.services)))
                self._number += 1
            _LOGGER.warning("Zeroconf: names up to (%s) are all taken on the network; not advertising", MAX_NAME_NUMBER)

    async def _publish(self, key: tuple[str, str], announcement: Announcement, addresses: list[str]) -> None:
        old = self.services.get(key)
        service_type, name = key
        info = AsyncServiceInfo(
            service_type,
            old.name if old is not None else f"{clash_name(name, self._number)}.{service_type}",
            port=announcement.port,
            properties={k: str(v) for k, v in announcement.properties.items()},
            parsed_addresses=addresses,
            server=old.server if old is not None else host_name(),
        )
        if old is not None and _same(old, info):
            return
        try:
            if old is None:
                # Probing happens here (about a second); a name another host uses raises, and
                # ``update`` then moves every service to the next name.
                await self._zeroconf.async_register_service(info, allow_name_change=False)
                _LOGGER.info("Zeroconf: advertising %s on %s port %s", info.name, ", ".join(addresses), info.port)
            else:
                await self._zeroconf.async_update_service(info)
                _LOGGER.debug("Zeroconf: updated %s", info.name)
        except NonUniqueNameException:
            _LOGGER.info("Zeroconf: %s is taken on the network", info.name)
            raise
        except Exception as err:  # noqa: BLE001 - advertising is best effort
            _LOGGER.warning("Zeroconf: cannot advertise %s: %s", info.name, err)
            return
        self.services[key] = info

    async def _withdraw(self, key: tuple[str, str]) -> None:
        info = self.services.pop(key)
        try:
            await self._zeroconf.async_unregister_service(info)
        except Exception as err:  # noqa: BLE001
            _LOGGER.warning("Zeroconf: cannot withdraw %s: %s", info.name, err)

    async def stop(self) -> None:
        """Send goodbye packets for every service and close the sockets."""
        async with self._lock:
            zeroconf, self._zeroconf = self._zeroconf, None
            if zeroconf is None:
                return
            try:
                await asyncio.gather(*(self._goodbye(zeroconf, info) for info in self.services.values()))
            finally:
                self.services.clear()
                await zeroconf.async_close()

    @staticmethod
    async def _goodbye(zeroconf: AsyncZeroconf, info: AsyncServiceInfo) -> None:
        try:
            await (await zeroconf.async_unregister_service(info))
        except Exception as err:  # noqa: BLE001
            _LOGGER.debug("Zeroconf: goodbye for %s failed: %s", info.name, err)


def _same(a: AsyncServiceInfo, b: AsyncServiceInfo) -> bool:
    return (a.port, a.properties, sorted(a.parsed_addresses())) == (b.port, b.properties, sorted(b.parsed_addresses()))


# -- browsing ------------------------------------------------------------------------------------


def _properties(info: AsyncServiceInfo) -> dict[str, str]:
    return {
        key.decode("utf-8", "replace"): (value or b"").decode("utf-8", "replace")
        for key, value in info.properties.items()
    }


PeerDescriber = Callable[[list[str], int, float], Awaitable["dict | None"]]
"""``describe(addresses, port, timeout)``: extra fields of a server found under a frontend's
service type, or None when it is not one to list (``Frontend.describe_peer``)."""


async def _found(
    zeroconf: AsyncZeroconf, service_type: str, name: str, timeout: float, peers: Mapping[str, PeerDescriber]
) -> dict | None:
    info = AsyncServiceInfo(service_type, name)
    if not await info.async_request(zeroconf.zeroconf, int(timeout * 1000)):
        return None
    entry = {
        "name": name[: -len(service_type) - 1] if name.endswith("." + service_type) else name,
        "type": service_type,
        "host": info.server,
        "addresses": info.parsed_scoped_addresses(),
        "port": info.port,
        "properties": _properties(info),
    }
    if service_type == HTTP_TYPE:
        # Only our HTTP API: the core always puts default_voice in its TXT record.
        return entry if "default_voice" in entry["properties"] else None
    extra = await peers[service_type](entry["addresses"], info.port, timeout)
    return None if extra is None else {**entry, **extra}


async def browse(
    timeout: float = 3.0, interfaces: list[str] | None = None, peers: Mapping[str, PeerDescriber] | None = None
) -> list[dict]:
    """sesame-voice HTTP APIs, and servers of the ``peers`` service types, on the LAN within ``timeout`` s.

    Each entry: name, type, host, addresses, port, properties (TXT), plus what the service type's
    describer adds. ``interfaces`` limits browsing to those IPs.
    """
    peers = dict(peers or {})
    zeroconf = AsyncZeroconf(interfaces=_zeroconf_interfaces(interfaces or ()))
    names: dict[str, str] = {}

    def on_change(zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            names.pop(name, None)
        else:
            names[name] = service_type

    browser = AsyncServiceBrowser(zeroconf.zeroconf, [HTTP_TYPE, *peers], handlers=[on_change])
    try:
        await asyncio.sleep(timeout)
        resolve_timeout = max(1.0, timeout / 2)
        entries = await asyncio.gather(
            *(_found(zeroconf, t, n, resolve_timeout, peers) for n, t in sorted(names.items()))
        )
    finally:
        await browser.async_cancel()
        await zeroconf.async_close()
    return [entry for entry in entries if entry is not None]
