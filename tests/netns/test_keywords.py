"""keepalived keywords the daemon honours, on a real kernel: vrrp_startup_delay, unicast_fault_no_peer,
promote_secondaries, garp_lower_prio_repeat / garp_lower_prio_delay."""

from __future__ import annotations

import re
import socket
import time
from datetime import datetime

import pytest

from fastvrrp import _wire
from fastvrrp.io.sockets import open_rx_tx_in_netns
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

A = 100  # ms
VIP = "192.0.2.100"
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) fastvrrp\[\d+\]: (.*)$", re.M)


def spec(prio: int, **kw) -> InstanceSpec:
    kw.setdefault("vips", (f"{VIP}/24",))
    kw.setdefault("vrid", 51)
    return InstanceSpec(priority=prio, advert_int_ms=A, **kw)


def first_line_at(log: str, text: str) -> float:
    """The time (s since the epoch) of the first log line containing `text`."""
    for m in _STAMP.finditer(log):
        if text in m[2]:
            return datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    raise AssertionError(f"no {text!r} in the log:\n{log[-2000:]}")


def test_vrrp_startup_delay_holds_the_instances_back(lab):
    """keepalived vrrp_startup_delay: the instances start that long after the daemon did, silent till then."""
    lan = Lan(lab, routers=1, client=False)
    r = lan.router(1, "fastvrrp", [spec(100)], global_lines=["vrrp_startup_delay 1"])
    with lan.tap() as tap:
        t0 = time.time()
        r.start()
        wait_for(lambda: "started:" in r.log(), timeout=10, what="the daemon started")
        r.wait_state("MASTER", timeout=10)
        log = r.log()
        started = first_line_at(log, "started:")
        backup = first_line_at(log, "Entering BACKUP STATE")
        assert 1.0 <= backup - started < 3.0, (started, backup)
        # Nothing on the wire from this router during the delay: its first advert comes after it.
        first = wait_for(lambda: tap.first_advert_from(r.addr4, 51, after=t0), timeout=5, what="advert")
        assert first.t >= started + 1.0
    assert r.stop() == 0


def test_unicast_fault_no_peer_keeps_a_peerless_instance_in_fault(lab):
    """keepalived.conf(5) unicast_fault_no_peer: no unicast_peer means FAULT, not multicast; with a peer the
    keyword changes nothing."""
    lan = Lan(lab, routers=2, client=False)
    peer = lan.router(2, "fastvrrp", [spec(100)])  # never started: its address is the unicast peer
    lonely = spec(100, extra=("unicast_fault_no_peer",))
    paired = spec(
        100, vrid=52, vips=("192.0.2.101/24",), unicast_peers=(peer.addr4,), extra=("unicast_fault_no_peer",)
    )
    r = lan.router(1, "fastvrrp", [lonely, paired])
    with lan.tap() as tap:
        t0 = time.time()
        r.start()
        r.wait_state("MASTER", instance="VI_52", timeout=10)
        r.wait_state("FAULT", instance="VI_51", timeout=5)
        time.sleep(5 * A / 1000)  # five advert intervals in which VI_51 must stay silent
        assert r.transitions("VI_51") == ["FAULT"], r.log()[-2000:]
        assert tap.first_advert_from(r.addr4, 51, after=t0) is None
        assert lan.who_has(VIP) == []
        assert lan.who_has("192.0.2.101") == [r.ns]
        assert "unicast_fault_no_peer" in r.log()
    assert r.stop() == 0


def test_promote_secondaries_set_while_running_and_restored(lab):
    """keepalived promote_secondaries: the VIP (a secondary in the primary's subnet) survives the removal
    of the primary address; the kernel setting goes back on exit."""
    lan = Lan(lab, routers=1, client=False)
    r = lan.router(1, "fastvrrp", [spec(200, extra=("promote_secondaries",))])
    knob = "/proc/sys/net/ipv4/conf/eth0/promote_secondaries"
    lab.sh(r.ns, f"echo 0 > {knob}")
    r.start()
    r.wait_state("MASTER", timeout=10)
    wait_for(lambda: r.has_vip(VIP), timeout=5, what="the VIP")
    assert lab.sh(r.ns, f"cat {knob}").strip() == "1"
    # The kernel's meaning of the setting: deleting the primary keeps (promotes) the secondary VIP.
    lab.sh(r.ns, f"ip addr del {r.addr4}/24 dev eth0")
    assert VIP in lab.sh(r.ns, "ip -4 -o addr show dev eth0")
    assert r.stop() == 0
    assert lab.sh(r.ns, f"cat {knob}").strip() == "0"


def test_garp_lower_prio_repeat_on_the_wire(lab):
    """One lower-priority advert: the master sends garp_lower_prio_repeat GARPs at once and as many again
    garp_lower_prio_delay later."""
    lan = Lan(lab, routers=2, client=False)
    garp = (
        "garp_master_repeat 1",
        "garp_master_delay 0",
        "garp_lower_prio_repeat 3",
        "garp_lower_prio_delay 1",
    )
    m = lan.router(1, "fastvrrp", [spec(200, extra=garp)])
    socks = open_rx_tx_in_netns(lan.router_ns[1], "eth0", socket.AF_INET, primary_ip="192.0.2.2")
    low = _wire.build_advert(
        version=3,
        family=4,
        vrid=51,
        priority=50,
        adver_int_ms=A,
        addresses=[socket.inet_aton(VIP)],
        src=socket.inet_aton("192.0.2.2"),
        dst=socket.inet_aton("224.0.0.18"),
    )
    try:
        with lan.tap() as tap:
            m.start()
            m.wait_state("MASTER", timeout=10)
            # garp_master_repeat 1, garp_master_delay 0: that one GARP is all of becoming master
            wait_for(lambda: tap.first_garp(VIP), timeout=5, what="the GARP of becoming master")
            t = time.time()
            socks.tx.sendto(low, ("224.0.0.18", 0))

            def garps() -> list[float]:
                return [e.t for e in tap.snapshot() if e.kind == "garp" and e.src == VIP and e.t > t]

            wait_for(lambda: len(garps()) >= 6, timeout=5, what="two sets of lower-priority GARPs")
            time.sleep(0.3)  # the observation window: no seventh GARP
            got = garps()
            assert len(got) == 6, got
            assert got[2] - t < 0.2, got  # the first set at once
            assert 0.9 <= got[3] - got[0] < 1.3, got  # the second set garp_lower_prio_delay later
    finally:
        socks.close()
    assert m.stop() == 0
