"""Raw VRRP sockets across a real veth: adverts arrive with TTL/hop limit 255 from the primary address."""

from __future__ import annotations

import select
import socket
import struct

import pytest

from fastvrrp.io import sockets
from fastvrrp.io.nsexec import call_in_netns

pytestmark = pytest.mark.netns


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _advert_v3_ipv4(vrid: int, prio: int, src: str, dst: str, vips: list[str]) -> bytes:
    # RFC 5798 5.1: version 3, type 1, max adver int 100 cs; checksum over the IPv4 pseudo-header + message
    addrs = b"".join(socket.inet_aton(a) for a in vips)
    msg = struct.pack("!BBBBHH", 0x31, vrid, prio, len(vips), 100, 0) + addrs
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 112, len(msg))
    c = _csum(pseudo + msg)
    return msg[:6] + struct.pack("!H", c) + msg[8:]


def _wait_readable(s: socket.socket, timeout: float = 3.0) -> bool:
    r, _, _ = select.select([s], [], [], timeout)
    return bool(r)


@pytest.fixture
def pair(lab):
    a = lab.ns("a")
    b = lab.ns("b")
    lab.veth(a, "ethA", b, "ethB")
    lab.addr(a, "ethA", "192.0.2.1/24")
    lab.addr(b, "ethB", "192.0.2.2/24")
    lab.addr(a, "ethA", "192.0.2.11/24")  # a secondary address: the source must still be the primary
    lab.addr(a, "ethA", "2001:db8::1/64")
    lab.addr(b, "ethB", "2001:db8::2/64")
    return lab, a, b


def _link_local(lab, ns: str, ifname: str) -> str:
    import json

    from fastvrrp.lab.namespaces import wait_for

    def ll():
        data = json.loads(lab.sh(ns, f"ip -j -6 addr show dev {ifname} scope link"))
        for ent in data:
            for a in ent.get("addr_info", []):
                if a.get("scope") == "link" and not a.get("tentative"):
                    return a["local"]
        return None

    return wait_for(ll, timeout=5, what=f"link-local on {ifname}")


def test_ipv4_multicast_advert_ttl255_from_primary(pair):
    lab, a, b = pair
    sa = sockets.open_rx_tx_in_netns(a, "ethA", socket.AF_INET, primary_ip="192.0.2.1")
    sb = sockets.open_rx_tx_in_netns(b, "ethB", socket.AF_INET, primary_ip="192.0.2.2")
    try:
        assert sa.rx.getblocking() is False and sa.tx.getblocking() is False
        msg = _advert_v3_ipv4(51, 150, "192.0.2.1", sockets.VRRP_GROUP4, ["192.0.2.100"])
        sa.tx.sendto(msg, sockets.multicast_dest(socket.AF_INET, sa.ifindex))
        assert _wait_readable(sb.rx)
        pkt = sb.rx.recv(2048)
        ihl = (pkt[0] & 0x0F) * 4
        assert pkt[8] == 255  # TTL (RFC 5798 5.1.1.3)
        assert pkt[9] == 112
        assert pkt[1] == sockets.TOS_NETWORK_CONTROL
        assert socket.inet_ntoa(pkt[12:16]) == "192.0.2.1"  # pinned to the primary, not 192.0.2.11
        assert socket.inet_ntoa(pkt[16:20]) == sockets.VRRP_GROUP4
        assert pkt[ihl:] == msg
        # Multicast loop is off (docs/kernel-notes.md#multicast-loop) and the tx sockets are deaf: nothing
        # else is queued anywhere.
        assert sockets.drain(sa.rx) == [] and sockets.drain(sa.tx) == [] and sockets.drain(sb.tx) == []
        assert sa.rx.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= sockets.RCVBUF_MIN
    finally:
        sa.close()
        sb.close()


def test_ipv4_advert_with_ttl_64_is_still_delivered(pair):
    """The kernel delivers any TTL to the raw socket: the TTL rule is the codec's job
    (docs/kernel-notes.md#raw-socket-receive)."""
    lab, a, b = pair
    sb = sockets.open_rx_tx_in_netns(b, "ethB", socket.AF_INET, primary_ip="192.0.2.2")

    def plain_sender():
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"ethA")
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 64)
        s.setsockopt(
            socket.IPPROTO_IP, socket.IP_MULTICAST_IF, sockets._ip_mreqn(None, socket.if_nametoindex("ethA"))
        )
        return s

    s = call_in_netns(a, plain_sender)
    try:
        s.sendto(_advert_v3_ipv4(51, 100, "192.0.2.1", sockets.VRRP_GROUP4, []), (sockets.VRRP_GROUP4, 0))
        assert _wait_readable(sb.rx)
        assert sb.rx.recv(2048)[8] == 64
    finally:
        s.close()
        sb.close()


def test_ipv6_multicast_advert_hoplimit_and_pktinfo(pair):
    lab, a, b = pair
    ll_a = _link_local(lab, a, "ethA")
    _link_local(lab, b, "ethB")
    sa = sockets.open_rx_tx_in_netns(a, "ethA", socket.AF_INET6, primary_ip=ll_a)
    sb = sockets.open_rx_tx_in_netns(b, "ethB", socket.AF_INET6)
    try:
        # VRRPv3 over IPv6 (RFC 5798 5.1.2); checksum left 0: IPV6_CHECKSUM makes the kernel fill it.
        msg = struct.pack("!BBBBHH", 0x31, 52, 200, 1, 100, 0) + socket.inet_pton(
            socket.AF_INET6, "2001:db8::100"
        )
        sa.tx.sendto(msg, sockets.multicast_dest(socket.AF_INET6, sa.ifindex))
        assert _wait_readable(sb.rx)
        data, anc, _flags, src = sb.rx.recvmsg(2048, socket.CMSG_SPACE(64))
        assert src[0] == ll_a
        assert data[:6] == msg[:6] and data[8:] == msg[8:]
        assert data[6:8] != b"\0\0"  # the kernel filled the checksum (and verified it on receive)
        cm = {(lvl, typ): val for lvl, typ, val in anc}
        hop = struct.unpack("@i", cm[(socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT)])[0]
        assert hop == 255  # RFC 5798 5.1.2.3
        dst, ifindex = struct.unpack("@16sI", cm[(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO)])
        assert socket.inet_ntop(socket.AF_INET6, dst) == sockets.VRRP_GROUP6
        assert ifindex == sb.ifindex
        assert sockets.drain(sa.rx) == []
    finally:
        sa.close()
        sb.close()


def test_ipv4_unicast_mode_ttl_and_no_group(pair):
    lab, a, b = pair
    sa = sockets.open_rx_tx_in_netns(
        a, "ethA", socket.AF_INET, primary_ip="192.0.2.1", unicast=True, unicast_ttl=255
    )
    sb = sockets.open_rx_tx_in_netns(b, "ethB", socket.AF_INET, primary_ip="192.0.2.2", unicast=True)
    try:
        msg = _advert_v3_ipv4(9, 100, "192.0.2.1", "192.0.2.2", ["192.0.2.100"])
        sa.tx.sendto(msg, ("192.0.2.2", 0))
        assert _wait_readable(sb.rx)
        pkt = sb.rx.recv(2048)
        assert pkt[8] == 255 and socket.inet_ntoa(pkt[12:16]) == "192.0.2.1"
        assert socket.inet_ntoa(pkt[16:20]) == "192.0.2.2"
        # b's tx socket is bound to 192.0.2.2, so without its drop-all filter it would hold a copy too.
        assert sockets.drain(sb.tx) == []
        # No group was joined in unicast mode: the multicast join shows nowhere in b.
        assert "224.0.0.18" not in lab.sh(b, "ip maddr show dev ethB")
    finally:
        sa.close()
        sb.close()


def test_one_rx_socket_per_interface_joins_once(pair):
    lab, a, _b = pair
    sa = sockets.open_rx_tx_in_netns(a, "ethA", socket.AF_INET, primary_ip="192.0.2.1", instances=1000)
    try:
        assert "224.0.0.18" in lab.sh(a, "ip maddr show dev ethA")
        assert sa.rx.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= sockets.rcvbuf_bytes(1000)
    finally:
        sa.close()


def test_rx_socket_under_uvloop_add_reader(pair):
    """The receive socket as the daemon uses it: add_reader, drain to EAGAIN, remove_reader before close."""
    import asyncio

    import uvloop

    lab, a, b = pair
    sa = sockets.open_rx_tx_in_netns(a, "ethA", socket.AF_INET, primary_ip="192.0.2.1")
    sb = sockets.open_rx_tx_in_netns(b, "ethB", socket.AF_INET, primary_ip="192.0.2.2")
    got: list[bytes] = []
    wakeups = 0

    async def main():
        nonlocal wakeups
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def readable():
            nonlocal wakeups
            wakeups += 1
            got.extend(sockets.drain(sb.rx))
            if len(got) >= 20:
                done.set()

        loop.add_reader(sb.rx.fileno(), readable)
        try:
            for prio in range(1, 21):
                sa.tx.sendto(
                    _advert_v3_ipv4(7, prio, "192.0.2.1", sockets.VRRP_GROUP4, []), (sockets.VRRP_GROUP4, 0)
                )
            await asyncio.wait_for(done.wait(), 3)
        finally:
            loop.remove_reader(sb.rx.fileno())
            sb.close()
            sa.close()

    uvloop.run(main())
    assert [p[(p[0] & 0x0F) * 4 + 2] for p in got] == list(range(1, 21))  # every advert, in order
    assert 1 <= wakeups <= 20
