"""What a daemon run imports and which instances start first (issue 11 items 4 and 5). Structural checks:
the memory and the time they save are measured in bench/test_bench_density.py and
bench/test_bench_density_cost.py, not here."""

from __future__ import annotations

import json
import subprocess
import sys

from fastvrrp.config import load
from fastvrrp.daemon.service import early_owners

# Imported only by the runs that use them (docs/costs.md#imports): the metrics endpoint, keepalived's dump
# files and the vrrp_check health checks.
NOT_AT_START = (
    "prometheus_client",
    "wsgiref",
    "http.server",
    "fastvrrp.daemon.metrics",
    "fastvrrp.daemon.dumps",
    "fastvrrp.health.checks",
)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_daemon_imports_neither_metrics_nor_dumps_nor_checks_until_a_run_uses_them():
    loaded = _modules_after("import fastvrrp.cli, fastvrrp.daemon.process")
    assert "fastvrrp.daemon.service" in loaded  # the check looks at a real daemon import
    assert sorted(m for m in NOT_AT_START if m in loaded) == []


def test_the_lazy_parts_still_import_where_they_are_used():
    loaded = _modules_after(
        "import fastvrrp.daemon.process\n"
        "from fastvrrp.daemon import snapshots\n"
        "snapshots.tracker_rows(None)\n"  # no Tracking: nothing to import yet
        "w = snapshots.DumpWriter(None)\n"
        "assert w.directory == '/tmp' and w.baseline is not None\n"
        "snapshots._import_metrics()"
    )
    assert {"fastvrrp.daemon.dumps", "fastvrrp.daemon.metrics"} <= loaded


CONF = """
vrrp_instance OWNER {
    interface eth0
    virtual_router_id 1
    priority 255
    virtual_ipaddress { 192.0.2.1/32 }
}
vrrp_instance PLAIN {
    interface eth0
    virtual_router_id 2
    priority 100
    virtual_ipaddress { 192.0.2.2/32 }
}
vrrp_instance GROUPED_OWNER {
    interface eth0
    virtual_router_id 3
    priority 255
    virtual_ipaddress { 192.0.2.3/32 }
}
vrrp_instance GROUPED {
    interface eth0
    virtual_router_id 4
    priority 100
    virtual_ipaddress { 192.0.2.4/32 }
}
vrrp_sync_group G {
    group {
        GROUPED_OWNER
        GROUPED
    }
}
"""


def test_only_address_owners_outside_sync_groups_start_before_the_rest_is_built(tmp_path):
    path = tmp_path / "k.conf"
    path.write_text(CONF)
    cfg = load(str(path))
    assert [i.name for i in early_owners(cfg)] == ["OWNER"]


def test_no_owner_no_early_start(tmp_path):
    path = tmp_path / "k.conf"
    path.write_text(CONF.replace("priority 255", "priority 200"))
    assert early_owners(load(str(path))) == []
