"""The alert socket beside each receive socket (daemon/links.py) passes priority-0 adverts only: a master
resigning wakes a backup at once even while its busy links are read on a cadence
(docs/costs.md#receive-dwell). Real raw sockets across a veth, IPv4 (the filter skips the IP header by its
length) and IPv6 (no IP header)."""

from __future__ import annotations

import socket
import struct

import pytest

from fastvrrp.daemon.links import open_alert
from fastvrrp.io import sockets
from fastvrrp.io.nsexec import call_in_netns
from fastvrrp.lab.namespaces import wait_for
from tests.netns.test_io_sockets import _advert_v3_ipv4, _link_local

pytestmark = pytest.mark.netns


@pytest.fixture
def pair(lab):
    a = lab.ns("a")
    b = lab.ns("b")
    lab.veth(a, "ethA", b, "ethB")
    lab.addr(a, "ethA", "192.0.2.1/24")
    lab.addr(b, "ethB", "192.0.2.2/24")
    lab.addr(a, "ethA", "2001:db8::1/64")
    lab.addr(b, "ethB", "2001:db8::2/64")
    return lab, a, b


def _alert_in(ns: str, family: int, group: str) -> socket.socket:
    return call_in_netns(ns, lambda: open_alert("ethB", socket.if_nametoindex("ethB"), family, False, group))


def _priorities(family: int, datagrams: list[bytes]) -> list[int]:
    out = []
    for d in datagrams:
        off = (d[0] & 0x0F) * 4 if family == socket.AF_INET else 0
        out.append(d[off + 2])
    return out


@pytest.mark.parametrize("options", [b"", b"\x94\x04\x00\x00"], ids=["ihl5", "ihl6"])
def test_ipv4_alert_passes_priority_zero_only(pair, options):
    lab, a, b = pair
    sa = sockets.open_rx_tx_in_netns(a, "ethA", socket.AF_INET, primary_ip="192.0.2.1")
    sb = sockets.open_rx_tx_in_netns(b, "ethB", socket.AF_INET, primary_ip="192.0.2.2")
    alert = _alert_in(b, socket.AF_INET, sockets.VRRP_GROUP4)
    try:
        if options:  # an IP option (router alert) moves the advert: the filter reads the header length
            sa.tx.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, options)
        dest = sockets.multicast_dest(socket.AF_INET, sa.ifindex)
        for prio in (100, 0, 255, 0, 1):
            sa.tx.sendto(_advert_v3_ipv4(51, prio, "192.0.2.1", sockets.VRRP_GROUP4, []), dest)
        got: list[bytes] = []
        wait_for(lambda: len(got.__iadd__(sockets.drain(sb.rx))) >= 5, timeout=10, what="five adverts")
        assert _priorities(socket.AF_INET, got) == [100, 0, 255, 0, 1]  # the receive socket has them all
        assert (got[0][0] & 0x0F) == (6 if options else 5)
        seen: list[bytes] = []
        wait_for(lambda: len(seen.__iadd__(sockets.drain(alert))) >= 2, timeout=10, what="the alerts")
        assert _priorities(socket.AF_INET, seen) == [0, 0]
        assert sockets.drain(alert) == []
    finally:
        alert.close()
        sa.close()
        sb.close()


def test_ipv6_alert_passes_priority_zero_only(pair):
    lab, a, b = pair
    ll_a = _link_local(lab, a, "ethA")
    _link_local(lab, b, "ethB")
    sa = sockets.open_rx_tx_in_netns(a, "ethA", socket.AF_INET6, primary_ip=ll_a)
    sb = sockets.open_rx_tx_in_netns(b, "ethB", socket.AF_INET6)
    alert = _alert_in(b, socket.AF_INET6, sockets.VRRP_GROUP6)
    try:
        dest = sockets.multicast_dest(socket.AF_INET6, sa.ifindex)
        vip = socket.inet_pton(socket.AF_INET6, "2001:db8::100")
        for prio in (200, 0, 100):
            sa.tx.sendto(struct.pack("!BBBBHH", 0x31, 52, prio, 1, 100, 0) + vip, dest)
        got: list[bytes] = []
        wait_for(lambda: len(got.__iadd__(sockets.drain(sb.rx))) >= 3, timeout=10, what="three adverts")
        assert _priorities(socket.AF_INET6, got) == [200, 0, 100]
        seen: list[bytes] = []
        wait_for(lambda: seen.__iadd__(sockets.drain(alert)), timeout=10, what="the alert")
        assert _priorities(socket.AF_INET6, seen) == [0]
        assert sockets.drain(alert) == []
    finally:
        alert.close()
        sa.close()
        sb.close()
