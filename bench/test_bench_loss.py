"""Takeovers under random loss, fastvrrp with 1 and 2 advert copies beside keepalived, in one run.

Three pairs run side by side, each on a segment of its own (fastvrrp.lab.loss.isolated_lans): fastvrrp
with single adverts, fastvrrp with `advert_copies 2` (5 ms apart), and keepalived 2.2.7 on both ends. Each
pair runs COUNT VRRPv3 IPv4 instances at A = 100 ms, the master at priority 200, the backup at 100. Once
every instance is settled, nftables in each backup's namespace drops P % of the VRRP packets it receives
(`meta l4proto 112 numgen random mod 100 < P drop`, before any socket), and for WINDOW seconds we count
the backup's takeovers (`Entering MASTER STATE`).

The RFC's rate (fastvrrp.lab.loss.takeover_rate). Master_Down_Interval = 3 A + Skew_Time, and
Skew_Time = (256 - 100) A / 256 = 0.61 A < A (RFC 5798 6.1): a backup takes over when the 3 adverts after
one it received are all lost. Losses being independent with probability p, per advert the master sends

    rate(p, 1) = (1 - p) p^3              10 %: 9.0 per 10,000     30 %: 189 per 10,000

With N copies an advert is lost only when all N are (q = p^N; the copies of the third advert, a few ms
after it, still fall inside Master_Down_Interval):

    rate(p, N) = (1 - q) q^3              10 %, 2 copies: 0.0099 per 10,000 (0.03 in 30,000 adverts)
                                          30 %, 2 copies: 6.6 per 10,000 (1/28.6 of the single rate)

Verdicts (each side measured in the same run): fastvrrp with single adverts takes over at the RFC rate
(within a factor of 2) and not significantly more often than keepalived (at most keepalived's count plus
3 standard deviations of the difference: the two expect the same count, so "never more" is the statistical
statement); at 10 % with 2 copies at most 1 takeover (the goal is none in 30,000 adverts: 0.03 expected); at
30 % with 2 copies at most a twentieth of the single-copy count. Run on a quiet machine:
`.venv/bin/python -m pytest -q bench/test_bench_loss.py --benchmark-only`;
FASTVRRP_BENCH_LOSS_SECONDS (default 30) and FASTVRRP_BENCH_LOSS_COUNT (default 150) change the window.
"""

# ruff: noqa: F811
from __future__ import annotations

import math
import os
import time
from typing import Any

import pytest

from bench.conftest import print_table
from fastvrrp.lab.loss import RandomLoss, isolated_lans, takeover_rate, takeovers
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, many_instances

pytestmark = [pytest.mark.interop, pytest.mark.netns]

A = 100  # ms
WINDOW_S = int(os.environ.get("FASTVRRP_BENCH_LOSS_SECONDS", "30"))
COUNT = int(os.environ.get("FASTVRRP_BENCH_LOSS_COUNT", "150"))
SIDES = (("fastvrrp", 1), ("fastvrrp", 2), ("keepalived", 1))
RESULTS: dict[int, dict[str, dict[str, Any]]] = {}


def side_name(kind: str, copies: int) -> str:
    return kind if kind == "keepalived" else f"fastvrrp x{copies}"


def run_loss(lab, keepalived_bin: str, percent: int) -> dict[str, dict[str, Any]]:
    specs = many_instances(COUNT, 100, A)
    with isolated_lans(lab, len(SIDES)) as lans:
        pairs = []
        for lan, (kind, copies) in zip(lans, SIDES, strict=True):
            extra = (f"advert_copies {copies}",) if copies > 1 else ()
            mspecs = [InstanceSpec(**{**s.__dict__, "priority": 200, "extra": extra}) for s in specs]
            m = lan.router(1, kind, mspecs, keepalived_bin=keepalived_bin)
            b = lan.router(2, kind, specs, keepalived_bin=keepalived_bin)
            pairs.append((m, b, lan))
        for m, _b, _lan in pairs:
            m.start()
        for m, b, _lan in pairs:
            m.wait_all("MASTER", timeout=60)
            b.start()
        for _m, b, _lan in pairs:
            b.wait_all("BACKUP", timeout=60)
        losses = [RandomLoss(lan.lab, lan.router_ns[1], percent) for _m, _b, lan in pairs]
        marks = [(len(m.log()), len(b.log())) for m, b, _lan in pairs]
        t0 = time.monotonic()
        wait_for(
            lambda: time.monotonic() - t0 > WINDOW_S, timeout=WINDOW_S + 30, interval=1, what="the window"
        )
        elapsed = time.monotonic() - t0
        out = {}
        for (kind, copies), (m, b, _lan), (mm, bm), loss in zip(SIDES, pairs, marks, losses, strict=True):
            dropped, passed = loss.counters()
            adverts = COUNT * elapsed * 1000 / A
            out[side_name(kind, copies)] = {
                "adverts": round(adverts),
                "takeovers": takeovers(b, bm),
                "master_left": takeovers(m, mm) != 0 or "BACKUP STATE" in m.log()[mm:],
                "loss_measured": dropped / max(1, dropped + passed),
                "rfc": adverts * takeover_rate(percent / 100, copies),
            }
        for m, b, _lan in pairs:  # stop now: each isolated LAN goes with its namespaces
            b.stop()
            m.stop()
    return out


@pytest.fixture(scope="module", autouse=True)
def report(request):
    yield
    if not RESULTS:
        return
    lines = [
        "",
        f"Takeovers under random loss at the backup, {COUNT} instances per pair, A = {A} ms, {WINDOW_S} s",
        f"{'loss':<6}{'impl':<14}{'adverts':>9}{'measured':>10}{'takeovers':>10}{'per 10k':>9}"
        f"{'RFC /10k':>10}{'vs RFC':>8}{'vs keepalived':>15}",
    ]
    for percent, sides in sorted(RESULTS.items()):
        ka = sides["keepalived"]["takeovers"]
        for name, r in sides.items():
            per = r["takeovers"] * 10_000 / r["adverts"]
            rfc = r["rfc"] * 10_000 / r["adverts"]
            vs_rfc = f"{per / rfc:8.2f}" if rfc else f"{'-':>8}"
            vs_ka = f"{r['takeovers'] / ka:15.3f}" if ka else f"{'-':>15}"
            lines.append(
                f"{percent:>3} % {name:<14}{r['adverts']:>9}{r['loss_measured'] * 100:>9.1f}%"
                f"{r['takeovers']:>10}{per:>9.2f}{rfc:>10.3f}{vs_rfc}{vs_ka}"
            )
        one, two = sides["fastvrrp x1"]["takeovers"], sides["fastvrrp x2"]["takeovers"]
        lines.append(f"{'':<6}{'x2 / x1':<14}{'':>9}{'':>10}{(two / one if one else 0):>10.4f}")
    print_table(request, lines)


@pytest.mark.parametrize("percent", [10, 30])
def test_loss(benchmark, lab, keepalived_bin, percent):
    sides = benchmark.pedantic(run_loss, args=(lab, keepalived_bin, percent), rounds=1, iterations=1)
    RESULTS[percent] = sides
    benchmark.extra_info.update({name: r for name, r in sides.items()})
    for name, r in sides.items():
        assert not r["master_left"], name  # loss only at the backups: the masters stay MASTER
        assert abs(r["loss_measured"] - percent / 100) < 0.02, (name, r)
    one, two, ka = (sides[n]["takeovers"] for n in ("fastvrrp x1", "fastvrrp x2", "keepalived"))
    rfc = sides["fastvrrp x1"]["rfc"]
    assert rfc / 2 <= one <= 2 * rfc, sides  # the RFC's rate
    assert one <= ka + 3 * math.sqrt(one + ka), sides  # not more than keepalived beyond chance
    if percent == 10:
        assert two <= 1, sides  # goal: none in 30,000 adverts (see the docstring)
    else:
        assert two * 20 <= one, sides  # goal: at most a twentieth of the single-copy rate
