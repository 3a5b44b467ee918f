"""A real Prometheus (Debian's package) scraping two fastvrrp routers in namespaces, with the dashboard's
expressions and the alert rules of dist/ (the `for:` durations shortened to 2 s).

Topology: the routers share a bridge (the VRRP LAN, 192.0.2.0/24); Prometheus runs in its own namespace and
reaches each router over a point-to-point management link (198.51.100.0/30 and .4/30), so cutting a router
off the VRRP bridge leaves it scraped. Prometheus listens on its namespace's loopback; the test asks its
HTTP API from inside that namespace.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.parse

import pytest

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

DIST = os.path.join(os.path.dirname(__file__), "..", "..", "dist")
VIP = "192.0.2.100"
MGMT = {1: ("198.51.100.1", "198.51.100.2"), 2: ("198.51.100.5", "198.51.100.6")}  # (router, prometheus)
PROM = "127.0.0.1:9090"

# Runs inside Prometheus's namespace: GET http://PROM<path> and print the JSON (or why it failed, as JSON).
QUERY_PY = """
import json, sys, urllib.request
try:
    with urllib.request.urlopen("http://" + sys.argv[1] + sys.argv[2], timeout=10) as r:
        print(r.read().decode())
except Exception as e:
    print(json.dumps({"status": "unreachable", "error": repr(e)}))
"""


def _spec(prio: int) -> InstanceSpec:
    return InstanceSpec(
        vrid=51,
        priority=prio,
        advert_int_ms=100,
        vips=(f"{VIP}/24",),
        extra=("track_script {", "    chk", "}"),
    )


class Prom:
    def __init__(self, lab, ns: str) -> None:
        self.lab, self.ns = lab, ns
        self.helper = os.path.join(lab.workdir, "promquery.py")
        with open(self.helper, "w") as f:
            f.write(QUERY_PY)

    def get(self, path: str, **params: str) -> dict:
        url = path + ("?" + urllib.parse.urlencode(params) if params else "")
        out = self.lab.sh(self.ns, f"{sys.executable} {self.helper} {PROM} {url}", check=False)
        try:
            return json.loads(out)
        except ValueError:
            return {"status": "bad output", "error": out[-500:]}

    def query(self, expr: str) -> dict:
        return self.get("/api/v1/query", query=expr)

    def firing(self) -> dict[str, list[dict]]:
        doc = self.get("/api/v1/alerts")
        out: dict[str, list[dict]] = {}
        for a in doc.get("data", {}).get("alerts", []):
            if a["state"] == "firing":
                out.setdefault(a["labels"]["alertname"], []).append(a["labels"])
        return out


def _dashboard_exprs() -> list[str]:
    with open(os.path.join(DIST, "grafana", "fastvrrp.json")) as f:
        dash = json.load(f)
    # Grafana's $__rate_interval is at least four scrape intervals: 4 s here.
    return [t["expr"].replace("$__rate_interval", "4s") for p in dash["panels"] for t in p["targets"]]


# What mehdy/keepalived-exporter's Grafana dashboard reads, per target (`instance`): gauges as they are,
# counters through rate(). (Its keepalived_exporter_check_script_status is the exporter's own VIP check
# script, not a keepalived number: fastvrrp has nothing to put there.)
EXPORTER_GAUGES = (
    "keepalived_up",
    "keepalived_vrrp_state",
    "keepalived_script_status",
    "keepalived_script_state",
)
EXPORTER_COUNTERS = (
    "keepalived_become_master_total",
    "keepalived_release_master_total",
    "keepalived_advertisements_sent_total",
    "keepalived_advertisements_received_total",
    "keepalived_priority_zero_sent_total",
    "keepalived_priority_zero_received_total",
    "keepalived_gratuitous_arp_delay_total",
    "keepalived_advertisements_interval_errors_total",
    "keepalived_packet_length_errors_total",
    "keepalived_ip_ttl_errors_total",
    "keepalived_invalid_type_received_total",
    "keepalived_address_list_errors_total",
    "keepalived_authentication_invalid_total",
    "keepalived_authentication_failure_total",
    "keepalived_authentication_mismatch_total",
)


def test_prometheus_scrapes_routers_dashboard_has_data_and_alerts_fire(lab, prometheus_bin):
    lan = Lan(lab, routers=2, client=False)
    pm = lab.ns("pm")
    for i, (raddr, paddr) in MGMT.items():
        lab.veth(lan.router_ns[i - 1], "mgmt", pm, f"m{i}")
        lab.addr(lan.router_ns[i - 1], "mgmt", f"{raddr}/30")
        lab.addr(pm, f"m{i}", f"{paddr}/30")
    routers = []
    for i, prio in ((1, 200), (2, 100)):
        r = lan.router(i, "fastvrrp", [_spec(prio)])
        # A script that always fails (weight -1 on both): tracker state, failures and weights have data.
        r.blocks = "vrrp_script chk {\n    script /bin/false\n    interval 1\n    weight -1\n}\n"
        r.extra_args = ["--metrics", f"{MGMT[i][0]}:9650"]
        routers.append(r)
    r1, r2 = routers
    r1.start()
    r2.start()
    r1.wait_state("MASTER", timeout=15)
    r2.wait_state("BACKUP", timeout=15)

    rules = open(os.path.join(DIST, "prometheus", "alerts.yml")).read()
    rules = re.sub(r"\bfor: \S+", "for: 2s", rules)
    with open(os.path.join(lab.workdir, "rules.yml"), "w") as f:
        f.write(rules)
    targets = ", ".join(f'"{raddr}:9650"' for raddr, _ in MGMT.values())
    with open(os.path.join(lab.workdir, "prometheus.yml"), "w") as f:
        f.write(
            "global: {scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}\n"
            "rule_files: [rules.yml]\n"
            f"scrape_configs:\n  - job_name: fastvrrp\n    static_configs: [{{targets: [{targets}]}}]\n"
        )
    storage = os.path.join(lab.workdir, "prometheus-data")
    t0 = time.monotonic()
    lab.spawn(
        pm,
        [
            prometheus_bin,
            f"--config.file={lab.workdir}/prometheus.yml",
            f"--storage.tsdb.path={storage}",
            f"--web.listen-address={PROM}",
            "--log.level=warn",
        ],
        "prometheus",
    )  # lab.close() stops it by PID
    prom = Prom(lab, pm)

    def both_up():
        doc = prom.query("up")
        res = doc.get("data", {}).get("result", [])
        return len(res) == 2 and all(r["value"][1] == "1" for r in res)

    wait_for(both_up, timeout=60, interval=0.5, what="Prometheus scraping both routers")
    t_up = time.monotonic() - t0

    # Every dashboard expression evaluates without error and returns data.
    exprs = _dashboard_exprs()
    last: dict[str, dict] = {}

    def all_have_data():
        ok = True
        for e in exprs:
            doc = last[e] = prom.query(e)
            assert doc.get("status") in ("success", "unreachable", "bad output"), (e, doc)
            ok = ok and doc.get("status") == "success" and bool(doc["data"]["result"])
        return ok

    done = wait_for(
        all_have_data, timeout=60, interval=1, what="data for every panel", raise_on_timeout=False
    )
    assert done, {e: d for e, d in last.items() if not (d.get("data") or {}).get("result")}
    t_data = time.monotonic() - t0
    for raddr, _ in MGMT.values():
        sel = f'{{instance="{raddr}:9650"}}'
        exporter = [f"{g}{sel}" for g in EXPORTER_GAUGES] + [f"rate({c}{sel}[4s])" for c in EXPORTER_COUNTERS]
        empty = [e for e in exporter if not prom.query(e).get("data", {}).get("result")]
        assert not empty, empty
    masters = prom.query("max by (vrid, family, instance, iname) (fastvrrp_instance_state == 2)")["data"][
        "result"
    ]
    assert [m["metric"]["instance"] for m in masters] == [f"{MGMT[1][0]}:9650"]
    assert not prom.firing().get("VrrpSplitBrain") and not prom.firing().get("VrrpNoMaster")
    wait_for(lambda: prom.firing().get("VrrpTrackerFailing"), timeout=30, what="the failing script alerts")

    # Cut r2 off the VRRP bridge (its link stays up, so it goes MASTER, not FAULT); Prometheus still reaches
    # it over the management link.
    lab.sh(lan.switch, "ip link set p2 nomaster")
    t_cut = time.monotonic()
    r2.wait_state("MASTER", timeout=15)
    split = wait_for(lambda: prom.firing().get("VrrpSplitBrain"), timeout=30, what="the split-brain alert")
    t_split = time.monotonic() - t_cut
    assert split == [{"alertname": "VrrpSplitBrain", "severity": "critical", "vrid": "51", "family": "4"}]
    assert both_up()

    # Heal, then stop both routers: nobody is master of VRID 51.
    lab.sh(lan.switch, f"ip link set p2 master {lan.bridge}")
    r2.wait_state("BACKUP", timeout=15)
    r1.stop()
    r2.stop()
    t_stop = time.monotonic()
    nomaster = wait_for(lambda: prom.firing().get("VrrpNoMaster"), timeout=30, what="the no-master alert")
    t_nomaster = time.monotonic() - t_stop
    assert nomaster == [{"alertname": "VrrpNoMaster", "severity": "critical", "vrid": "51", "family": "4"}]
    # The two targets fail their scrapes at their own moments: wait for both alerts, not the first.
    down = wait_for(
        lambda: (d := prom.firing().get("VrrpDaemonDown")) and len(d) >= 2 and d,
        timeout=30,
        what="the daemon-down alerts of both routers",
    )
    assert len(down) == 2
    print(
        f"\nPrometheus: both targets up {t_up:.1f} s after start, every panel has data at {t_data:.1f} s; "
        f"split brain fires {t_split:.1f} s after the cut; no master {t_nomaster:.1f} s after the stop"
    )
