"""The alert rules and the dashboard in dist/: promtool checks and unit-tests the rules; every dashboard and
alert expression names only families the endpoint renders. (tests/netns/test_prometheus.py runs them
against a real Prometheus scraping real daemons.)"""

from __future__ import annotations

import json
import os
import re
import subprocess

from fastvrrp.daemon import metrics

DIST = os.path.join(os.path.dirname(__file__), "..", "..", "dist")
RULES = os.path.join(DIST, "prometheus", "alerts.yml")
RULES_TEST = os.path.join(DIST, "prometheus", "alerts_test.yml")
DASHBOARD = os.path.join(DIST, "grafana", "fastvrrp.json")


def dashboard_exprs() -> list[str]:
    with open(DASHBOARD) as f:
        dash = json.load(f)
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def rule_exprs() -> list[str]:
    text = open(RULES).read()
    return [m.group(1) for m in re.finditer(r"expr: \|?\n?((?:.|\n)*?)\n\s+(?:for|labels):", text)]


def test_promtool_check_rules(promtool_bin):
    out = subprocess.run([promtool_bin, "check", "rules", RULES], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "SUCCESS: 7 rules found" in out.stdout, out.stdout + out.stderr


def test_promtool_test_rules(promtool_bin):
    out = subprocess.run(
        [promtool_bin, "test", "rules", RULES_TEST], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr
    # every alert of the rules file has at least one firing expectation in the unit tests
    alerts = re.findall(r"- alert: (\w+)", open(RULES).read())
    tested = open(RULES_TEST).read()
    for a in alerts:
        assert re.search(rf"alertname: {a}\n\s+exp_alerts:\n\s+- exp_labels", tested), a


def test_every_expression_names_only_families_we_render():
    known = set(metrics._HEADERS) | {"process_resident_memory_bytes", "time"}
    exprs = dashboard_exprs() + rule_exprs()
    assert len(rule_exprs()) == 7 and len(dashboard_exprs()) >= 20
    for e in exprs:
        for name in re.findall(r"\b((?:fastvrrp|keepalived|process)_[a-z_]+)\b", e):
            assert name in known, (name, e)


def test_dashboard_shows_what_the_issue_asks():
    text = " ".join(dashboard_exprs())
    for family in (
        "fastvrrp_instance_state",
        "fastvrrp_became_master_total",
        "fastvrrp_instance_priority",
        "fastvrrp_instance_base_priority",
        "fastvrrp_tracker_state",
        "fastvrrp_rx_drops_total",
        "fastvrrp_instance_drops_total",
        "fastvrrp_adverts_sent_total",
        "fastvrrp_s9_replies_total",
    ):
        assert family in text, family
