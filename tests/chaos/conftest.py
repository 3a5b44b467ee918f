"""The chaos suite: every test in make test; the full-size runs (marked chaos_heavy) only under `make chaos`,
which sets FASTVRRP_CHAOS_HEAVY=1 (they take minutes; run them on an otherwise quiet
machine). Each heavy test has a light twin in make test that checks the same property at a smaller size."""

from __future__ import annotations

import os

HEAVY = os.environ.get("FASTVRRP_CHAOS_HEAVY", "") == "1"


def pytest_collection_modifyitems(config, items):
    if HEAVY:
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("chaos_heavy") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
