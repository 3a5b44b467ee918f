"""What density costs fastvrrp (issue 11 items 3, 4, 5): start-up, memory and a mass takeover at 1,000 and
4,000 VRRPv3 instances, on the multi-segment lab of fastvrrp/lab/density.py (250 VRIDs per bridge).

Per scenario: r1 (priority 200) is master of every instance, r2 (100; VRID 1 of segment 0 is its address
owner at 255) is backup. Measured on r2: exec -> every instance in its initial state, exec -> the owner's
first advert on the wire, RSS once steady (and KiB per instance against a 250-instance run of the same
session). Then r1 is killed (SIGKILL: no priority-0 advert): per VRID, r2's first advert after r1's last
one, against r2's Master_Down_Interval (goal: every one within +20 ms at 1,000); the VIPs' arrival as
`ip -ts monitor address` in r2's namespace reports them (VIPs per second, last VIP after the kill); "putting
it back" lines (none). Then CYCLES more takeovers (r1 restarted: r2 hands back by preemption; r1 killed
again) and RSS again: flat over thousands of transitions.

Reports, fails only when a run breaks. Run on an otherwise quiet machine:
    .venv/bin/python -m pytest -q -s bench/test_bench_density_cost.py
FASTVRRP_COST_SCENARIOS (e.g. "1000x100,4000x1000": instances x advert interval in ms) narrows a run.
fastvrrp runs from bytecode written before the first scenario, as an installed package does.
"""

from __future__ import annotations

import bisect
import os
import re
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from bench.conftest import print_table
from fastvrrp.lab.density import (
    DensityLan,
    LogWatch,
    byte_compile,
    density_instances,
    first_advert_after,
    start_and_wait,
    wait_all_state,
)
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import master_down_ms, rss_kib

pytestmark = [pytest.mark.netns]

ALL = [(250, 100), (1000, 100), (4000, 1000)]
_SEL = os.environ.get("FASTVRRP_COST_SCENARIOS", "")
SCENARIOS = [tuple(int(x) for x in s.split("x")) for s in _SEL.split(",") if s] or ALL
CYCLES = int(os.environ.get("FASTVRRP_COST_CYCLES", "3"))
RESULTS: dict[tuple[int, int], Cost] = {}
_TS = re.compile(
    r"^\[(?P<ts>[0-9T:.-]+)\] (?P<del>Deleted )?\d+: eth(?P<seg>\d+)\s+inet (?P<addr>[0-9.]+)/32"
)


@dataclass
class Cost:
    count: int
    adver_int_ms: int
    startup_s: float = 0.0
    owner_s: float | None = None
    rss_kib: int = 0
    late_ms: list[float] = field(default_factory=list)  # per VRID taken over
    missing: int = 0  # VRIDs without a takeover advert
    vips_per_s: float = 0.0
    vip_lag_ms: list[float] = field(default_factory=list)  # takeover advert -> its VIP added
    vips_last_s: float = 0.0  # kill -> the last VIP added
    vips_added: int = 0
    put_back: int = 0
    rss_after_kib: int = 0
    rss_cycles_kib: list[int] = field(default_factory=list)  # after each takeover
    transitions: int = 0


def _vip_adds(log: str) -> dict[tuple[int, int], float]:
    """(segment, VRID) -> time.time() of the first add of its /32 that `ip -ts monitor address` reported."""
    out: dict[tuple[int, int], float] = {}
    for line in log.splitlines():
        m = _TS.match(line)
        if m and not m["del"]:
            out.setdefault((int(m["seg"]), int(m["addr"].rsplit(".", 1)[1])), _stamp(m["ts"]))
    return out


def _stamp(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def _takeover(lab, net, r1, r2, watch2: LogWatch, cost: Cost, first: bool) -> None:
    mdi = master_down_ms(100, cost.adver_int_ms)
    boot = max(60.0, cost.count / 20)
    mon = lab.spawn(r2.ns, ["ip", "-ts", "-4", "monitor", "address"], f"ipmon-{len(lab.procs)}")
    with net.observer() as obs:
        t_quiet = time.monotonic()
        wait_for(lambda: time.monotonic() - t_quiet >= 1.0, timeout=5, interval=0.05, what="steady")
        log_from = len(r2.log())
        t_kill = time.time()
        r1.crash()
        wait_all_state(watch2, "MASTER", timeout=boot)
        t_done = time.time()
        t_wait = time.monotonic()  # durations on the monotonic clock (a VM's wall clock may step)
        wait_for(lambda: time.monotonic() - t_wait >= 1.0, timeout=5, interval=0.05, what="after")
    mon.stop()
    takeover_log = r2.log()[log_from:]
    cost.put_back += takeover_log.count("putting it back")
    if not first:
        return
    by_vrid = {k: t for k, t in _vip_adds(mon.log()).items() if t >= t_kill}
    adds = sorted(by_vrid.values())
    cost.vips_added = len(adds)
    if len(adds) > 1:
        # The takeovers themselves are spread over one advert interval (r1's last adverts were), so the rate
        # is taken over the busiest 10 ms of additions: what the netlink batches sustain.
        cost.vips_per_s = max(bisect.bisect_right(adds, t + 0.01) - i for i, t in enumerate(adds)) / 0.01
        cost.vips_last_s = adds[-1] - t_kill
    adverts = list(obs.adverts())
    last_r1: dict[tuple[int, int], int] = {}
    for a in adverts:
        if a.src_host % 8 == 1 and a.t_ns <= t_done * 1e9:
            key = (a.segment, a.vrid)
            last_r1[key] = max(last_r1.get(key, 0), a.t_ns)
    for (seg, vrid), t_ns in last_r1.items():
        took = first_advert_after(adverts, 2, t_ns / 1e9, segment=seg, vrid=vrid)
        if took is None:
            cost.missing += 1
            continue
        cost.late_ms.append(took * 1000 - mdi)
        added = by_vrid.get((seg, vrid))
        if added is not None:  # the VIP in place, after the instance's takeover advert
            cost.vip_lag_ms.append((added - t_ns / 1e9 - took) * 1000)


def _run(lab, count: int, a_ms: int) -> Cost:
    cost = Cost(count, a_ms)
    net = DensityLan(lab, instances=count, routers=2)
    boot = max(60.0, count / 20)
    r1 = net.router(1, "fastvrrp", net.instances(200, a_ms))
    specs2 = density_instances(count, 100, a_ms, owner=(0, 2))
    r2 = net.router(2, "fastvrrp", specs2)
    with net.observer() as obs:
        up1 = start_and_wait(r1, timeout=boot)
        wait_all_state(up1.watch, "MASTER", timeout=boot)
        up2 = start_and_wait(r2, timeout=boot)
        t_seen = time.monotonic()
        wait_for(lambda: time.monotonic() - t_seen >= 1.0, timeout=5, interval=0.05, what="owner's advert")
    cost.startup_s = up2.initial_s
    cost.owner_s = first_advert_after(obs.adverts((0,)), 2, up2.exec_t, segment=0, vrid=1)
    watch2 = up2.watch

    def settled() -> bool:
        watch2.poll()
        return sum(v == b"BACKUP" for v in watch2.last.values()) == count - 1

    wait_for(settled, timeout=boot, interval=0.1, what="r2 backup of all but its owner instance")
    t0 = time.monotonic()
    wait_for(lambda: time.monotonic() - t0 >= 2.0, timeout=5, interval=0.1, what="steady")
    cost.rss_kib = rss_kib(r2.pids())
    _takeover(lab, net, r1, r2, watch2, cost, first=True)
    cost.rss_cycles_kib.append(rss_kib(r2.pids()))
    for _ in range(CYCLES):
        start_and_wait(r1, timeout=boot)  # r2 hands back all but its owner instance (preemption)
        wait_for(settled, timeout=boot, interval=0.1, what="r2 back to backup")
        _takeover(lab, net, r1, r2, watch2, cost, first=False)
        cost.rss_cycles_kib.append(rss_kib(r2.pids()))
    cost.rss_after_kib = rss_kib(r2.pids())
    cost.transitions = watch2.poll()
    r2.stop(timeout=60)
    return cost


@pytest.mark.parametrize(("count", "a_ms"), SCENARIOS, ids=[f"{n}x{a}ms" for n, a in SCENARIOS])
def test_density_cost(lab, count, a_ms):
    cost = _run(lab, count, a_ms)
    RESULTS[(count, a_ms)] = cost
    assert cost.startup_s > 0 and cost.rss_kib > 0
    assert cost.late_ms, "no takeover advert was seen"


def _line(c: Cost, base: Cost | None) -> list[str]:
    late = sorted(c.late_ms)
    p = (lambda q: late[min(len(late) - 1, int(q * len(late)))]) if late else (lambda q: float("nan"))
    per = ""
    if base is not None and c.count > base.count:
        kib = (c.rss_kib - base.rss_kib) / (c.count - base.count)
        per = f" ({kib:.2f} KiB per instance above {base.count})"
    owner = "-" if c.owner_s is None else f"{1000 * c.owner_s:.0f} ms"
    return [
        f"{c.count} instances x {c.adver_int_ms} ms (fastvrrp backup r2):",
        f"  start-up exec -> every instance in its initial state: {c.startup_s:.2f} s;"
        f" owner's first advert: {owner}",
        f"  RSS steady {c.rss_kib / 1024:.1f} MiB{per}; after {CYCLES + 1} takeovers and hand-backs "
        f"({c.transitions} transitions): {c.rss_after_kib / 1024:.1f} MiB",
        f"  takeover: first advert after Master_Down_Interval median"
        f" {statistics.median(late) if late else 0:.1f} ms, p99 {p(0.99):.1f} ms,"
        f" max {late[-1] if late else 0:.1f} ms over {len(late)} VRIDs ({c.missing} without)",
        f"  VIPs: {c.vips_added} added, {c.vips_per_s:.0f} per second at the busiest,"
        f" each {statistics.median(c.vip_lag_ms) if c.vip_lag_ms else 0:.1f} ms (median) /"
        f" {max(c.vip_lag_ms, default=0):.1f} ms (max) after its takeover advert,"
        f" the last {c.vips_last_s:.2f} s after the kill; 'putting it back' lines: {c.put_back}",
        "  RSS after each takeover: " + ", ".join(f"{k / 1024:.1f}" for k in c.rss_cycles_kib) + " MiB",
    ]


@pytest.fixture(scope="module", autouse=True)
def _installed_bytecode():
    """fastvrrp starts from bytecode, as an installed package does (fastvrrp.lab.density.byte_compile)."""
    byte_compile()


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    if not RESULTS:
        return
    base = RESULTS.get(min(RESULTS))
    lines = ["", "density cost (issue 11 items 3-5)"]
    for key in sorted(RESULTS):
        lines += _line(RESULTS[key], base)
    print_table(request, lines)
