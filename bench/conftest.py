"""Benchmark helpers shared by every suite in bench/.

Ratio table: a benchmark that sets `benchmark.group = "<what>"` and `benchmark.extra_info["impl"]` to
"compiled" or "reference" is paired with its partner of the same group, and the end of the session prints
    <group>: compiled X ns, reference Y ns, ratio Zx
from the best (min) round of each, the noise-robust statistic on a small shared machine. Benchmarks that also
set extra_info["ns_per_item_min"] get that figure beside it. With --benchmark-disable the stats are None and
the table is skipped.

The regression gate (bench/gate.py, `make bench-gate`): FASTVRRP_BENCH_GATE=1 turns every benchmark's rounds
into same-run ratios before pytest-benchmark compares them with the stored baseline. FASTVRRP_BENCH_SLOW=TEXT
makes every benchmark whose node id contains TEXT do its measured work twice: a real 2x regression of that
path, to see the gate catch one.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from bench import gate

# bench/ sits outside tests/: the namespace and keepalived fixtures (and their CI=true rules) come from there.
from tests.conftest import keepalived_bin, lab, netns_ok, own_loopback  # noqa: F401


def print_table(request, lines: Sequence[str]) -> None:
    """Print a result table at the end of a bench module, past pytest's output capture."""
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if tr is not None and capman is not None:
        with capman.global_and_fixture_disabled():  # fd capture would swallow the table otherwise
            for line in lines:
                tr.write_line(line)
    else:
        print("\n".join(lines))


def _min_ns(bench) -> float | None:
    raw = (bench.extra_info or {}).get("raw_min_s")  # normalised by the gate: the measured best round
    if raw is not None:
        return float(raw) * 1e9
    stats = getattr(bench, "stats", None)
    if stats is None:
        return None
    return float(stats.min) * 1e9


GATE = os.environ.get("FASTVRRP_BENCH_GATE", "") == "1"
SLOW = os.environ.get("FASTVRRP_BENCH_SLOW", "")


def _twice(fn: Callable[..., Any]) -> Callable[..., Any]:
    def both(*a: Any, **kw: Any) -> Any:
        fn(*a, **kw)
        return fn(*a, **kw)

    return both


def _double(bench: Any) -> None:
    """Make pytest-benchmark's fixture `bench` measure its target run twice per call (FASTVRRP_BENCH_SLOW).
    The fixture must stay a BenchmarkFixture (the plugin checks), so its two entry points are wrapped."""
    raw, raw_pedantic = bench._raw, bench._raw_pedantic
    bench._raw = lambda fn, *a, **kw: raw(_twice(fn), *a, **kw)
    bench._raw_pedantic = lambda target, *a, **kw: raw_pedantic(_twice(target), *a, **kw)


# Under the gate these are timed in CPU seconds of this process (time.process_time), not wall time: rounds of
# milliseconds to seconds on a shared machine lose the CPU to other processes, which the wall clock counts.
# The micro-benchmarks keep perf_counter (each round far shorter than a time slice; the CPU clock's ~400 ns
# per read would blur them). The calibration they are divided by is timed the same way.
CPU_TIMED = (
    "test_bench_calibration.py::",
    "test_bench_config.py::",
    "test_bench_metrics.py::test_render_",
)


@pytest.fixture
def benchmark(benchmark, request):
    """pytest-benchmark's fixture; CPU-timed under the gate for CPU_TIMED; doubled for FASTVRRP_BENCH_SLOW."""
    if GATE and any(c in request.node.nodeid for c in CPU_TIMED):
        benchmark._timer = time.process_time
    if SLOW and SLOW in request.node.nodeid:
        _double(benchmark)
    return benchmark


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """Under the gate, normalise before pytest-benchmark's own sessionfinish saves and compares."""
    bs = getattr(session.config, "_benchmarksession", None)
    if GATE and bs is not None and not getattr(bs, "disabled", False):
        raw = gate.normalise(bs.benchmarks)
        if raw:
            print(f"\nbench gate: no same-run divisor for {raw}; their absolute times are compared")
    yield


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """The gate's baseline keeps statistics, not every round (a micro-benchmark has 100,000s)."""
    if GATE:
        for b in output_json.get("benchmarks", []):
            b.get("stats", {}).pop("data", None)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or getattr(session, "disabled", False):
        return
    groups: dict[str, dict[str, object]] = defaultdict(dict)
    for bench in session.benchmarks:
        impl = (bench.extra_info or {}).get("impl")
        if impl in ("compiled", "reference") and bench.group:
            groups[bench.group][impl] = bench
    lines = []
    for group in sorted(groups):
        pair = groups[group]
        if "compiled" not in pair or "reference" not in pair:
            continue
        fast, slow = _min_ns(pair["compiled"]), _min_ns(pair["reference"])
        if fast is None or slow is None or fast <= 0:
            continue
        line = f"{group}: compiled {fast:,.0f} ns, reference {slow:,.0f} ns, ratio {slow / fast:.1f}x"
        per_fast = pair["compiled"].extra_info.get("ns_per_item_min")  # type: ignore[attr-defined]
        per_slow = pair["reference"].extra_info.get("ns_per_item_min")  # type: ignore[attr-defined]
        if per_fast is not None and per_slow is not None:
            line += f" (per item {per_fast} / {per_slow} ns)"
        lines.append(line)
    if lines:
        terminalreporter.write_sep("-", "compiled vs reference (min of rounds)")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_benchmark_scale_unit(config, unit, benchmarks, best, worst, sort):
    """Under the gate the figures are ratios: print them as they are, not scaled to ms or us."""
    if GATE and unit == "seconds":
        return "", 1.0
    return None
