"""The daemon's sockets: one receive and one transmit socket per (interface, family, unicast?, group),
shared by every instance on it and registered with the engine and the loop; and one frame sender (gratuitous
ARP / NA) per interface. Opened on first use, closed when no instance uses them any more, or on exit.

The loop does not watch the receive sockets one by one: they sit in an epoll set of their own, one-shot
(EPOLLONESHOT), and the loop watches that set's fd (docs/costs.md#receive-dwell). A socket that became
readable is reported once and then stays quiet until `rearm` after it was read, so pausing the reading of a
busy socket for the dwell costs no system call, and resuming it one epoll_ctl - where the loop's own
add_reader / remove_reader cost about ten.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastvrrp import _engine, _wire
from fastvrrp.config import ConfigError, InstanceConfig, Problem
from fastvrrp.io import announce, kfilter, netlink, sockets

log = logging.getLogger("fastvrrp")
AF = {4: socket.AF_INET, 6: socket.AF_INET6}
# the kernel's answers that mean no eBPF here at all (no capability, not built in, not this architecture)
_NO_BPF = {errno.EPERM, errno.EACCES, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}
_ONESHOT = select.EPOLLIN | select.EPOLLONESHOT


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
    closed: bool = False  # its sockets are closed (the daemon no longer lists it)
    ktable: kfilter.KernelTable | None = None  # the kernel fast path of its receive socket (IPv4)

    @property
    def key(self) -> tuple[str, int, bool, bytes]:
        return (self.ifname, self.family, self.unicast, self.group)


class Links:
    """The open links by key, and the frame senders by interface; `on_ready()` is called on the loop when a
    receive socket became readable (`take_ready` says which)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        engine: _engine.Engine,
        nl: netlink.NetlinkWorker,
        on_ready: Callable[[], None],
        kernel_fast_path: bool = True,
    ) -> None:
        self.loop = loop
        self.kernel_fast_path = kernel_fast_path  # io/kfilter.py on IPv4 receive sockets
        self.engine = engine
        self.nl = nl
        self.by_key: dict[tuple[str, int, bool, bytes], Link] = {}
        self.senders: dict[str, announce.FrameSender] = {}
        self.by_fd: dict[int, Link] = {}  # the open receive sockets
        self.held: dict[int, Link] = {}  # reported readable and not re-armed since (quiet until `rearm`)
        self.closed = False
        self._ep: select.epoll | None = select.epoll()
        loop.add_reader(self._ep.fileno(), on_ready)

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
        if fam == 4 and self.kernel_fast_path:
            link.ktable = self._kernel_table(link)
        self.by_key[key] = link
        self.watch(link)
        return link

    def _kernel_table(self, link: Link) -> kfilter.KernelTable | None:
        """The kernel fast path for the link's receive socket; None (and no further try) where the kernel
        refuses it: every advert is then read from the socket, as without it."""
        table = None
        try:
            table = kfilter.KernelTable()
            table.attach(link.socks.rx)
            self.engine.set_kernel_table(link.rx_id, table.mem, kfilter.monotonic_offset_ns())
        except OSError as exc:
            if table is not None:
                table.close()
            log.warning(
                "kernel fast path unavailable on %s (%s): its backups read every advert",
                link.ifname,
                exc.strerror or exc,
            )
            if exc.errno in _NO_BPF:
                self.kernel_fast_path = False  # the same answer for every link: no further try
            return None
        return table

    def watch(self, link: Link) -> None:
        """Put the link's receive socket in the epoll set (link_for does it)."""
        fd = link.socks.rx.fileno()
        self.by_fd[fd] = link
        if self._ep is not None:
            self._ep.register(fd, _ONESHOT)

    # --- which receive sockets to read (see the module docstring) ---

    def harvest(self) -> bool:
        """Add the receive sockets reported readable since the last call to `held` (each stays quiet until
        `rearm`). True if there was any."""
        if self._ep is None:
            return False
        got = False
        for fd, _ev in self._ep.poll(0):
            link = self.by_fd.get(fd)
            if link is not None:
                self.held[fd] = link
                got = True
        return got

    def to_read(self) -> list[Link]:
        """The links to read: every held one, after a harvest of what became readable meanwhile."""
        self.harvest()
        return list(self.held.values())

    def rearm(self) -> None:
        """Report every held socket again when readable (at once if data is left in it)."""
        if self._ep is not None:
            for fd in self.held:
                self._ep.modify(fd, _ONESHOT)
        self.held.clear()

    def sender(self, ifname: str) -> announce.FrameSender:
        s = self.senders.get(ifname)
        if s is None:
            s = self.senders[ifname] = announce.FrameSender(ifname)
        return s

    def close_unused(self) -> None:
        for key, link in list(self.by_key.items()):
            if link.users <= 0:
                self._close(link)
                del self.by_key[key]
                # The engine keeps the socket ids; they receive nothing once closed and own no slots.

    def close(self) -> None:
        for link in self.by_key.values():
            self._close(link)
        self.by_key.clear()
        if self._ep is not None:
            self.loop.remove_reader(self._ep.fileno())  # before close: uvloop aborts otherwise
            self._ep.close()
            self._ep = None
        self.closed = True
        for s in self.senders.values():
            s.close()
        self.senders.clear()

    def _close(self, link: Link) -> None:
        fd = link.socks.rx.fileno()
        self.by_fd.pop(fd, None)
        self.held.pop(fd, None)
        if self._ep is not None:
            self._ep.unregister(fd)
        self.engine.close_rx(link.rx_id)  # the engine drains every open rx socket before a backup fires
        link.socks.close()
        if link.ktable is not None:
            link.ktable.close()  # after close_rx: the engine no longer points into it
            link.ktable = None
        link.closed = True
