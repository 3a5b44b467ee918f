"""The benchmark regression gate (`make bench-gate`, issue 11 item 7): same-run ratios for pytest-benchmark.

Absolute times on a shared 2-core machine (or a CI runner) move by tens of percent from run to run; the ratio
of two measurements taken in the same run moves much less. With FASTVRRP_BENCH_GATE=1, bench/conftest.py
calls `normalise` at the end of the session, before pytest-benchmark saves, compares and displays:

- a benchmark with extra_info["impl"] == "compiled" or "reference" (bench/test_bench_wire.py,
  bench/test_bench_engine.py) is divided, round by round, by the best (min) round of the "reference" of its
  group: the compiled code's figure becomes its cost as a fraction of the pure-Python reference's, the
  reference's own figure becomes 1.0 at its best round;
- the same for the two other same-run pairs (bench/test_bench_ratios.py): impl "engine" (the engine's
  batched advert send) is divided by the "kernel" of its group (a plain sendto() of the same datagrams), and
  impl "fastvrrp" (CPU per advert of a daemon in the density lab) by the "keepalived" of its group, measured
  in the same run on the same lab;
- any other benchmark is divided by the best round of the calibration benchmark
  (bench/test_bench_calibration.py, a fixed pure-Python workload), so a config parse or a metrics render is
  measured in "calibration units" that follow the machine's speed.

pytest-benchmark's own --benchmark-compare / --benchmark-compare-fail=min:N% then judge those ratios against
the stored baseline (bench/baseline/gate.json). The raw best round stays in extra_info["raw_min_s"] and the
divisor in extra_info["gate_divisor"].
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CALIBRATION = "calibration"
# impl -> the impl of its same-run divisor in the same group; a divisor is divided by itself (1.0)
PARTNER = {"compiled": "reference", "engine": "kernel", "fastvrrp": "keepalived"}
DIVISORS = frozenset(PARTNER.values())


def _min(bench: Any) -> float | None:
    """The best round of a session benchmark (pytest_benchmark.stats.Metadata: .stats is its Stats)."""
    stats = getattr(bench, "stats", None)
    return float(stats.min) if stats is not None and stats.data else None


def divisors(benchmarks: Iterable[Any]) -> dict[int, tuple[str, float]]:
    """id(benchmark) -> (what it is divided by, the divisor in seconds), for every benchmark that can be
    normalised; a benchmark whose reference (or the calibration) is missing from the run is left out."""
    benches = [b for b in benchmarks if _min(b) is not None]
    refs = {
        (b.group, impl): _min(b)
        for b in benches
        if (impl := (b.extra_info or {}).get("impl")) in DIVISORS and b.group
    }
    cal = next((_min(b) for b in benches if (b.extra_info or {}).get("impl") == CALIBRATION), None)
    out: dict[int, tuple[str, float]] = {}
    for b in benches:
        impl = (b.extra_info or {}).get("impl")
        if impl in PARTNER or impl in DIVISORS:
            partner = PARTNER.get(impl, impl)
            ref = refs.get((b.group, partner))
            if ref:
                out[id(b)] = (f"{partner} of {b.group!r}", ref)
        elif cal:
            out[id(b)] = (CALIBRATION, cal)
    return out


def record(benchmark: Any, values: Iterable[float]) -> None:
    """Make `values` (seconds: CPU times per advert, one per measurement window) the rounds of
    pytest-benchmark's fixture `benchmark`, for figures that cannot be timed as a call (two daemons over
    several seconds)."""
    from pytest_benchmark.stats import Stats

    benchmark.pedantic(lambda: None, rounds=1, iterations=1)  # registers the benchmark with the session
    st = Stats()
    for v in values:
        st.update(v)
    benchmark.stats.stats = st


def normalise(benchmarks: list[Any]) -> list[str]:
    """Divide every normalisable benchmark's rounds by its divisor (in place); return what was left raw."""
    from pytest_benchmark.stats import Stats

    found = divisors(benchmarks)
    raw = []
    for b in benchmarks:
        if _min(b) is None:
            continue
        if id(b) not in found:
            raw.append(b.fullname)
            continue
        what, div = found[id(b)]
        old = b.stats
        new = Stats()
        for d in old.data:
            new.update(d / div)
        b.extra_info["raw_min_s"] = old.min
        b.extra_info["gate_divisor"] = what
        b.extra_info["gate_divisor_s"] = div
        b.stats = new
    return raw
