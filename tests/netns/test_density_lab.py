"""The density lab and its observer in real namespaces: 2 segments x 20 instances at 100 ms, fastvrrp master
and backup, a short window. The lab builds, the observer sees every instance's adverts from the master only,
no gap reaches Master_Down_Interval, the start-up and resource figures are real numbers."""

from __future__ import annotations

import time

import pytest

from fastvrrp.lab.density import DensityLan, UsageMeter, first_advert_after, start_and_wait, wait_all_state
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import master_down_ms

pytestmark = pytest.mark.netns

COUNT, A_MS, WINDOW_S = 40, 100, 2.0


def test_density_lab_observes_two_segments(lab):
    net = DensityLan(lab, instances=COUNT, routers=2, per_segment=COUNT // 2)
    assert net.segments == 2
    r1 = net.router(1, "fastvrrp", net.instances(priority=200, adver_int_ms=A_MS, owner_host=1))
    r2 = net.router(2, "fastvrrp", net.instances(priority=100, adver_int_ms=A_MS))
    with net.observer() as obs:
        up1 = start_and_wait(r1, timeout=60)
        wait_all_state(up1.watch, "MASTER", timeout=60)
        up2 = start_and_wait(r2, timeout=60)
        wait_all_state(up2.watch, "BACKUP", timeout=60)
        meter = UsageMeter([r1, r2])
        meter.begin()
        t0, m0 = time.time(), time.monotonic()
        # the window is a span of wall time the capture covers; it ends once WINDOW_S has passed
        wait_for(
            lambda: time.monotonic() - m0 >= WINDOW_S, timeout=WINDOW_S + 5, interval=0.05, what="window"
        )
        t1 = time.time()
        usage = meter.end()
        transitions = (up1.watch.poll(), up2.watch.poll())
    assert set(obs.dropped) == {"br0", "br1"} and all(d == 0 for d in obs.dropped.values()), obs.dropped
    mdi = master_down_ms(100, A_MS)
    rep = net.analyse(obs, t0, t1, A_MS, master=1, mdi_ms=mdi)
    # every instance of both segments advertised, from the master only
    assert rep.silent == 0 and len(rep.gaps_ms) == COUNT
    assert {s for s, _ in rep.gaps_ms} == {0, 1}
    assert rep.backup_adverts == 0, rep.other_adverts
    assert rep.largest_gap_ms < mdi, (rep.worst_vrid, rep.largest_gap_ms)
    assert 0.8 < rep.rate_share < 1.2, rep.rate_share
    # the owner (priority 255, VRID 1 of segment 0) advertised after exec; its adverts carry 255
    adverts = list(obs.adverts())
    assert first_advert_after(adverts, 1, up1.exec_t) is not None
    assert {a.priority for a in adverts if a.segment == 0 and a.vrid == 1 and a.src_host == 1} == {255}
    # the initial states and the MASTER / BACKUP entries were counted from the logs
    assert transitions[0] >= 2 * COUNT - 1 and transitions[1] >= COUNT, transitions
    assert up1.initial_s > 0 and up2.initial_s > 0
    # CPU is in clock ticks (10 ms): 40 instances at 100 ms may read 0 in 2 s; RSS is always there
    assert all(u.cpu_s >= 0 and u.rss_kib > 0 and u.window_s >= WINDOW_S for u in usage), usage
    assert obs.cpu_seconds() >= 0
