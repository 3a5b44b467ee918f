"""Benchmark helpers shared by every suite in bench/.

Ratio table: a benchmark that sets `benchmark.group = "<what>"` and `benchmark.extra_info["impl"]` to
"compiled" or "reference" is paired with its partner of the same group, and the end of the session prints
    <group>: compiled X ns, reference Y ns, ratio Zx
from the best (min) round of each, the noise-robust statistic on a small shared machine. Benchmarks that also
set extra_info["ns_per_item_min"] get that figure beside it. With --benchmark-disable the stats are None and
the table is skipped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import pytest

# bench/ sits outside tests/: the namespace and keepalived fixtures (and their CI=true rules) come from there.
from tests.conftest import keepalived_bin, lab, netns_ok  # noqa: F401


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
    stats = getattr(bench, "stats", None)
    if stats is None:
        return None
    return float(stats.min) * 1e9


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
