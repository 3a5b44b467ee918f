"""Fuzz the rtnetlink parsers (fastvrrp/io/netlink.py): the message walk (_iter_msgs), the attribute walk
(_iter_attrs) and LinkMonitor's handling of RTM_NEWLINK / RTM_DELLINK / RTM_NEWADDR / RTM_DELADDR, as the
kernel sends them to the link monitor; and the ACK walk of NetlinkBatcher (an NLMSG_ERROR per request).

The documented answer: nothing raises; a malformed message is counted in LinkMonitor.malformed (or ends the
walk); callbacks get an interface index, a name and an address as text.
"""

from __future__ import annotations

import socket

from _harness import check, instrumented, main

with instrumented():
    from fastvrrp.io import netlink

LINKS: list[tuple[int, str, bool]] = []
ADDRS: list[tuple[int, int, str, int, bool]] = []


def _on_link(index: int, name: str, up: bool) -> None:
    check(isinstance(index, int) and isinstance(name, str) and isinstance(up, bool), "bad on_link call")
    LINKS.append((index, name, up))


def _on_addr(index: int, family: int, address: str, prefixlen: int, added: bool) -> None:
    check(family in (socket.AF_INET, socket.AF_INET6), f"on_addr with family {family}")
    socket.inet_pton(family, address)  # text the daemon can compare with its VIPs
    ADDRS.append((index, family, address, prefixlen, added))


MON = netlink.LinkMonitor(None, _on_link, _on_addr)  # type: ignore[arg-type]  (no loop: _handle only)


def one(data: bytes) -> None:
    end_seen = 0
    for _mtype, _flags, _seq, _pid, p, end in netlink._iter_msgs(data):
        check(16 <= p <= end <= len(data) and p > end_seen, "message walk out of bounds or not advancing")
        end_seen = end
        for _kind, val in netlink._iter_attrs(data, p, end):
            check(len(val) <= end - p, "attribute longer than its message")
    MON.links.clear()
    before = MON.callback_errors
    MON._handle(data)
    check(MON.callback_errors == before, "a callback raised (see the log): the monitor passed it bad values")
    for seq, err in netlink._iter_acks(data):
        check(0 <= seq <= 0xFFFFFFFF and isinstance(err, int), "bad ACK")


if __name__ == "__main__":
    main(one)
