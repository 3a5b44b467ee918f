"""Process faults on a pair: SIGKILL and restart, SIGSTOP / SIGCONT of the master and of the backup.

SIGKILL leaves the master's VIPs on its interface (no priority 0, no cleanup) while the backup takes over, so
two nodes hold them. The restarted daemon must remove what it left behind before it advertises: read from
the kernel (`ip -ts monitor address` in its namespace, whose stamp is never earlier than the deletion) and
the wire (the kernel's stamp of its first advert on the bridge).

A stopped process holds its state; when it continues, the pair must be back to one master per VRID within
the RFC's window: the higher-priority master's next advert (at most one interval away) sends the other one to
BACKUP (RFC 5798 6.4.3), plus MARGIN_S for two shared cores."""

from __future__ import annotations

import re
import time
from dataclasses import replace

import pytest
from chaoslib import (
    AddressMonitor,
    cont_process,
    overlaps,
    stop_process,
    vips_right,
    wait_settled,
)

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan, Router

pytestmark = [pytest.mark.netns, pytest.mark.chaos]

A_MS = 200
MARGIN_S = 0.25
VRIDS = (51, 52, 53)


def pair(lab, kind1: str, kind2: str, keepalived_bin: str, prio1: int = 200) -> tuple[Lan, Router, Router]:
    """r1 (priority `prio1`) masters every VRID, r2 (100) backs it up."""
    specs = [InstanceSpec(vrid=v, advert_int_ms=A_MS, vips=(f"198.51.100.{v}/32",)) for v in VRIDS]
    lan = Lan(lab, routers=2, client=False)
    r1 = lan.router(1, kind1, [replace(s, priority=prio1) for s in specs], keepalived_bin)
    r2 = lan.router(2, kind2, [replace(s, priority=100) for s in specs], keepalived_bin)
    return lan, r1, r2


KILL_CASES = [
    pytest.param("fastvrrp", "fastvrrp", id="fastvrrp-restarts-peer-fastvrrp"),
    pytest.param("fastvrrp", "keepalived", id="fastvrrp-restarts-peer-keepalived"),
    # keepalived 2.2.7 passes too: it removes its VIPs as it starts each instance ("removing VIPs.").
    pytest.param("keepalived", "fastvrrp", id="keepalived-restarts-peer-fastvrrp"),
]


@pytest.mark.parametrize(("restarted", "peer"), KILL_CASES)
def test_sigkill_then_restart_removes_stale_vips_before_the_first_advert(
    lab, keepalived_bin, restarted, peer
):
    # Priority 255, the address owner: the restarted daemon advertises as soon as its instances start (RFC
    # 5798 6.4.1), so "before the first advert" leaves it no slack (at 200 it would start as a BACKUP and
    # wait a Master_Down_Interval first).
    lan, r1, r2 = pair(lab, restarted, peer, keepalived_bin, prio1=255)
    vips = [s.vip_addrs[0] for s in r1.instances]
    with lan.tap() as tap:
        r1.start()
        wait_for(lambda: all(r1.states().get(s.iname) == "MASTER" for s in r1.instances), timeout=15)
        r2.start()
        wait_settled(r1, r2)
        r1.crash()
        wait_for(lambda: all(r2.states().get(s.iname) == "MASTER" for s in r2.instances), timeout=10)
        left = [v for v in vips if r1.has_vip(v)]
        assert left == vips, f"the SIGKILL left {left} behind, not every VIP: the fault did not happen"
        mon = AddressMonitor(lab, r1.ns, "mon-r1")
        t_restart = time.time()
        r1.start()
        wait_settled(r1, r2)
        wait_for(lambda: vips_right(lan, r1, r2) == {}, timeout=5, what="each VIP on its master only")
        mon.stop()
    events = mon.events()
    for s in r1.instances:
        vip = s.vip_addrs[0]
        first = tap.first_advert_from(r1.addr4, s.vrid, after=t_restart)
        assert first is not None, s.vrid
        deleted = [t for t, d, a in events if d and a == vip]
        assert deleted, f"{vip}: never deleted after the restart (the first advert was at {first.t:.6f})"
        print(f"\nVRID {s.vrid}: stale {vip} gone {(first.t - deleted[0]) * 1000:.1f} ms before the advert")
        assert deleted[0] < first.t, (
            f"{vip} deleted at {deleted[0]:.6f} (ip monitor), after the first advert at {first.t:.6f} (wire)"
        )
    if restarted == "fastvrrp":
        log = r1.log()
        removed = [m.start() for m in re.finditer(r"removed \S+ left behind by an earlier run", log)]
        entered = log.find("Entering MASTER STATE")
        assert len(removed) == len(vips) and max(removed) < entered, log[-3000:]


def test_sigstop_sigcont_of_the_master(lab, keepalived_bin):
    lan, r1, r2 = pair(lab, "fastvrrp", "fastvrrp", keepalived_bin)
    a = A_MS / 1000
    with lan.tap() as tap:
        r1.start()
        r2.start()
        wait_settled(r1, r2)
        stop_process(r1)
        try:
            # The backup takes over (Master_Down_Interval after the master's last advert).
            wait_for(lambda: all(r2.states().get(s.iname) == "MASTER" for s in r2.instances), timeout=10)
        finally:
            t_cont = time.time()
            cont_process(r1)
        wait_settled(r1, r2)
        end = t_cont + a + MARGIN_S + 3 * a
        wait_for(lambda: time.time() > end, timeout=10, what="the watch after SIGCONT")
    _one_master_after(tap, r1, r2, t_cont, a)
    assert vips_right(lan, r1, r2) == {}


def test_sigstop_sigcont_of_the_backup(lab, keepalived_bin):
    """The stalled backup's Master_Down timer is long overdue when it continues, and its socket holds the
    master's adverts of the whole stall. Whatever it does first, the pair must have one master per VRID
    again within the window; the wire shows whether it took over on the way (reported)."""
    lan, r1, r2 = pair(lab, "fastvrrp", "fastvrrp", keepalived_bin)
    a = A_MS / 1000
    with lan.tap() as tap:
        r1.start()
        r2.start()
        wait_settled(r1, r2)
        t_stop = time.time()
        stop_process(r2)
        try:
            # Stalled for three of its Master_Down_Intervals, counted in the master's adverts on the wire.
            need = int(3 * r2.instances[0].master_down_ms() / A_MS) + 1
            wait_for(lambda: len(tap.adverts(VRIDS[0], r1.addr4, after=t_stop)) >= need, timeout=15)
        finally:
            t_cont = time.time()
            cont_process(r2)
        end = t_cont + a + MARGIN_S + 3 * a
        wait_for(lambda: time.time() > end, timeout=10, what="the watch after SIGCONT")
        wait_settled(r1, r2)
    spurious = {v: len(tap.adverts(v, r2.addr4, after=t_cont)) for v in VRIDS}
    print(f"adverts from the continued backup: {spurious}")
    _one_master_after(tap, r1, r2, t_cont, a)
    assert vips_right(lan, r1, r2) == {}


def _one_master_after(tap, r1: Router, r2: Router, t: float, a: float) -> None:
    """From `t` on: r2 (lower priority) advertises no later than one interval + MARGIN_S after `t`, and r1
    (the higher) has advertised without a gap since then."""
    for v in VRIDS:
        late = [e.t - t for e in tap.adverts(v, r2.addr4, after=t) if e.priority > 0]
        assert not late or late[-1] <= a + MARGIN_S, f"VRID {v}: {r2.name} advertised {late[-1]:.3f} s after"
        both = overlaps(tap, v, r1.addr4, r2.addr4, A_MS, after=t)
        assert all(hi - lo <= a + MARGIN_S for lo, hi in both), f"VRID {v}: two masters {both}"
        mine = [e.t for e in tap.adverts(v, r1.addr4, after=t + a + MARGIN_S)]
        assert mine and max(b - x for x, b in zip(mine, mine[1:], strict=False)) < 1.5 * a, f"VRID {v}"
