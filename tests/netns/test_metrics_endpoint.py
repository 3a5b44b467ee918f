"""The /metrics endpoint of real daemons: tracker metrics follow a real vrrp_script, the keepalived-exporter
families count a real handover, `--no-keepalived-metrics` removes them, and promtool finds nothing to
say about a live scrape."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

VIP = "192.0.2.100"
SCRAPE = (
    "import urllib.request;"
    "print(urllib.request.urlopen('http://127.0.0.1:9650/metrics', timeout=5).read().decode())"
)


def _spec(prio: int, *extra: str) -> InstanceSpec:
    return InstanceSpec(vrid=51, priority=prio, advert_int_ms=100, vips=(f"{VIP}/24",), extra=extra)


def _scrape(lab, router) -> dict[str, float]:
    """{series line without the value: value} of one scrape ({} while the endpoint is not up)."""
    text = lab.sh(router.ns, f'{sys.executable} -c "{SCRAPE}"', check=False)
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out


def test_tracker_and_keepalived_families_follow_the_daemon(lab, promtool_bin):
    lan = Lan(lab, routers=2, client=False)
    flag = os.path.join(lab.workdir, "service-ok")
    open(flag, "w").close()
    m = lan.router(1, "fastvrrp", [_spec(200, "track_script {", "    chk", "}")])
    m.blocks = (
        f'vrrp_script chk {{\n    script "/usr/bin/test -f {flag}"\n    interval 1\n    weight -150\n}}\n'
    )
    m.extra_args = ["--metrics", "127.0.0.1:9650"]
    b = lan.router(2, "fastvrrp", [_spec(100)])
    b.extra_args = ["--metrics", "127.0.0.1:9650", "--no-keepalived-metrics"]
    m.start()
    b.start()
    m.wait_state("MASTER", timeout=15)
    b.wait_state("BACKUP", timeout=15)

    inst = 'iname="VI_51",intf="eth0",vrid="51"'
    chk = 'kind="script",tracker="chk"'
    got = wait_for(
        lambda: (s := _scrape(lab, m)).get('keepalived_script_status{name="chk"}') == 1 and s,
        timeout=10,
        what="the script's first success in the metrics",
    )
    assert got[f"fastvrrp_tracker_state{{{chk}}}"] == 1
    assert got[f"fastvrrp_tracker_runs_total{{{chk}}}"] >= 1
    assert got[f'fastvrrp_instance_tracker_weight{{{inst},family="4",{chk}}}'] == 0
    assert got[f'keepalived_vrrp_state{{{inst},ip_address="{VIP}/24"}}'] == 2
    assert got[f"keepalived_become_master_total{{{inst}}}"] == 1
    assert got["keepalived_up"] == 1 and got["process_resident_memory_bytes"] > 0
    assert any(k.startswith("fastvrrp_build_info{") for k in got)
    assert 'keepalived_script_state{name="chk"}' in got
    # the master's transmit socket: its adverts sent, none refused
    assert sum(v for k, v in got.items() if k.startswith("fastvrrp_tx_datagrams_total{")) >= 1
    assert [v for k, v in got.items() if k.startswith("fastvrrp_tx_errors_total{")] == [0]
    # a calm pair: the loop keeps up, nothing deferred is folded
    assert [got[f'fastvrrp_deferred_folded_total{{kind="{k}"}}'] for k in ("report", "announce")] == [0, 0]

    # The service dies: the script fails, -150 applies, the peer takes over; every count shows it.
    os.unlink(flag)
    b.wait_state("MASTER", timeout=10)
    m.wait_state("BACKUP", timeout=10)
    got = wait_for(
        lambda: (s := _scrape(lab, m)).get(f"keepalived_release_master_total{{{inst}}}") == 1 and s,
        timeout=10,
        what="release_master counted",
    )
    assert got['keepalived_script_status{name="chk"}'] == 0
    assert got[f"fastvrrp_tracker_state{{{chk}}}"] == 0
    assert got[f'fastvrrp_tracker_failures_total{{{chk},reason="exit"}}'] >= 1
    assert got[f'fastvrrp_instance_tracker_weight{{{inst},family="4",{chk}}}'] == -150
    assert got[f'fastvrrp_instance_priority{{{inst},family="4"}}'] == 50
    assert got[f'fastvrrp_instance_base_priority{{{inst},family="4"}}'] == 200
    assert got[f'keepalived_vrrp_state{{{inst},ip_address="{VIP}/24"}}'] == 1
    assert got[f"keepalived_priority_zero_sent_total{{{inst}}}"] == 0  # priority 50, not a resignation
    reason = [
        k for k in got if k.startswith(f'fastvrrp_last_transition_info{{{inst},family="4",state="BACKUP"')
    ]
    assert reason, [k for k in got if "last_transition" in k]

    peer = wait_for(
        # At least once: started first, the peer may also have been master before the election.
        lambda: (
            (s := _scrape(lab, b)).get(f'fastvrrp_became_master_total{{{inst},family="4"}}', 0) >= 1 and s
        ),
        timeout=10,
        what="the peer's metrics",
    )
    assert not any(k.startswith("keepalived_") for k in peer)  # --no-keepalived-metrics
    assert peer[f'fastvrrp_instance_state{{{inst},family="4"}}'] == 2

    # promtool's linter on the live text of both daemons.
    for r in (m, b):
        text = lab.sh(r.ns, f'{sys.executable} -c "{SCRAPE}"')
        out = subprocess.run([promtool_bin, "check", "metrics"], input=text, capture_output=True, text=True)
        assert out.returncode == 0 and not (out.stdout + out.stderr).strip(), out.stdout + out.stderr
