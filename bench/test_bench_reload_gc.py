"""How long a reload holds the adverts back at density (issue 11; docs/costs.md#collection-after-a-reload).

A pair on the density lab (fastvrrp/lab/density.py): router 1 master of COUNT VRRPv3 instances at 10 ms,
router 2 backup. After convergence (and the 5 s second burst of gratuitous ARPs), a quiet window of WINDOW_S
seconds, then RELOADS SIGHUPs to router 1 with its configuration unchanged, then RELOADS that toggle the
priority of CHANGED instances (rebuilt at each reload), each SIGHUP once the previous reload is logged and
RELOAD_EVERY_S apart. Reported, for the VRIDs every reload keeps (none of
them may miss an advert): the largest advert gap of one VRID in the quiet window and from each SIGHUP to 1 s
after; the collection after each reload, the configuration's read and apply times (the daemon's log); the
backup's adverts for kept VRIDs (each one a false takeover). It reports; it fails only if a run breaks.

Run on an otherwise quiet machine:
    .venv/bin/python -m pytest -q bench/test_bench_reload_gc.py --benchmark-only
"""

# ruff: noqa: F811
from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import replace

import pytest

from bench.conftest import print_table
from fastvrrp.lab.density import DensityLan, largest_gaps, start_pair
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import master_down_ms

pytestmark = [pytest.mark.netns]

COUNT = int(os.environ.get("FASTVRRP_RELOAD_COUNT", "1000"))
ADVER_INT_MS = 10
WINDOW_S = float(os.environ.get("FASTVRRP_RELOAD_WINDOW", "5"))
RELOADS = int(os.environ.get("FASTVRRP_RELOADS", "3"))  # per phase
RELOAD_EVERY_S = 1.5
CHANGED = 2  # instances of segment 0 whose priority the second phase toggles (rebuilt at each reload)
_GC = re.compile(r"reload: (full|no) collection in ([0-9.]+) ms")
_READ = re.compile(r"reload: configuration read in ([0-9.]+) ms")
_APPLY = re.compile(r"reload: applied in ([0-9.]+) ms")


def _sighups(r1, configs, done: int) -> list[float]:
    """One SIGHUP per configuration in `configs`, each once the previous reload is logged."""
    out = []
    for specs in configs:
        r1.instances = list(specs)
        r1.write_config()
        out.append(time.time())
        os.kill(r1.proc.pid, signal.SIGHUP)
        done += 1
        wait_for(lambda d=done: r1.log().count(" reloaded ") >= d, timeout=60, interval=0.02, what="reload")
        due = out[-1] + RELOAD_EVERY_S
        wait_for(lambda d=due: time.time() >= d, timeout=RELOAD_EVERY_S + 5, interval=0.02, what="tick")
    return out


def _reloads(lab) -> dict[str, object]:
    net = DensityLan(lab, instances=COUNT, routers=2)
    mdi = master_down_ms(100, ADVER_INT_MS)
    base = net.instances(200, ADVER_INT_MS, owner_host=1)
    other = list(base)
    for k in range(1, 1 + CHANGED):  # not VRID 1 of segment 0 (the owner)
        other[k] = replace(base[k], priority=190)
    r1 = net.router(1, "fastvrrp", base)
    r2 = net.router(2, "fastvrrp", net.instances(100, ADVER_INT_MS))
    with net.observer() as obs:
        up1, up2 = start_pair(r1, r2, COUNT, settle_s=6.0)
        q0 = time.time()
        wait_for(lambda: time.time() - q0 >= WINDOW_S, timeout=WINDOW_S + 5, interval=0.05, what="quiet")
        q1 = time.time()
        wait_for(lambda: time.time() - q1 >= 0.5, timeout=5, interval=0.05, what="a margin")
        same = _sighups(r1, [base] * RELOADS, 0)
        u1 = time.time()
        changed = _sighups(r1, [other if k % 2 == 0 else base for k in range(RELOADS)], RELOADS)
        c1 = time.time()
        w = up1.watch
        wait_for(lambda: w.poll() >= 0 and w.all_in("MASTER"), timeout=30, interval=0.1, what="r1 all back")
        obs.stop(covered=time.time())
    assert all(v == 0 for v in obs.dropped.values()), f"the capture lost frames: {obs.dropped}"
    keep = {(int(s.iname.split("_")[1]), s.vrid) for s in base[1 + CHANGED :]} | {(0, 1)}
    times: dict[tuple[int, int], list[int]] = {k: [] for k in keep}
    backup = {"same": 0, "changed": 0}
    for a in obs.adverts():
        key = (a.segment, a.vrid)
        if a.priority and a.src_host % 8 == 1 and key in times:
            times[key].append(a.t_ns)
        elif a.priority and a.src_host % 8 == 2 and key in keep:
            if q1 * 1e9 <= a.t_ns <= u1 * 1e9:
                backup["same"] += 1
            elif u1 * 1e9 < a.t_ns <= c1 * 1e9:
                backup["changed"] += 1
    for ts in times.values():
        ts.sort()

    def worst(t0: float, t1: float) -> float:
        return max(largest_gaps(times, int(t0 * 1e9), int(t1 * 1e9)).values()) / 1e6

    log = r1.log()
    gcs = [(kind, float(ms)) for kind, ms in _GC.findall(log)]
    assert len(gcs) == 2 * RELOADS
    return {
        "mdi_ms": mdi,
        "quiet_gap_ms": worst(q0, q1),
        "same_gap_ms": [worst(t - 0.05, t + 1.0) for t in same],
        "changed_gap_ms": [worst(t - 0.05, t + 1.0) for t in changed],
        "same_gc": [f"{kind} {ms:.1f}" for kind, ms in gcs[:RELOADS]],
        "changed_gc": [f"{kind} {ms:.1f}" for kind, ms in gcs[RELOADS:]],
        "read_ms": [float(x) for x in _READ.findall(log)],
        "apply_ms": [float(x) for x in _APPLY.findall(log)],
        "backup_adverts": backup,
    }


def _ms(xs: object) -> str:
    return ", ".join(f"{x:.1f}" for x in xs)  # type: ignore[attr-defined]


def test_reload_gap_at_density(benchmark, lab, request):
    r = benchmark.pedantic(_reloads, args=(lab,), rounds=1, iterations=1)
    benchmark.extra_info.update(r)
    print_table(
        request,
        [
            "",
            f"reload at {COUNT} x {ADVER_INT_MS} ms, MDI {r['mdi_ms']:.1f} ms; largest advert gap of one "
            f"VRID kept by every reload ({COUNT - CHANGED} of them):",
            f"  quiet window ({WINDOW_S:.0f} s): {r['quiet_gap_ms']:.1f} ms",
            f"  from each SIGHUP to 1 s after, configuration unchanged: {_ms(r['same_gap_ms'])} ms; "
            f"collection {', '.join(r['same_gc'])} ms",  # type: ignore[arg-type]
            f"  the same, {CHANGED} instances rebuilt: {_ms(r['changed_gap_ms'])} ms; "
            f"collection {', '.join(r['changed_gc'])} ms",  # type: ignore[arg-type]
            f"  configuration read / applied: {_ms(r['read_ms'])} / {_ms(r['apply_ms'])} ms",
            f"  adverts of the backup for kept VRIDs: {r['backup_adverts']}",
        ],
    )
