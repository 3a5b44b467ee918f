"""The daemon's sockets: one receive and one transmit socket per (interface, family, unicast?, group),
shared by every instance on it and registered with the engine and the loop; and one frame sender (gratuitous
ARP / NA) per interface. Opened on first use, closed when no instance uses them any more, or on exit.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastvrrp import _engine, _wire
from fastvrrp.config import ConfigError, InstanceConfig, Problem
from fastvrrp.io import announce, netlink, sockets

AF = {4: socket.AF_INET, 6: socket.AF_INET6}


def multicast_group(icfg: InstanceConfig, global_defs: Any) -> bytes:
    """The multicast group: mcast_dst_ip, else global_defs vrrp_mcast_group4/6 (RFC 5798's by default)."""
    default = global_defs.vrrp_mcast_group4 if icfg.family == 4 else global_defs.vrrp_mcast_group6
    return (icfg.mcast_dst_ip or default).packed


@dataclass(eq=False)
class Link:
    """One (interface, family, unicast?): a receive and a transmit socket shared by its instances."""

    ifname: str
    ifindex: int
    family: int  # 4 or 6
    unicast: bool
    primary: bytes
    socks: sockets.VrrpSockets
    rx_id: int
    tx_id: int
    group: bytes = b""  # the multicast group (packed); RFC 5798's unless mcast_dst_ip / vrrp_mcast_group*
    users: int = 0
    reading: bool = False
    last_datagrams: int = 0
    closed: bool = False  # its sockets are closed (the daemon no longer lists it)

    @property
    def key(self) -> tuple[str, int, bool, bytes]:
        return (self.ifname, self.family, self.unicast, self.group)


class Links:
    """The open links by key, and the frame senders by interface; `on_readable(link)` reads a link."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        engine: _engine.Engine,
        nl: netlink.NetlinkWorker,
        on_readable: Callable[[Link], None],
    ) -> None:
        self.loop = loop
        self.engine = engine
        self.nl = nl
        self.on_readable = on_readable
        self.by_key: dict[tuple[str, int, bool, bytes], Link] = {}
        self.senders: dict[str, announce.FrameSender] = {}

    async def link_for(self, icfg: InstanceConfig, group: bytes, expected: int) -> Link:
        """The link `icfg` sends and receives on, opened if it is the first instance there. `expected`
        instances may share it (it sizes the receive buffer)."""
        fam = icfg.family
        unicast = bool(icfg.unicast_peers)
        ifname = icfg.interface or ""
        key = (ifname, fam, unicast, group)
        link = self.by_key.get(key)
        if link is not None:
            return link
        ifindex = await self.nl.link_index(ifname)
        if ifindex is None:
            raise ConfigError([Problem(icfg.file, icfg.line, f"interface {ifname} does not exist")])
        src = icfg.unicast_src_ip or icfg.mcast_src_ip
        primary = str(src) if src is not None else await self.nl.primary_address(ifname, AF[fam])
        if primary is None:
            why = f"interface {ifname} has no IPv{fam} address to send from"
            raise ConfigError([Problem(icfg.file, icfg.line, why)])
        socks = sockets.open_rx_tx(
            ifname,
            ifindex,
            AF[fam],
            primary,
            unicast,
            instances=max(expected, 1),
            unicast_ttl=icfg.unicast_ttl or 255,
            group=socket.inet_ntop(AF[fam], group),
        )
        packed = socket.inet_pton(AF[fam], primary)
        rx_id = self.engine.add_rx_socket(
            socks.rx.fileno(), fam, check_ttl=not unicast, policy=_wire.CSP_ACCEPT_BOTH, own=[packed]
        )
        tx_id = self.engine.add_tx_socket(socks.tx.fileno(), fam)
        link = Link(ifname, ifindex, fam, unicast, packed, socks, rx_id, tx_id, group)
        self.by_key[key] = link
        self.loop.add_reader(socks.rx.fileno(), self.on_readable, link)
        link.reading = True
        return link

    def sender(self, ifname: str) -> announce.FrameSender:
        s = self.senders.get(ifname)
        if s is None:
            s = self.senders[ifname] = announce.FrameSender(ifname)
        return s

    def close_unused(self) -> None:
        for key, link in list(self.by_key.items()):
            if link.users <= 0:
                if link.reading:
                    self.loop.remove_reader(link.socks.rx.fileno())
                    link.reading = False
                self._close(link)
                del self.by_key[key]
                # The engine keeps the socket ids; they receive nothing once closed and own no slots.

    def close(self) -> None:
        for link in self.by_key.values():
            if link.reading:
                self.loop.remove_reader(link.socks.rx.fileno())  # before close: uvloop aborts otherwise
            self._close(link)
        self.by_key.clear()
        for s in self.senders.values():
            s.close()
        self.senders.clear()

    def _close(self, link: Link) -> None:
        self.engine.close_rx(link.rx_id)  # the engine drains every open rx socket before a backup fires
        link.socks.close()
        link.closed = True
