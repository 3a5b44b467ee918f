"""The engine on real raw sockets: a master engine in one namespace sends with sendmmsg, a backup engine in
the other receives with recvmmsg over a veth, IPv4 and IPv6 (cmsg hop limit and destination)."""

from __future__ import annotations

import socket
import time

import pytest

from fastvrrp import _wire
from fastvrrp._engine import EV_ADVERT, Engine
from fastvrrp.io.nsexec import call_in_netns
from fastvrrp.io.sockets import open_rx_tx_in_netns
from fastvrrp.lab.namespaces import wait_for

pytestmark = pytest.mark.netns

VRID = 51
INTERVAL_MS = 20


def now_us() -> int:
    return time.monotonic_ns() // 1000


def link_local(lab, ns: str) -> str:
    def find():
        out = lab.sh(ns, "ip -6 -o addr show dev eth0 scope link")
        return out.split()[3].split("/")[0] if out.strip() else None

    return wait_for(find, timeout=5, what="a link-local address")


@pytest.mark.netns
@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["v4", "v6"])
def test_master_engine_to_backup_engine_over_veth(lab, family):
    a, b = lab.ns("a"), lab.ns("b")
    lab.veth(a, "eth0", b, "eth0")
    for ns, v4, v6 in ((a, "192.0.2.1/24", "2001:db8::1/64"), (b, "192.0.2.2/24", "2001:db8::2/64")):
        lab.addr(ns, "eth0", v4)
        lab.addr(ns, "eth0", v6)
    if family == socket.AF_INET:
        src_a, src_b = "192.0.2.1", "192.0.2.2"
        group = "224.0.0.18"
    else:
        src_a, src_b = link_local(lab, a), link_local(lab, b)
        group = "ff02::12"
    fam = 4 if family == socket.AF_INET else 6
    pk = lambda text: socket.inet_pton(family, text)  # noqa: E731
    vip = pk("192.0.2.100" if fam == 4 else "2001:db8::100")
    socks_a = open_rx_tx_in_netns(a, "eth0", family, primary_ip=src_a)
    socks_b = open_rx_tx_in_netns(b, "eth0", family, primary_ip=src_b)
    ifindex_a = call_in_netns(a, socket.if_nametoindex, "eth0")
    try:
        master = Engine()
        rx_a = master.add_rx_socket(socks_a.rx.fileno(), fam, own=[pk(src_a)])
        tx_a = master.add_tx_socket(socks_a.tx.fileno(), fam)
        sa = master.add_slot(rx_a, VRID, 3)
        msg = _wire.build_advert(
            version=3,
            family=fam,
            vrid=VRID,
            priority=200,
            adver_int_ms=INTERVAL_MS,
            addresses=[vip],
            src=pk(src_a),
            dst=pk(group),
        )
        master.set_adverts(sa, tx_a, [(pk(group), ifindex_a, msg)])
        master.master(sa, INTERVAL_MS * 1000, now_us())

        backup = Engine()
        rx_b = backup.add_rx_socket(socks_b.rx.fileno(), fam, own=[pk(src_b)])
        sb = backup.add_slot(rx_b, VRID, 3)  # idle: every valid advert goes up

        def tick() -> list:
            t = now_us()
            master.run(t)
            master.flush()
            return backup.receive(rx_b, t)

        events = wait_for(tick, timeout=10, interval=0.005, what="the first advert through recvmmsg")
        kind, slot, pkt = events[0]
        assert (kind, slot) == (EV_ADVERT, sb)
        assert (pkt.family, pkt.version, pkt.vrid, pkt.priority, pkt.adver_int_ms) == (fam, 3, VRID, 200, 20)
        assert pkt.src == pk(src_a) and pkt.dst == pk(group) and pkt.addresses == (vip,)
        assert pkt.ttl == 255  # IPv4 from the IP header, IPv6 from the IPV6_HOPLIMIT cmsg

        # Now the backup fast path: the same master's adverts push the deadline and raise nothing.
        down_us = 3 * INTERVAL_MS * 1000 + (256 - 100) * INTERVAL_MS * 1000 // 256  # RFC 5798 6.1
        start = now_us()
        backup.backup(sb, pk(src_a), 200, INTERVAL_MS, down_us, start + down_us)

        def absorbed() -> bool:
            assert tick() == []
            return backup.slot_stats(sb)["rx_fast"] >= 5

        wait_for(absorbed, timeout=10, interval=0.005, what="adverts absorbed by the fast path")
        assert backup.deadline(sb) > start + down_us
        assert backup.run(now_us()) == []
        assert sum(backup.drops(rx_b)) == 0
        assert master.tx_stats(tx_a)["errors"] == 0 and master.tx_stats(tx_a)["sent"] >= 6
        assert master.slot_stats(sa)["sent"] == master.tx_stats(tx_a)["sent"]
        rs = backup.rx_stats(rx_b)
        assert rs["datagrams"] >= 6 and rs["batches"] >= 1
        # Nothing is left queued on the backup side: receive drained the socket.
        assert backup.receive(rx_b, now_us()) == []
    finally:
        socks_a.close()
        socks_b.close()
