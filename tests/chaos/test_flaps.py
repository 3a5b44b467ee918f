"""Link flaps: router 1's link goes down and up twenty times at random intervals (seeded; the seed is printed
and FASTVRRP_CHAOS_SEED replays a run). Router 1 masters one VRID and backs up the other, so both roles flap.

Verdict from the wire: no two masters for a VRID outside the RFC's windows. A master advertising from the
moment the other took over until it hears the higher priority is allowed for one interval (RFC 5798 6.4.3:
the lower one steps down on the next advert it receives) plus MARGIN_S for two shared cores; anything longer
is a split brain. At the end each router is in its priority's state, each VIP on its master only and router
1 still has its LAN address."""

from __future__ import annotations

import os
import random
import time

import pytest
from chaoslib import overlaps, runs, split_pair, vips_right, wait_settled

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import Lan

pytestmark = [pytest.mark.netns, pytest.mark.chaos]

A_MS = 100
MARGIN_S = 0.15
FLAPS = 20


def test_twenty_random_link_flaps_leave_no_split_brain(lab):
    seed = int(os.environ.get("FASTVRRP_CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\nlink flap seed {seed} (FASTVRRP_CHAOS_SEED={seed} replays it)")
    rng = random.Random(seed)
    a = A_MS / 1000
    lan = Lan(lab, routers=2, client=False)
    one, two = split_pair(2, A_MS)
    r1, r2 = lan.router(1, "fastvrrp", one), lan.router(2, "fastvrrp", two)
    mdi = max(s.master_down_ms() for s in one + two) / 1000
    with lan.tap() as tap:
        r1.start()
        r2.start()
        wait_settled(r1, r2)
        t0 = time.time()
        # Down and up for random times around the Master_Down_Interval: shorter ones the backup never
        # notices, longer ones make it take over and the returning router preempt it.
        plan = [(rng.uniform(0.02, 2 * mdi), rng.uniform(0.02, 2 * mdi)) for _ in range(FLAPS)]
        try:
            for down_s, up_s in plan:
                r1.link(False)
                time.sleep(down_s)  # the fault's own duration, not a wait for anything
                r1.link(True)
                time.sleep(up_s)
        finally:
            r1.link(True)
        wait_settled(r1, r2, timeout=15)
        t_end = time.time() + 3 * a
        wait_for(lambda: time.time() > t_end, timeout=5, what="three more intervals on the wire")
    assert r1.transitions_count() > 2 * len(one), f"seed {seed}: the flaps caused no transition"
    takeovers = len(runs(tap.adverts(one[0].vrid, r2.addr4, after=t0), 1.5 * a))
    print(f"router 2 took VRID {one[0].vrid} over {takeovers} times")
    assert takeovers >= 1, f"seed {seed}: no flap was long enough for a takeover"
    bad = {}
    for s in one:
        both = overlaps(tap, s.vrid, r1.addr4, r2.addr4, A_MS, after=t0)
        long = [(round(lo - t0, 3), round(hi - lo, 3)) for lo, hi in both if hi - lo > a + MARGIN_S]
        if long:
            bad[s.vrid] = long
        print(
            f"VRID {s.vrid}: {len(both)} overlaps, longest {max((h - lo for lo, h in both), default=0):.3f} s"
        )
    assert not bad, f"seed {seed}: two masters longer than {a + MARGIN_S:.3f} s (start, length): {bad}"
    assert vips_right(lan, r1, r2) == {}, f"seed {seed}"
    assert "192.0.2.1" in r1.addresses(), f"seed {seed}: router 1 lost its LAN address"
