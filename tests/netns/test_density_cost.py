"""What a transition costs at density (issue 11 items 3 and 5), in real namespaces with fastvrrp on both
sides: a mass takeover of 250 instances puts every VIP in place without a "putting it back" storm and does
not hold up the adverts of the instances the survivor already served; an address owner among 250 instances
advertises soon after exec. The figures (VIPs per second, lateness after Master_Down_Interval, start-up,
RSS) are printed; bench/test_bench_density_cost.py measures them at 1,000 and 4,000 instances."""

from __future__ import annotations

import dataclasses
import json
import statistics
import time

import pytest

from fastvrrp.lab.density import (
    DensityLan,
    density_instances,
    first_advert_after,
    start_and_wait,
    wait_all_state,
)
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import master_down_ms, rss_kib

pytestmark = pytest.mark.netns

A_MS = 100
PER_SEGMENT = 250


def _vips(lab, ns: str) -> set[str]:
    info = json.loads(lab.sh(ns, "ip -j -4 addr show") or "[]")
    return {a["local"] for link in info for a in link.get("addr_info", []) if a.get("prefixlen") == 32}


def _specs(count: int, high_segment: int):
    """`count` instances over two segments: priority 200 on `high_segment`, 100 on the other."""
    out = []
    for spec in density_instances(count, 100, A_MS):
        seg = int(spec.name.split("_")[1])
        out.append(dataclasses.replace(spec, priority=200) if seg == high_segment else spec)
    return out


def test_mass_takeover_puts_every_vip_in_place_and_keeps_served_adverts(lab):
    count = 2 * PER_SEGMENT
    net = DensityLan(lab, instances=count, routers=2)
    r1 = net.router(1, "fastvrrp", _specs(count, 0))  # master of segment 0
    r2 = net.router(2, "fastvrrp", _specs(count, 1))  # master of segment 1, backup of segment 0
    up1 = start_and_wait(r1, timeout=60)
    up2 = start_and_wait(r2, timeout=60)

    def settled() -> bool:
        up1.watch.poll()
        up2.watch.poll()
        want1 = {f"VI_0_{v}".encode() for v in range(1, PER_SEGMENT + 1)}
        want2 = {f"VI_1_{v}".encode() for v in range(1, PER_SEGMENT + 1)}
        masters1 = {k for k, v in up1.watch.last.items() if v == b"MASTER"}
        masters2 = {k for k, v in up2.watch.last.items() if v == b"MASTER"}
        return masters1 == want1 and masters2 == want2

    wait_for(settled, timeout=60, interval=0.1, what="r1 master of segment 0, r2 of segment 1")
    seg0 = {f"198.51.100.{v}" for v in range(1, PER_SEGMENT + 1)}
    seg1 = {f"203.0.113.{v}" for v in range(1, PER_SEGMENT + 1)}
    wait_for(lambda: seg1 <= _vips(lab, r2.ns), timeout=30, what="r2's own VIPs")
    log_before = len(r2.log())
    with net.observer() as obs:
        t_quiet = time.monotonic()
        wait_for(lambda: time.monotonic() - t_quiet >= 0.5, timeout=5, interval=0.05, what="a steady stretch")
        t_kill = time.time()
        r1.crash()
        wait_all_state(up2.watch, "MASTER", timeout=60)
        wait_for(lambda: seg0 | seg1 <= _vips(lab, r2.ns), timeout=30, interval=0.02, what="every VIP on r2")
        t_vips = time.time()
        t_after = time.monotonic()
        wait_for(lambda: time.monotonic() - t_after >= 0.5, timeout=5, interval=0.05, what="adverts after")
        t_end = time.time()
    assert all(d == 0 for d in obs.dropped.values()), obs.dropped
    adverts = list(obs.adverts())
    # No storm: our own address changes are not taken for someone else's.
    takeover_log = r2.log()[log_before:]
    assert "putting it back" not in takeover_log
    assert "cannot add" not in takeover_log
    # Every instance r2 took over advertises, after r1's last advert plus its Master_Down_Interval.
    mdi_ms = master_down_ms(100, A_MS)
    last_r1 = {}
    for a in adverts:
        if a.segment == 0 and a.src_host % 8 == 1:
            last_r1[a.vrid] = max(last_r1.get(a.vrid, 0), a.t_ns)
    late_ms = []
    for vrid, t_ns in last_r1.items():
        took = first_advert_after(adverts, 2, t_ns / 1e9, segment=0, vrid=vrid)
        assert took is not None, f"VRID {vrid}: no advert from r2 after r1 stopped"
        late_ms.append(took * 1000 - mdi_ms)
    assert len(late_ms) == PER_SEGMENT
    # The instances r2 already served kept their rhythm through the takeover: no gap reached what would
    # make a backup take over (generous: the interval is 100 ms, Master_Down_Interval 360 ms).
    served = {}
    for a in adverts:
        if a.segment == 1 and a.src_host % 8 == 2 and t_kill - 0.5 <= a.t_ns / 1e9 <= t_end:
            served.setdefault(a.vrid, []).append(a.t_ns)
    assert len(served) == PER_SEGMENT
    gaps = [(b - a) / 1e6 for ts in served.values() for a, b in zip(ts, ts[1:], strict=False)]
    assert max(gaps) < mdi_ms, max(gaps)
    print(
        f"\ntakeover of {PER_SEGMENT}: first advert after Master_Down_Interval median "
        f"{statistics.median(late_ms):.1f} ms, max {max(late_ms):.1f} ms; every VIP in place "
        f"{t_vips - t_kill:.2f} s after the kill; served instances' largest gap {max(gaps):.1f} ms; "
        f"r2 start-up {up2.initial_s:.2f} s, RSS {rss_kib(r2.pids())} KiB for {count} instances"
    )


def test_an_address_owner_advertises_soon_after_exec(lab):
    net = DensityLan(lab, instances=PER_SEGMENT, routers=1)
    r1 = net.router(1, "fastvrrp", net.instances(priority=100, adver_int_ms=1000, owner_host=1))
    with net.observer() as obs:
        up = start_and_wait(r1, timeout=60)
        t_up = time.monotonic()  # durations on the monotonic clock (a VM's wall clock may step)
        wait_for(lambda: time.monotonic() - t_up >= 1.5, timeout=10, interval=0.05, what="a first advert")
    took = first_advert_after(obs.adverts(), 1, up.exec_t, segment=0, vrid=1)
    assert took is not None
    print(
        f"\nowner among {PER_SEGMENT}: first advert {took * 1000:.0f} ms after exec; all {up.initial_s:.2f} s"
    )
    assert took < 1.5  # generous (goal 250 ms, measured in bench/test_bench_density_cost.py)
