"""RSS over a long run (issue 11 item 4: flat over an hour): a fastvrrp pair of 1,000 VRRPv3 instances at
10 ms on the multi-segment density lab (fastvrrp/lab/density.py), r1 master of all with `--metrics`
(scraped once a minute, as Prometheus would), r2 backup. RSS of both is sampled every SAMPLE_S seconds, each
sample taken before a scrape due at that moment (so a sample shows what the daemon keeps between scrapes,
after the status file writes that follow one, not the moment right after a scrape's trim). The report gives
the first sample after a minute of warm-up, the last one and the largest, the growth per hour of a
least-squares line through the samples after warm-up, and the transitions seen (none expected).

    FASTVRRP_SOAK_MINUTES=60 .venv/bin/python -m pytest -q -s bench/test_bench_rss_soak.py
    # 4,000 instances at 100 ms (limit 64 MiB):
    FASTVRRP_SOAK_INSTANCES=4000 FASTVRRP_SOAK_INTERVAL_MS=100 .venv/bin/python -m pytest -q -s \
        bench/test_bench_rss_soak.py

The default is 3 minutes. Fails when a router's RSS grows more than 1 MiB from the first sample after
warm-up to the last or to the largest, when the master's largest exceeds the issue's limit (40 MiB with
1,000 instances, 64 MiB with 4,000), or a transition happens. The scrapes ask for gzip, as Prometheus does,
every other one plain (bench/test_bench_metrics_rss.py scrapes 20 times in a row).
"""

from __future__ import annotations

import os
import time

import pytest

from bench.conftest import print_table
from bench.test_bench_metrics_rss import scrape
from fastvrrp.io.nsexec import call_in_netns
from fastvrrp.lab.density import METRICS_ADDR, DensityLan, byte_compile, start_and_wait, wait_all_state
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import rss_kib

pytestmark = [pytest.mark.netns]

MINUTES = float(os.environ.get("FASTVRRP_SOAK_MINUTES", "3"))
COUNT = int(os.environ.get("FASTVRRP_SOAK_INSTANCES", "1000"))
A_MS = int(os.environ.get("FASTVRRP_SOAK_INTERVAL_MS", "10"))
SAMPLE_S = float(os.environ.get("FASTVRRP_SOAK_SAMPLE_S", "5"))
SCRAPE_S = 60.0
WARM_S = 60.0
GROWTH_KIB = 1024


LIMIT_MIB = {1000: 40.0, 4000: 64.0}  # issue 11: the master's RSS with that many instances


def _slope_per_hour(samples: list[tuple[float, int]]) -> float:
    """KiB per hour of the least-squares line through (seconds, KiB)."""
    n = len(samples)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in samples) / n
    my = sum(k for _, k in samples) / n
    sxx = sum((t - mx) ** 2 for t, _ in samples)
    sxy = sum((t - mx) * (k - my) for t, k in samples)
    return sxy / sxx * 3600 if sxx else 0.0


def summarise(
    samples: dict[str, list[tuple[float, int]]], warm_s: float
) -> tuple[list[list[str]], list[str], dict[str, int]]:
    """Per router, from the samples (seconds, KiB) after `warm_s`: the table row (samples, first, last and
    largest MiB, fitted KiB/hour), a failure when the largest is more than GROWTH_KIB above the first, and
    the largest (KiB)."""
    rows: list[list[str]] = []
    failures = []
    tops: dict[str, int] = {}
    for name, got in samples.items():
        warm = [s for s in got if s[0] >= warm_s] or got
        first, last, top = warm[0][1], warm[-1][1], max(k for _, k in warm)
        tops[name] = top
        mib = [f"{k / 1024:.1f}" for k in (first, last, top)]
        rows.append([name, f"{len(got)}", *mib, f"{_slope_per_hour(warm):+.0f}"])
        if top - first > GROWTH_KIB:  # the largest: growth that a trim takes back later counts too
            failures.append(f"{name} grew {(top - first) / 1024:.1f} MiB after warm-up")
    return rows, failures, tops


def test_rss_flat_over_a_long_run(lab, request):
    byte_compile()
    net = DensityLan(lab, instances=COUNT, routers=2)
    boot = max(60.0, COUNT / 20)
    r1 = net.router(1, "fastvrrp", net.instances(200, A_MS))
    r1.extra_args = ["--metrics", METRICS_ADDR]  # the loopback of r1's namespace
    r2 = net.router(2, "fastvrrp", net.instances(100, A_MS))
    up1 = start_and_wait(r1, timeout=boot)
    wait_all_state(up1.watch, "MASTER", timeout=boot)
    up2 = start_and_wait(r2, timeout=boot)
    wait_all_state(up2.watch, "BACKUP", timeout=boot)
    watches = {"r1": up1.watch, "r2": up2.watch}
    base = {name: w.poll() for name, w in watches.items()}
    samples: dict[str, list[tuple[float, int]]] = {"r1": [], "r2": []}
    scrapes = tries = 0
    t0 = time.monotonic()
    end = t0 + MINUTES * 60
    next_sample = next_scrape = t0
    while True:
        now = time.monotonic()
        if now >= next_sample:  # first: a sample shows what stays between scrapes
            for name, r in (("r1", r1), ("r2", r2)):
                samples[name].append((now - t0, rss_kib(r.pids())))
            next_sample += SAMPLE_S
        if now >= next_scrape and now < end:
            tries += 1
            try:
                body = call_in_netns(r1.ns, scrape, METRICS_ADDR, tries % 2 == 1)
                scrapes += body.count(b"fastvrrp_instance_state{") == COUNT
            except (OSError, RuntimeError):
                pass
            next_scrape += SCRAPE_S
        if now >= end:
            break
        until = min(next_sample, next_scrape, end)
        wait_for(
            lambda u=until: time.monotonic() >= u, timeout=SCRAPE_S + 10, interval=0.2, what="next sample"
        )
    transitions = {name: w.poll() - base[name] for name, w in watches.items()}
    rows, failures, top = summarise(samples, WARM_S)
    if COUNT in LIMIT_MIB and top["r1"] > LIMIT_MIB[COUNT] * 1024:
        failures.append(f"r1 reached {top['r1'] / 1024:.1f} MiB (limit {LIMIT_MIB[COUNT]:g} MiB)")
    lines = [
        f"RSS over {MINUTES:g} min, {COUNT} x {A_MS} ms, r1 master with --metrics ({scrapes} scrapes), "
        f"transitions {transitions}",
        "  router  samples  first MiB  last MiB  largest MiB  KiB/hour (fit)",
        *("  " + "  ".join(f"{c:>9}" for c in row) for row in rows),
    ]
    print_table(request, lines)
    assert not failures, failures
    assert scrapes == tries, f"{tries - scrapes} of {tries} scrapes failed"
    assert all(v == 0 for v in transitions.values()), f"transitions during the run: {transitions}"
