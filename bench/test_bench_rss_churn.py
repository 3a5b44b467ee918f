"""RSS under a storm of transitions (issue 11 item 4: flat over thousands of transitions): a fastvrrp pair of
1,000 VRRPv3 instances at 10 ms on the multi-segment density lab (fastvrrp/lab/density.py), r1 master of all,
r2 backup, and r1 held to a fifth of a core by a cgroup CPU quota (the one of tests/chaos/chaoslib.py) for
the whole run. The starved master cannot send every advert in time, so r2 takes over and hands back without
end (hundreds of thousands of transitions a minute); r1 hears lower priorities as fast as r2 flaps. Both
daemons then make deferred work (reports, announcements) faster than their loops run it: the backlog must be
bounded (docs/costs.md#under-sustained-churn), so RSS stays flat.

    .venv/bin/python -m pytest -q -s bench/test_bench_rss_churn.py      # FASTVRRP_CHURN_MINUTES=2

RSS of both is sampled every 5 s; fails when a router grows more than 1 MiB from the first sample after
30 s of warm-up to the largest, when fewer than 10,000 transitions happened (no storm: nothing shown), or
when the backup folded no transition report (fastvrrp_deferred_folded_total, scraped at the end: the storm
did not outrun its loop, so the bound was not what kept it flat).
"""

from __future__ import annotations

import os
import time

import pytest

from bench.conftest import print_table
from bench.test_bench_metrics_rss import scrape
from bench.test_bench_rss_soak import summarise
from fastvrrp.io.nsexec import call_in_netns
from fastvrrp.lab.density import METRICS_ADDR, DensityLan, byte_compile, start_and_wait, wait_all_state
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import rss_kib
from tests.chaos.chaoslib import CpuQuota

pytestmark = [pytest.mark.netns]

MINUTES = float(os.environ.get("FASTVRRP_CHURN_MINUTES", "2"))
COUNT = 1000
A_MS = 10
SHARE = 0.2  # of one core, per 100 ms
SAMPLE_S = 5.0
WARM_S = 30.0
MIN_TRANSITIONS = 10_000


def _folded(body: bytes) -> dict[str, int]:
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("fastvrrp_deferred_folded_total{"):
            out[line.split('"')[1]] = int(line.rsplit(" ", 1)[1])
    return out


def test_rss_flat_under_a_storm_of_transitions(lab, request):
    byte_compile()
    net = DensityLan(lab, instances=COUNT, routers=2)
    r1 = net.router(1, "fastvrrp", net.instances(200, A_MS))
    r2 = net.router(2, "fastvrrp", net.instances(100, A_MS))
    for r in (r1, r2):
        r.extra_args = ["--metrics", METRICS_ADDR]  # (each on the loopback of its own namespace)
    up1 = start_and_wait(r1, timeout=60)
    wait_all_state(up1.watch, "MASTER", timeout=60)
    up2 = start_and_wait(r2, timeout=60)
    wait_all_state(up2.watch, "BACKUP", timeout=60)
    base = up2.watch.poll()
    quota = CpuQuota(f"{lab.prefix}churn", int(100_000 * SHARE), 100_000)
    samples: dict[str, list[tuple[float, int]]] = {"r1": [], "r2": []}
    try:
        quota.add(r1.proc.pid)
        t0 = time.monotonic()
        next_sample = t0
        while next_sample < t0 + MINUTES * 60:
            wait_for(lambda u=next_sample: time.monotonic() >= u, timeout=SAMPLE_S + 10, interval=0.2)
            now = time.monotonic()
            for name, r in (("r1", r1), ("r2", r2)):
                samples[name].append((now - t0, rss_kib(r.pids())))
            next_sample += SAMPLE_S
        throttled = quota.throttled()
    finally:
        quota.close()
    transitions = up2.watch.poll() - base
    assert r1.alive() and r2.alive()
    folded = {
        name: _folded(call_in_netns(r.ns, scrape, METRICS_ADDR, True)) for name, r in (("r1", r1), ("r2", r2))
    }
    rows, failures, _top = summarise(samples, WARM_S)
    print_table(
        request,
        [
            f"RSS under churn: {MINUTES:g} min, {COUNT} x {A_MS} ms, r1 held to {SHARE:.0%} of a core "
            f"({throttled} throttled periods), {transitions} transitions reported by r2",
            "  router  samples  first MiB  last MiB  largest MiB  KiB/hour (fit)",
            *("  " + "  ".join(f"{c:>9}" for c in row) for row in rows),
            f"  deferred work folded (fastvrrp_deferred_folded_total): {folded}",
        ],
    )
    assert transitions >= MIN_TRANSITIONS, f"only {transitions} transitions: the quota made no storm"
    assert not failures, failures
    assert folded["r2"]["report"] > 0, "the backup folded no report: the storm did not outrun its loop"
