"""-a (--address-monitoring): log every address the kernel reports added or removed, as keepalived -a does.

keepalived lists the addresses present at start and then each change, in lines such as `Netlink reflector
reports IP 198.51.100.7 added to eth0` (scripts grep for them, so the wording is kept). Here the events come
from the daemon's own link monitor (it already subscribes to the address groups); the logging sits in front
of the monitor's address callback, which is still called for every event.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastvrrp.daemon.service import Daemon

log = logging.getLogger("fastvrrp")


def _ifname(index: int) -> str:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return f"interface {index}"  # gone already (an RTM_DELADDR as its link goes)


def _report(address: str, index: int, added: bool) -> None:
    where = "added to" if added else "removed from"
    log.info("Netlink reflector reports IP %s %s %s", address, where, _ifname(index))


async def start(daemon: Daemon) -> None:
    """Log the addresses present now, then every change the daemon's link monitor sees."""
    monitor = daemon.monitor
    if monitor is None:
        return
    for a in await daemon.nl.list_addresses():
        _report(a.address, a.ifindex, True)
    monitor.report_own = True  # our own VIP changes are logged too, as keepalived -a logs them
    inner = monitor.on_addr

    def on_addr(index: int, family: int, address: str, prefixlen: int, added: bool) -> None:
        _report(address, index, added)
        if inner is not None:
            inner(index, family, address, prefixlen, added)

    monitor.on_addr = on_addr
