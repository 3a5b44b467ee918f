"""keepalived and fastvrrp in one virtual router, each as master and as backup (v2, v3 IPv4, v3 IPv6).

Each scenario runs on a fresh LAN (fastvrrp.lab.testbed) with a wire capture on the bridge:
  1. router A (priority 200) starts and becomes master; router B (100) starts and stays backup for
     longer than its Master_Down_Interval, so it must be hearing A (RFC 5798 6.4.2);
  2. A is stopped gracefully: its priority-0 advert makes B master after about Skew_Time, well before
     Master_Down_Interval (RFC 5798 6.4.2 / 6.4.3), and A removes its VIPs;
  3. A restarts and preempts B (RFC 5798 6.4.2: higher priority + preempt);
  4. A crashes (SIGKILL): B takes over after Master_Down_Interval measured from A's last advert.
Throughout, two sources advertise the VRID at the same time only around the preemption in step 3.

The keepalived<->keepalived leg is the baseline that proves the harness; the mixed legs are the interop.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import (
    InstanceSpec,
    Lan,
    Router,
    WireTap,
    dual_master_windows,
    master_down_ms,
    measure_failover,
    skew_ms,
    wait_heard,
)

pytestmark = [pytest.mark.interop, pytest.mark.netns]

# (version, VIP, advert interval ms, auth). v2 needs whole seconds, so it is one slow leg per pair.
PROTOS = {
    "v2-ipv4": InstanceSpec(
        vrid=51, version=2, advert_int_ms=1000, vips=("192.0.2.100/24",), auth_pass="s3cret"
    ),
    "v3-ipv4": InstanceSpec(vrid=52, version=3, advert_int_ms=100, vips=("192.0.2.100/24",)),
    "v3-ipv6": InstanceSpec(vrid=53, version=3, advert_int_ms=100, vips=("2001:db8::100/64",)),
}
PAIRS = [
    ("keepalived", "keepalived"),  # baseline
    ("keepalived", "fastvrrp"),
    ("fastvrrp", "keepalived"),
]
HIGH, LOW = 200, 100
# Capture and scheduling slack: being early is a protocol error, so the lower bound is tight.
EARLY_MS = 5.0
LATE_MS = 120.0


def _no_dual_master(tap: WireTap, spec: InstanceSpec, allowed: list[tuple[float, float]]) -> None:
    """Only windows starting inside `allowed` (each up to one interval plus slack) may have two masters."""
    slack = spec.advert_int_ms / 1000 + 0.1
    for lo, hi, a, b in dual_master_windows(tap.adverts(spec.vrid), spec.advert_int_ms):
        ok = any(w0 <= lo <= w1 and hi - lo <= slack for w0, w1 in allowed)
        assert ok, f"two masters ({a}, {b}) for {(hi - lo) * 1000:.0f} ms outside a preemption window"


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}-master-{p[1]}-backup")
@pytest.mark.parametrize("proto", list(PROTOS), ids=str)
def test_master_backup_handover(lab, keepalived_bin, proto, pair):
    base = PROTOS[proto]
    vip = base.vip_addrs[0]
    a_ms = base.advert_int_ms
    lan = Lan(lab, routers=2, client=False)
    a: Router = lan.router(1, pair[0], [replace(base, priority=HIGH)], keepalived_bin=keepalived_bin)
    b: Router = lan.router(2, pair[1], [replace(base, priority=LOW)], keepalived_bin=keepalived_bin)
    fam = base.family
    startup = 15.0  # process start (Python import for fastvrrp) plus Master_Down_Interval
    with lan.tap() as tap:
        # 1. A becomes master; B stays backup for longer than its Master_Down_Interval.
        a.start()
        a.wait_state("MASTER", timeout=startup + master_down_ms(HIGH, a_ms, base.version) / 1000)
        t_b = time.time()
        b.start()
        b.wait_state("BACKUP", timeout=startup)
        wait_heard(tap, a.source(fam), base.vrid, after=t_b, count=1)
        hold = master_down_ms(LOW, a_ms, base.version) / 1000 + 2 * a_ms / 1000
        time.sleep(hold)  # a fixed observation window, not a wait for a condition
        assert b.state() == "BACKUP", b.log()[-2000:]
        assert a.state() == "MASTER"
        assert tap.first_advert_from(b.source(fam), base.vrid, after=t_b) is None, "backup advertised"
        adv = tap.adverts(base.vrid, a.source(fam), after=t_b)
        assert adv and {e.version for e in adv} == {base.version}
        assert {e.priority for e in adv} == {HIGH}
        # the state is logged as it changes; the address follows through netlink a moment later
        wait_for(lambda: lan.who_has(vip) == [a.ns], timeout=3, what="the VIP on A only")

        # 2. Graceful stop of A: priority 0, B master after Skew_Time (not Master_Down_Interval).
        fo = measure_failover(tap, a, b, "graceful")
        assert a.proc is not None and a.proc.popen.returncode == 0, a.log()[-2000:]
        assert fo.last_old_priority == 0, "the graceful master did not send a priority-0 advert"
        skew = skew_ms(LOW, a_ms, base.version)
        assert skew - EARLY_MS <= fo.failover_ms <= skew + LATE_MS, fo
        assert fo.failover_ms < master_down_ms(LOW, a_ms, base.version) - a_ms, fo
        b.wait_state("MASTER", timeout=5)
        wait_for(lambda: lan.who_has(vip) == [b.ns], timeout=3, what="the VIP on B only")

        # 3. A restarts with the higher priority and preempts B.
        t_restart = time.time()
        a.start()
        a.wait_state("MASTER", timeout=startup + master_down_ms(HIGH, a_ms, base.version) / 1000)
        b.wait_state("BACKUP", timeout=5)
        t_preempted = time.time()
        wait_heard(tap, a.source(fam), base.vrid, after=t_preempted, count=2)
        wait_for(lambda: lan.who_has(vip) == [a.ns], timeout=3, what="the VIP back on A only")

        # 4. A crashes: B master after Master_Down_Interval from A's last advert.
        fo = measure_failover(tap, a, b, "crash")
        mdi = master_down_ms(LOW, a_ms, base.version)
        assert fo.last_old_priority == HIGH
        assert mdi - EARLY_MS <= fo.failover_ms <= mdi + LATE_MS, fo
        b.wait_state("MASTER", timeout=5)
        wait_for(lambda: b.has_vip(vip), timeout=3, what="the VIP on B")
        assert fo.garp_ms is not None, "no gratuitous ARP / unsolicited NA from the new master"

        _no_dual_master(tap, base, allowed=[(t_restart, t_preempted + a_ms / 1000)])


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}-master-{p[1]}-backup")
def test_link_down_fault_and_return(lab, keepalived_bin, pair):
    """Master's link down: it enters FAULT (keepalived extension of RFC 5798 6.4) and the backup takes over
    after Master_Down_Interval; link up: the master returns and preempts."""
    base = PROTOS["v3-ipv4"]
    a_ms = base.advert_int_ms
    lan = Lan(lab, routers=2, client=False)
    a = lan.router(1, pair[0], [replace(base, priority=HIGH)], keepalived_bin=keepalived_bin)
    b = lan.router(2, pair[1], [replace(base, priority=LOW)], keepalived_bin=keepalived_bin)
    with lan.tap() as tap:
        a.start()
        a.wait_state("MASTER", timeout=15)
        t_b = time.time()
        b.start()
        b.wait_state("BACKUP", timeout=15)
        wait_heard(tap, a.source(4), base.vrid, after=t_b, count=2)

        t_down = time.time()
        a.link_down()
        a.wait_state("FAULT", timeout=5)
        b.wait_state("MASTER", timeout=5)
        first = tap.first_advert_from(b.source(4), base.vrid, after=t_down)
        last = tap.last_advert_from(a.source(4), base.vrid, before=first.t)
        assert first is not None and last is not None
        took = (first.t - last.t) * 1000
        # With the link down A cannot send a priority-0 advert, so B waits the full interval.
        mdi = master_down_ms(LOW, a_ms)
        assert mdi - EARLY_MS <= took <= mdi + LATE_MS, took

        t_up = time.time()
        a.link_up()
        a.wait_state("MASTER", timeout=10)
        b.wait_state("BACKUP", timeout=5)
        t_back = time.time()
        wait_heard(tap, a.source(4), base.vrid, after=t_back, count=2)
        wait_for(lambda: lan.who_has(base.vip_addrs[0]) == [a.ns], timeout=3, what="the VIP on A only")
        _no_dual_master(tap, base, allowed=[(t_up, t_back + a_ms / 1000)])
