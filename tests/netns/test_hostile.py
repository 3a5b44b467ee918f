"""A hostile segment (docs/rfc-checklist.md#hostile-segment): a third box floods the pair with packets that
fail validation and with lower-priority adverts for their VRID. Invalid packets change no timer and no state,
only counters; the master keeps its own rhythm; the RFC 9568 S9 reply goes out at most once per interval."""

from __future__ import annotations

import socket
import sys
import time

import pytest

from fastvrrp import _wire
from fastvrrp.io.sockets import open_rx_tx_in_netns
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

A = 100
VIP = "192.0.2.100"


def test_flood_of_invalid_and_lower_priority_adverts(lab):
    lan = Lan(lab, routers=3, client=False)
    m = lan.router(1, "fastvrrp", [InstanceSpec(vrid=51, priority=200, advert_int_ms=A, vips=(f"{VIP}/24",))])
    m.extra_args = ["--metrics", "127.0.0.1:9650"]
    b = lan.router(2, "fastvrrp", [InstanceSpec(vrid=51, priority=100, advert_int_ms=A, vips=(f"{VIP}/24",))])
    socks = open_rx_tx_in_netns(lan.router_ns[2], "eth0", socket.AF_INET, primary_ip="192.0.2.3")
    src, grp = socket.inet_aton("192.0.2.3"), socket.inet_aton("224.0.0.18")

    def advert(prio: int, vrid: int = 51) -> bytes:
        return _wire.build_advert(
            version=3,
            family=4,
            vrid=vrid,
            priority=prio,
            adver_int_ms=A,
            addresses=[socket.inet_aton(VIP)],
            src=src,
            dst=grp,
        )

    good_low = advert(50)
    bad_csum = bytearray(advert(250))
    bad_csum[6] ^= 0xFF  # a higher priority, but a broken checksum: must not make anyone yield
    bad_csum = bytes(bad_csum)
    foreign = advert(250, vrid=77)  # a VRID nobody here runs
    truncated = good_low[:10]
    bad_version = bytes([0x41]) + good_low[1:]
    try:
        with lan.tap() as tap:
            m.start()
            b.start()
            m.wait_state("MASTER", timeout=10)
            b.wait_state("BACKUP", timeout=10)
            # Which daemon starts first is not ours to choose: the backup may be master for a moment before
            # the master's first advert. What the flood must not do is change any state from here on.
            before = (m.transitions("VI_51"), b.transitions("VI_51"))
            t0 = time.time()
            sent = 0
            while time.time() - t0 < 2.0:  # ~5,000 packets a second for 2 s, bounded
                for pkt in (bad_csum, foreign, truncated, bad_version, good_low):
                    socks.tx.sendto(pkt, ("224.0.0.18", 0))
                    sent += 1
                time.sleep(0.001)
            t1 = time.time()
            assert sent > 2000
            own = [e.t for e in tap.adverts(51, m.addr4, after=t0) if e.t <= t1]
            # The master's periodic adverts keep their rhythm (no gap beyond 1.5 intervals) ...
            gaps = [b_ - a_ for a_, b_ in zip(own, own[1:], strict=False)]
            assert gaps and max(gaps) < 1.5 * A / 1000, max(gaps)
            # ... and the S9 replies to the flood of lower priorities are at most one per interval, not one
            # per packet (keepalived answers one to one, docs/rfc-checklist.md#hostile-segment).
            assert len(own) <= 2 * (t1 - t0) / (A / 1000) + 2, len(own)
            assert m.state() == "MASTER" and b.state() == "BACKUP"
            assert (m.transitions("VI_51"), b.transitions("VI_51")) == before
    finally:
        socks.close()
    scrape = (
        "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9650/metrics').read().decode())"
    )
    text = wait_for(
        lambda: lab.sh(m.ns, f'{sys.executable} -c "{scrape}"', check=False), timeout=5, what="metrics"
    )
    drops = {}
    for line in text.splitlines():
        if line.startswith("fastvrrp_rx_drops_total{"):
            reason = line.split('reason="')[1].split('"')[0]
            drops[reason] = float(line.split()[-1])
    # Every bad packet was counted by its reason (the tx socket is deaf, so each arrived once).
    for reason in ("checksum", "no_instance", "length", "version"):
        assert drops.get(reason, 0) >= sent / 5 * 0.9, (reason, drops)
    s9 = [ln for ln in text.splitlines() if ln.startswith("fastvrrp_s9_suppressed_total{")]
    assert s9 and float(s9[0].split()[-1]) > 100
