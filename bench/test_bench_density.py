"""Density side by side with keepalived (issue 11 item 6): 255, 500 and 1,000 VRRPv3 instances at 10 ms and
4,000 at 100 ms, on the multi-segment lab of fastvrrp/lab/density.py (250 VRIDs per bridge).

Each scenario runs keepalived and then fastvrrp in the same session on the same machine: a master of every
instance (priority 200; VRID 1 of segment 0 is an address owner at 255) and a backup (100), a tcpdump per
bridge as the observer. After both converged and a settling time, a window of WINDOW_S seconds measures:
the master's adverts as a share of N / A, the largest gap of one VRID against the backup's
Master_Down_Interval, state transitions (logs), adverts from the backup (two masters), CPU per advert on
master and backup, RSS, start-up (exec -> every instance in its initial state; the owner's first advert).
At 1,000 x 10 ms fastvrrp runs a second window in which a client in the master's namespace scrapes
--metrics back to back (issue 13: at most +1 ms on the largest gap).

The table at the end prints each target of the issue beside the measurement with PASS / FAIL. The bench
reports; it fails only when a run breaks (no adverts, a daemon exits). Run on a quiet machine:
    .venv/bin/python -m pytest -q bench/test_bench_density.py --benchmark-only
FASTVRRP_DENSITY_WINDOW (seconds, default 15) and FASTVRRP_DENSITY_SCENARIOS (e.g. "1000x10,4000x100")
narrow a run; FASTVRRP_DENSITY_SCRAPE_AT (default 1000x10) chooses the size of the scrape window.
The share of the rate counts every advert of the master in the window: it can pass 100 % while the pair
flaps, because a master that takes an instance back advertises at once. fastvrrp runs from bytecode written
before the first scenario, as an installed package does (start-up and the owner's first advert would
otherwise include compiling its modules at each exec: docs/costs.md#start-up). With several scenarios the
table ends with the RSS per instance between the smallest and each larger one.
"""

# ruff: noqa: F811
from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from bench.conftest import print_table
from fastvrrp.lab.density import PairResult, Window, byte_compile, run_pair
from fastvrrp.lab.testbed import KINDS, master_down_ms

pytestmark = [pytest.mark.interop, pytest.mark.netns]

WINDOW_S = float(os.environ.get("FASTVRRP_DENSITY_WINDOW", "15"))
# issue 13 asks at 1,000 x 10 ms; FASTVRRP_DENSITY_SCRAPE_AT=500x10 moves the scrape window to another size
SCRAPE_AT = tuple(int(x) for x in os.environ.get("FASTVRRP_DENSITY_SCRAPE_AT", "1000x10").split("x"))
ALL = [(255, 10), (500, 10), (1000, 10), (4000, 100)]
_SEL = os.environ.get("FASTVRRP_DENSITY_SCENARIOS", "")
SCENARIOS = [tuple(int(x) for x in s.split("x")) for s in _SEL.split(",") if s] or ALL
RESULTS: dict[tuple[int, int], dict[str, PairResult]] = {}
MIB = 1024


def _fmt_pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _rows(r: PairResult) -> dict[str, str]:
    w = r.steady
    rep = w.report
    worst = rep.worst_vrid
    return {
        "adverts sent, share of N/A": _fmt_pct(rep.rate_share),
        f"largest gap (MDI {rep.mdi_ms:.1f} ms)": (
            f"{rep.largest_gap_ms:.1f} ms (seg {worst[0]} vrid {worst[1]})" if worst else "-"
        ),
        "VRIDs with a gap >= MDI": str(rep.late_vrids),
        "transitions in the window": str(w.transitions),
        "adverts from the backup": str(rep.backup_adverts),
        "CPU master / backup (cores)": f"{w.master.cores:.3f} / {w.backup.cores:.3f}",
        "CPU per advert master / backup": f"{w.us_per_advert(w.master):.2f} / "
        f"{w.us_per_advert(w.backup):.2f} us",
        "RSS master / backup": f"{w.master.rss_kib / MIB:.1f} / {w.backup.rss_kib / MIB:.1f} MiB",
        "start-up master / backup": f"{r.startup_master_s:.2f} / {r.startup_backup_s:.2f} s",
        "owner's first advert after exec": "-"
        if r.owner_first_advert_s is None
        else f"{1000 * r.owner_first_advert_s:.0f} ms",
        "observer CPU (cores), kernel drops": f"{r.observer_cpu_s / max(r.captured_s, 1e-9):.3f}, "
        f"{sum(max(d, 0) for d in r.dropped.values())}",
    }


Target = tuple[str, Callable[[dict[str, PairResult]], tuple[str, bool]]]


def _targets(count: int, a_ms: int) -> list[Target]:
    """The issue's targets for a scenario: (text, check(results by kind) -> (measured, passed))."""
    out: list[Target] = []

    def fv(res: dict[str, PairResult]) -> Window:
        return res["fastvrrp"].steady

    if (count, a_ms) == (1000, 10):
        out += [
            (
                ">= 97 % of the rate",
                lambda r: (_fmt_pct(fv(r).report.rate_share), fv(r).report.rate_share >= 0.97),
            ),
            ("no transition", lambda r: (str(fv(r).transitions), fv(r).transitions == 0)),
            (
                "no backup advert",
                lambda r: (str(fv(r).report.backup_adverts), fv(r).report.backup_adverts == 0),
            ),
            (
                "largest gap < Master_Down_Interval",
                lambda r: (f"{fv(r).report.largest_gap_ms:.1f} ms", fv(r).report.late_vrids == 0),
            ),
            (
                "backup CPU <= keepalived's",
                lambda r: (
                    f"{fv(r).backup.cores:.3f} vs {r['keepalived'].steady.backup.cores:.3f}",
                    fv(r).backup.cores <= r["keepalived"].steady.backup.cores,
                ),
            ),
            ("RSS <= 40 MiB (item 4)", lambda r: _rss(fv(r), 40)),
            (
                "start-up <= 1 s (item 5)",
                lambda r: (
                    f"{r['fastvrrp'].startup_master_s:.2f} s",
                    r["fastvrrp"].startup_master_s <= 1.0,
                ),
            ),
            ("owner advertises <= 250 ms after exec (item 5)", lambda r: _owner(r["fastvrrp"])),
        ]
    if (count, a_ms) == (4000, 100):
        # 100 %: every instance sent every advert; the window's edges allow one advert per instance either way
        out += [
            (
                "100 % of the rate (>= 99.5 %)",
                lambda r: (_fmt_pct(fv(r).report.rate_share), fv(r).report.rate_share >= 0.995),
            ),
            ("no transition", lambda r: (str(fv(r).transitions), fv(r).transitions == 0)),
            ("RSS <= 64 MiB (item 4)", lambda r: _rss(fv(r), 64)),
        ]
    if (count, a_ms) == (255, 10):
        out += [
            ("CPU/advert master <= 0.30x keepalived", lambda r: _ratio(r, "master", 0.30)),
            ("CPU/advert backup <= 0.15x keepalived", lambda r: _ratio(r, "backup", 0.15)),
        ]
    return out


def _rss(w: Window, mib: float) -> tuple[str, bool]:
    worst = max(w.master.rss_kib, w.backup.rss_kib) / MIB
    return f"{worst:.1f} MiB", worst <= mib


def _owner(r: PairResult) -> tuple[str, bool]:
    if r.owner_first_advert_s is None:
        return "none seen", False
    return f"{1000 * r.owner_first_advert_s:.0f} ms", r.owner_first_advert_s <= 0.25


def _ratio(res: dict[str, PairResult], side: str, limit: float) -> tuple[str, bool]:
    f, k = res["fastvrrp"].steady, res["keepalived"].steady
    uf = f.us_per_advert(getattr(f, side))
    uk = k.us_per_advert(getattr(k, side))
    ratio = uf / uk if uk else float("inf")
    return f"{ratio:.2f}x", ratio <= limit


def _table() -> list[str]:
    lines = ["", f"Density, VRRPv3, master (200) + backup (100), window {WINDOW_S:.0f} s after settling"]
    for (count, a_ms), by_kind in RESULTS.items():
        lines.append("")
        lines.append(f"== {count} instances x {a_ms} ms (MDI {master_down_ms(100, a_ms):.1f} ms)")
        rows = {k: _rows(v) for k, v in by_kind.items()}
        names = list(next(iter(rows.values())))
        lines.append(f"{'':<38}" + "".join(f"{k:>30}" for k in KINDS if k in rows))
        for n in names:
            lines.append(f"{n:<38}" + "".join(f"{rows[k][n]:>30}" for k in KINDS if k in rows))
        if len(by_kind) == 2:
            f, k = by_kind["fastvrrp"].steady, by_kind["keepalived"].steady
            up_f, up_k = by_kind["fastvrrp"].startup_master_s, by_kind["keepalived"].startup_master_s
            ratio = [
                f"CPU/advert master {f.us_per_advert(f.master) / max(k.us_per_advert(k.master), 1e-9):.2f}x",
                f"backup {f.us_per_advert(f.backup) / max(k.us_per_advert(k.backup), 1e-9):.2f}x",
                f"RSS master {f.master.rss_kib / max(k.master.rss_kib, 1):.1f}x",
                f"start-up {up_f / max(up_k, 1e-9):.2f}x",
            ]
            lines.append(f"{'ratio fastvrrp / keepalived':<38}" + ", ".join(ratio))
            for text, check in _targets(count, a_ms):
                measured, ok = check(by_kind)
                lines.append(f"  target: {text:<48} {measured:>22}  {'PASS' if ok else 'FAIL'}")
        scraped = by_kind.get("fastvrrp")
        if scraped is not None and scraped.scraped is not None:
            s, base = scraped.scraped, scraped.steady
            extra = s.report.largest_gap_ms - base.report.largest_gap_ms
            lines.append(
                f"  /metrics scraped back to back: {s.scrapes} scrapes in {s.report.window_s:.0f} s "
                f"({1000 * s.report.window_s / max(s.scrapes, 1):.1f} ms each); with / without scraping: "
                f"largest gap {s.report.largest_gap_ms:.1f} / {base.report.largest_gap_ms:.1f} ms, share "
                f"{_fmt_pct(s.report.rate_share)} / {_fmt_pct(base.report.rate_share)}, transitions "
                f"{s.transitions} / {base.transitions}, backup adverts {s.report.backup_adverts} / "
                f"{base.report.backup_adverts}"
            )
            # Against a window that already lets VRIDs pass Master_Down_Interval, the largest gap measures
            # the flapping, not the scrapes: no verdict then.
            stable = base.report.late_vrids == 0 and base.transitions == 0
            verdict = (
                ("PASS" if extra <= 1.0 else "FAIL") if stable else "NO VERDICT (unstable without scraping)"
            )
            lines.append(
                f"  target: {'scraping adds <= 1 ms to the largest gap (issue 13)':<48} {extra:>+19.1f} ms  "
                + verdict
            )
    lines += _per_instance()
    return lines


def _per_instance() -> list[str]:
    """RSS per instance (issue 11 item 4): the growth from the smallest to each larger scenario of the run,
    for each router, so the interpreter and its imports are left out."""
    sizes = sorted(RESULTS)
    if len(sizes) < 2:
        return []
    lines = ["", "RSS per instance (KiB, master / backup), above the smallest scenario of this run"]
    base = RESULTS[sizes[0]]
    for size in sizes[1:]:
        row = []
        for kind in KINDS:
            if kind not in RESULTS[size] or kind not in base:
                continue
            a, b = base[kind].steady, RESULTS[size][kind].steady
            n = size[0] - sizes[0][0]
            if n <= 0:
                continue
            m = (b.master.rss_kib - a.master.rss_kib) / n
            k = (b.backup.rss_kib - a.backup.rss_kib) / n
            row.append(f"{kind} {m:.2f} / {k:.2f}")
        if row:
            lines.append(f"  {sizes[0][0]} -> {size[0]} instances: " + ", ".join(row))
    return lines


@pytest.fixture(scope="module", autouse=True)
def installed_bytecode():
    """fastvrrp starts from bytecode, as an installed package does (fastvrrp.lab.density.byte_compile)."""
    byte_compile()


@pytest.fixture(scope="module", autouse=True)
def report(request):
    yield
    if RESULTS:
        print_table(request, _table())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s[0]}x{s[1]}ms")
def test_density(benchmark, lab, keepalived_bin, scenario, kind):
    count, a_ms = scenario
    scrape = WINDOW_S if scenario == SCRAPE_AT and kind == "fastvrrp" else 0.0
    result = benchmark.pedantic(
        run_pair,
        args=(lab, kind, count, a_ms, WINDOW_S),
        kwargs={"keepalived_bin": keepalived_bin, "scrape_window_s": scrape},
        rounds=1,
        iterations=1,
    )
    RESULTS.setdefault(scenario, {})[kind] = result
    w = result.steady
    benchmark.extra_info.update(
        {
            "rate_share": w.report.rate_share,
            "largest_gap_ms": w.report.largest_gap_ms,
            "late_vrids": w.report.late_vrids,
            "transitions": w.transitions,
            "backup_adverts": w.report.backup_adverts,
            "master_us_per_advert": w.us_per_advert(w.master),
            "backup_us_per_advert": w.us_per_advert(w.backup),
            "master_rss_kib": w.master.rss_kib,
            "backup_rss_kib": w.backup.rss_kib,
            "startup_master_s": result.startup_master_s,
            "owner_first_advert_s": result.owner_first_advert_s,
        }
    )
    # The run itself worked: the master advertised and the capture saw it (the targets are in the table).
    assert w.report.master_adverts > 0 and w.report.silent < count, w.report.silent
