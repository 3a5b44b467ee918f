"""virtual_routes and virtual_rules in the running daemon: installed on the master only, moved to the new
master on a graceful stop, removed on exit (state read through netlink, `ip -j`)."""

from __future__ import annotations

import pytest

from fastvrrp.lab.namespaces import ip_json, wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

A = 100  # ms
VIP = "192.0.2.100"


def spec(prio: int, *extra: str, vrid: int = 51, vip: str = VIP, adv: int = A) -> InstanceSpec:
    return InstanceSpec(vrid=vrid, priority=prio, advert_int_ms=adv, vips=(f"{vip}/24",), extra=extra)


ROUTES = (
    "virtual_routes {",
    "    198.51.100.0/24 via 192.0.2.254 table 100 metric 7",
    "    203.0.113.0/24 dev eth0 scope link",
    "}",
    "virtual_rules {",
    f"    from {VIP}/32 table 100 priority 1000",
    "}",
)


def net_state(lab, ns: str) -> tuple[bool, bool, bool]:
    t100 = ip_json(lab, ns, "route show table 100")
    main = ip_json(lab, ns, "route show")
    rules = ip_json(lab, ns, "rule show")
    return (
        any(
            r["dst"] == "198.51.100.0/24" and r.get("gateway") == "192.0.2.254" and r.get("metric") == 7
            for r in t100
        ),
        any(r["dst"] == "203.0.113.0/24" and r.get("dev") == "eth0" for r in main),
        any(r.get("priority") == 1000 and r.get("src") == VIP and r.get("table") == "100" for r in rules),
    )


def test_routes_and_rules_only_on_the_master(lab):
    lan = Lan(lab, routers=2, client=False)
    m = lan.router(1, "fastvrrp", [spec(200, *ROUTES)])
    b = lan.router(2, "fastvrrp", [spec(100, *ROUTES)])
    m.start()
    m.wait_state("MASTER", timeout=10)
    b.start()
    b.wait_state("BACKUP", timeout=10)
    wait_for(lambda: net_state(lab, m.ns) == (True, True, True), timeout=3, what="routes and rule on r1")
    assert net_state(lab, b.ns) == (False, False, False)
    assert m.stop() == 0  # graceful: r1 removes them, r2 installs them
    b.wait_state("MASTER", timeout=5)
    wait_for(lambda: net_state(lab, b.ns) == (True, True, True), timeout=3, what="routes and rule on r2")
    assert net_state(lab, m.ns) == (False, False, False)
    assert b.stop() == 0
    assert net_state(lab, b.ns) == (False, False, False)
