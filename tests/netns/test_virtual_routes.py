"""virtual_routes and virtual_rules in the running daemon: installed on the master only, moved to the new
master on a graceful stop, removed on exit (state read through netlink, `ip -j`)."""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys

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


# Every kind of field the reader types, in lines keepalived 2.2.7 accepts (and two it skips): keepalived and
# fastvrrp, each master of its own VRID with the same lines, must leave the same routes and rules in the
# kernel (`ip -j -d route` / `ip -j -d rule` compared field by field).
# keepalived 2.2.7 sends a local route with universe scope, which the kernel refuses (EINVAL in its log);
# fastvrrp gives it host scope, so it is installed: compared apart.
LOCAL = "local 203.0.113.192/27 dev eth0 table 100"
TYPED_ROUTES = (
    "198.51.100.0/25 via 192.0.2.254 dev eth0 table 100 metric 7",
    "198.51.100.128/25 via 192.0.2.254 dev eth0 table 100 onlink src 192.0.2.100 tos 0x04 realms 3/4"
    " mtu lock 1300 advmss 1000 hoplimit 64 initcwnd 10 initrwnd 11 window 12 cwnd 13 ssthresh lock 14"
    " reordering 5 rtt 2s rttvar 300ms rto_min 3000 quickack 1 congctl lock cubic features ecn",
    "203.0.113.0/25 dev eth0 table 100 scope host protocol 99 no_track",
    "203.0.113.128/26 dev eth0 table 100",
    LOCAL,
    "blackhole 198.18.0.0/24 table 100",
    "unreachable 198.18.1.0/24 table 100",
    "prohibit 198.18.2.0/24 table 100 metric 9",
    "throw 198.18.3.0/24 table 100",
    "2001:db8:1::/64 dev eth0 table 100 pref high metric 5 expires 3600",
    "default via 192.0.2.254 dev eth0 table 100 metric 1000",
    "198.18.11.0/24 via 192.0.2.254 dev eth0 table 100 append",
    "198.18.8.0/24 table 100 metric 5 nexthop via 192.0.2.254 dev eth0 weight 1"
    " nexthop via 192.0.2.253 dev eth0 weight 2 onlink",
    "198.18.9.0/24 via 192.0.2.254 or 192.0.2.253 table 100",
    "198.18.10.0/24 table 100 nexthop via 192.0.2.254 realms 2 nexthop via inet 192.0.2.253",
    "2001:db8:2::/64 table 100 nexthop via fe80::1 dev eth0 nexthop via fe80::2 dev eth0",
    "198.18.4.0/24 via 192.0.2.254 dev eth0 table 100 bogus 3",  # skipped by both: unknown keyword
    # lightweight tunnels (ip, ip6: built into Linux), the TCP Fast Open metric, RTA_TTL_PROPAGATE (which the
    # kernel takes and uses for MPLS routes only), in attributes pyroute2's rtmsg does not know
    "198.18.12.0/24 dev eth0 table 100 encap ip id 5 dst 192.0.2.9 ttl 7 tos 16 flags 1 fastopen_no_cookie 1"
    " ttl-propagate enabled",
    "198.18.13.0/24 dev eth0 table 100 encap ip dst 192.0.2.10 src 192.0.2.100 fastopen_no_cookie 0",
    "2001:db8:3::/64 dev eth0 table 100 encap ip6 id 6 dst 2001:db8::9 hoplimit 3 tc 8 flags 1",
    "198.18.14.0/24 dev eth0 table 100 vrf nosuchvrf",  # no such VRF: keepalived skips it, fastvrrp too
)
TYPED_RULES = (
    "from 192.0.2.100 table 100 priority 100",
    "not from 192.0.2.12 to 198.51.100.0/24 table 100 priority 50 fwmark 0x10/0xff iif eth0 tos 0x10"
    " uidrange 10-20 ipproto udp sport 10-20 dport 30-40 suppress_prefixlength 0 protocol 99 no_track",
    "to 192.0.2.13 l3mdev priority 61",
    "from 192.0.2.14 priority 62 realms 30/20 table 100 oif eth0 suppress_ifgroup 1",
    "from 192.0.2.15 goto 100 priority 63",
    "from 192.0.2.16 blackhole priority 64",
    "from 192.0.2.17 unreachable priority 65",
    "from 192.0.2.18 prohibit priority 66",
    "from 192.0.2.19 nop priority 67",
    "from 2001:db8::/64 table 100 priority 68",
    "from 192.0.2.20 table 100",  # no priority: keepalived's 16384
    "from 192.0.2.21 table 100 fwmark x priority 69",  # skipped by both: bad fwmark
)
TYPED = (
    "virtual_routes {",
    *(f"    {x}" for x in TYPED_ROUTES),
    "}",
    "virtual_rules {",
    *(f"    {x}" for x in TYPED_RULES),
    "}",
)


def kernel_routes_and_rules(lab, ns: str) -> dict[str, list]:
    """What the kernel holds in table 100 (local routes aside) and the rule lists, in `ip -j -d` form."""
    out = {}
    for key, cmd in (
        ("route4", "-d route show table 100"),
        ("route6", "-6 -d route show table 100"),
        ("rule4", "-d rule show"),
        ("rule6", "-6 -d rule show"),
    ):
        rows = ip_json(lab, ns, cmd)
        if key.startswith("rule"):  # the kernel's own rules (local, main, default) are always there
            rows = [
                r
                for r in rows
                if r.get("protocol") != "kernel" and r.get("priority") not in (0, 32766, 32767)
            ]
        if key == "route4":
            rows = [r for r in rows if r.get("type") != "local"]  # see LOCAL
        for r in rows:  # seconds left: counts down; that it is there is checked apart
            if r.pop("expires", None) is not None:
                r["expires"] = "set"
        out[key] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
    return out


def test_typed_routes_and_rules_as_keepalived_installs_them(lab, keepalived_bin):
    lan = Lan(lab, routers=3, client=False)
    ka = lan.router(1, "keepalived", [spec(200, *TYPED, vrid=51)], keepalived_bin=keepalived_bin)
    fv = lan.router(2, "fastvrrp", [spec(200, *TYPED, vrid=52)])
    ka.start()
    fv.start()
    ka.wait_state("MASTER", timeout=15)
    fv.wait_state("MASTER", timeout=15)
    want_rules = len(TYPED_RULES) - 2  # the skipped one and the IPv6 one aside
    wait_for(
        lambda: len(kernel_routes_and_rules(lab, ka.ns)["rule4"]) == want_rules,
        timeout=5,
        what="keepalived's rules",
    )
    try:
        wait_for(
            lambda: kernel_routes_and_rules(lab, fv.ns) == kernel_routes_and_rules(lab, ka.ns),
            timeout=5,
            what="fastvrrp's routes and rules to be keepalived's",
        )
    except TimeoutError:
        pass  # the assertion below shows the difference
    got = kernel_routes_and_rules(lab, fv.ns)
    assert got == kernel_routes_and_rules(lab, ka.ns)
    assert len(got["route4"]) == len(TYPED_ROUTES) - 6 and len(got["route6"]) == 3
    # `ip -j route` writes a tunnel's destination over the route's "dst"
    tunnels = {r["dst"]: r for r in got["route4"] + got["route6"] if "encap" in r}
    assert set(tunnels) == {"192.0.2.9", "192.0.2.10", "2001:db8::9"}, got
    assert tunnels["192.0.2.9"]["metrics"][0].get("fastopen_no_cookie") == 1, tunnels
    assert (tunnels["192.0.2.9"]["id"], tunnels["2001:db8::9"]["hoplimit"]) == (5, 3), tunnels
    multipath = {r["dst"]: r.get("nexthops") for r in got["route4"] + got["route6"] if "nexthops" in r}
    assert set(multipath) == {"198.18.8.0/24", "198.18.9.0/24", "198.18.10.0/24", "2001:db8:2::/64"}
    assert [h.get("weight") for h in multipath["198.18.8.0/24"]] == [1, 2]
    assert [r.get("expires") for r in got["route6"] if r["dst"] == "2001:db8:1::/64"] == ["set"]
    local = [
        r
        for r in ip_json(lab, fv.ns, "route show table 100 type local")
        if r.get("dst") == "203.0.113.192/27"
    ]
    assert local and local[0]["scope"] == "host"
    assert sorted(r["priority"] for r in got["rule4"]) == [50, 61, 62, 63, 64, 65, 66, 67, 100, 16384]
    # A higher priority fastvrrp for VRID 52 takes over: r2 goes BACKUP and removes every route and rule.
    r3 = lan.router(3, "fastvrrp", [spec(250, *TYPED, vrid=52)])
    r3.start()
    fv.wait_state("BACKUP", timeout=15)
    empty = {"route4": [], "route6": [], "rule4": [], "rule6": []}
    wait_for(lambda: kernel_routes_and_rules(lab, fv.ns) == empty, timeout=5, what="r2 to remove them")
    wait_for(
        lambda: kernel_routes_and_rules(lab, r3.ns) == got, timeout=5, what="r3 to install them as r2 had"
    )
    for r in (r3, fv, ka):
        assert r.stop() == 0
    assert kernel_routes_and_rules(lab, r3.ns) == empty


STATIC = (
    "static_routes {\n"
    "    198.51.100.0/24 via 192.0.2.254 dev eth0 table 100 metric 3\n"
    "    blackhole 203.0.113.0/24 table 100\n"
    "}\n"
    "static_rules {\n"
    "    from 192.0.2.50 table 100 priority 77\n"
    "    to 203.0.113.0/24 table 100\n"
    "}\n"
)


def test_static_routes_and_rules_as_keepalived(lab, keepalived_bin):
    """static_routes / static_rules: in the kernel while the daemon runs (whatever the instance's state), as
    keepalived puts them; gone after a graceful stop; a reload adds and removes the difference."""
    lan = Lan(lab, routers=2, client=False)
    ka = lan.router(1, "keepalived", [spec(100, vrid=51)], keepalived_bin=keepalived_bin)
    fv = lan.router(2, "fastvrrp", [spec(100, vrid=52)])
    for r in (ka, fv):
        r.blocks_before = STATIC
        r.start()
    wait_for(lambda: len(kernel_routes_and_rules(lab, ka.ns)["rule4"]) == 2, timeout=10, what="keepalived's")
    wait_for(
        lambda: kernel_routes_and_rules(lab, fv.ns) == kernel_routes_and_rules(lab, ka.ns),
        timeout=5,
        what="fastvrrp's static routes and rules to be keepalived's",
    )
    got = kernel_routes_and_rules(lab, fv.ns)
    assert [r["dst"] for r in got["route4"]] == ["198.51.100.0/24", "203.0.113.0/24"]
    assert sorted(r["priority"] for r in got["rule4"]) == [77, 16384]
    # reload: one route and one rule dropped, one route added
    fv.blocks_before = STATIC.replace(
        "    blackhole 203.0.113.0/24 table 100\n", "    198.18.0.0/24 dev eth0 table 100\n"
    )
    fv.blocks_before = fv.blocks_before.replace("    to 203.0.113.0/24 table 100\n", "")
    fv.write_config()
    fv.proc.send_signal(signal.SIGHUP)

    def after_reload() -> tuple[list[str], list[int]]:
        now = kernel_routes_and_rules(lab, fv.ns)
        return sorted(r["dst"] for r in now["route4"]), [r["priority"] for r in now["rule4"]]

    wait_for(
        lambda: after_reload() == (["198.18.0.0/24", "198.51.100.0/24"], [77]), timeout=5, what="the reload"
    )
    for r in (fv, ka):
        assert r.stop() == 0
    empty = {"route4": [], "route6": [], "rule4": [], "rule6": []}
    assert kernel_routes_and_rules(lab, fv.ns) == empty == kernel_routes_and_rules(lab, ka.ns)


APPLY = """
import json, sys
from pyroute2 import IPRoute
from fastvrrp.config.lexer import Node
from fastvrrp.config.route_lines import route
from fastvrrp.config.values import Reporter
from fastvrrp.io import routes

specs = []
for line in sys.argv[1:]:
    words = line.split()
    specs.append(routes.route_spec(route(Reporter(), Node(words[0], words[1:], "k.conf", 1))))
with IPRoute() as ipr:
    res = routes.apply(ipr, specs, True)
print(json.dumps({"done": [s.text for s in res.done], "failed": {s.text: why for s, why in res.failed}}))
"""


def test_vrf_route_goes_to_the_vrf_table_or_is_left_out(lab):
    """keepalived 2.2.7 puts a `vrf NAME` route in the VRF's table and skips it when NAME is no VRF ("VRF
    blue not found for route", "Route specified VRF eth0 is not a VRF"); fastvrrp looks the VRF up when it
    installs the route and leaves it out, saying why, in the same cases."""
    ns = lab.ns("v")
    lab.veth(ns, "eth0", ns, "eth1")
    lines = ["198.51.100.0/24 dev eth0 vrf eth1", "198.51.101.0/24 dev eth0 vrf nosuch0"]
    p = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", APPLY, *lines],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(pathlib.Path(__file__).resolve().parents[2]),
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res == {
        "done": [],
        "failed": {lines[0]: "eth1 is not a VRF", lines[1]: "VRF nosuch0 does not exist"},
    }
    assert not any(r.get("dst", "").startswith("198.51.10") for r in ip_json(lab, ns, "route show table all"))
