"""Route and rule lines typed at read time (config/route_lines.py), their netlink arguments (io/routes.py)
and their --dump-json form. keepalived's verdicts on the same lines: tests/netns/test_route_verdicts.py."""

from __future__ import annotations

import ipaddress
import json
import socket
import sys

import pytest

from fastvrrp.config import check
from fastvrrp.config.lexer import Node
from fastvrrp.config.model import Nexthop, RouteEncap, RouteMetric
from fastvrrp.config.route_lines import route, rule, static_route, static_rule
from fastvrrp.config.values import Reporter
from fastvrrp.io import routes as io

net, ip = ipaddress.ip_network, ipaddress.ip_address


def read(fn, line: str):
    r = Reporter()
    words = line.split()
    return fn(r, Node(words[0], words[1:], "k.conf", 7)), r


def fields(obj, names):
    return {n: getattr(obj, n) for n in names}


# --- routes: each keyword into its field --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "want"),
    [
        ("198.51.100.0/24 dev eth0", {"destination": net("198.51.100.0/24"), "dev": "eth0", "family": 4}),
        ("to 198.51.100.0/24 dev eth0", {"destination": net("198.51.100.0/24")}),
        ("198.51.100.7/24 dev eth0", {"destination": net("198.51.100.0/24")}),
        ("default via 192.0.2.1 dev eth0", {"destination": net("0.0.0.0/0"), "via": ip("192.0.2.1")}),
        ("default via 2001:db8::1 dev eth0", {"destination": net("::/0"), "family": 6}),
        ("198.51.100.0/24 via inet 192.0.2.1 dev eth0", {"via": ip("192.0.2.1")}),
        ("src 192.0.2.10 198.51.100.0/24 dev eth0", {"src": ip("192.0.2.10")}),
        ("198.51.100.0/24 dev eth0 table 100", {"table": 100}),
        ("198.51.100.0/24 dev eth0 table main", {"table": 254}),
        ("198.51.100.0/24 dev eth0 table 4294967295", {"table": 2**32 - 1}),
        ("198.51.100.0/24 dev eth0", {"table": 254, "protocol": 18, "scope": None, "type": "unicast"}),
        ("198.51.100.0/24 dev eth0 metric 7", {"metric": 7}),
        ("198.51.100.0/24 dev eth0 priority 8", {"metric": 8}),
        ("198.51.100.0/24 dev eth0 preference 9", {"metric": 9}),
        ("198.51.100.0/24 dev eth0 protocol 99 no_track", {"protocol": 99, "no_track": True}),
        ("198.51.100.0/24 dev eth0 protocol bird no_track", {"protocol": 12}),
        ("198.51.100.0/24 dev eth0 scope link", {"scope": 253}),
        ("198.51.100.0/24 dev eth0 scope 7", {"scope": 7}),
        ("198.51.100.0/24 dev eth0 tos 0x04", {"tos": 4}),
        ("198.51.100.0/24 dev eth0 dsfield 8", {"tos": 8}),
        ("198.51.100.0/24 via 192.0.2.1 dev eth0 onlink", {"onlink": True}),
        ("198.51.100.0/24 dev eth0 realms 3/4", {"realms": (3 << 16) | 4}),
        ("198.51.100.0/24 dev eth0 realms 4", {"realms": 4}),
        ("2001:db8:1::/64 dev eth0 pref high", {"pref": 1, "family": 6}),
        ("2001:db8:1::/64 dev eth0 pref low", {"pref": 3}),
        ("2001:db8:1::/64 dev eth0 expires 10", {"expires": 10}),
        ("blackhole 198.51.100.0/24 no_track", {"type": "blackhole", "dev": None}),
        ("throw 198.51.100.0/24 dev eth0", {"type": "throw"}),
        ("local 198.51.100.0/24 dev eth0", {"type": "local"}),
        ("nat 198.51.100.0/24 dev eth0", {"type": "nat"}),
        ("198.51.100.0/24 dev eth0 append", {"append": True}),
    ],
)
def test_route_keyword(line, want):
    got, r = read(route, line)
    assert got is not None and not r.problems and not r.adjustments, (r.problems, r.adjustments)
    assert fields(got, want) == want
    assert got.text == line


@pytest.mark.parametrize(
    ("words", "metric"),
    [
        ("mtu 1400", RouteMetric("mtu", 1400)),
        ("mtu lock 1400", RouteMetric("mtu", 1400, True)),
        ("hoplimit 64", RouteMetric("hoplimit", 64)),
        ("advmss 1000", RouteMetric("advmss", 1000)),
        ("reordering 5", RouteMetric("reordering", 5)),
        ("window 12", RouteMetric("window", 12)),
        ("cwnd 13", RouteMetric("cwnd", 13)),
        ("ssthresh lock 107", RouteMetric("ssthresh", 107, True)),
        ("initcwnd 10", RouteMetric("initcwnd", 10)),
        ("initrwnd 11", RouteMetric("initrwnd", 11)),
        ("quickack 1", RouteMetric("quickack", 1)),
        ("congctl cubic", RouteMetric("cc_algo", "cubic")),
        ("congctl lock cubic", RouteMetric("cc_algo", "cubic", True)),
        ("features ecn", RouteMetric("features", 1)),
        # times: bare numbers in the kernel's unit, ms / s suffixes; keepalived installs none under 200 ms
        ("rtt 3000", RouteMetric("rtt", 3000)),
        ("rtt 2s", RouteMetric("rtt", 16000)),
        ("rtt 300ms", RouteMetric("rtt", 2400)),
        ("rtt 102", RouteMetric("rtt", 1600)),
        ("rttvar 3000", RouteMetric("rttvar", 3000)),
        ("rttvar lock 3s", RouteMetric("rttvar", 12000, True)),
        ("rto_min 3000", RouteMetric("rto_min", 3000)),
        ("rto_min 108ms", RouteMetric("rto_min", 200)),
    ],
)
def test_route_metric(words, metric):
    got, r = read(route, f"198.51.100.0/24 dev eth0 {words}")
    assert not r.problems and not r.adjustments
    assert got.metrics == (metric,)


# --- routes: what keepalived skips (an adjustment, the line dropped), adjusts (kept) or fastvrrp refuses
@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("198.51.100.0/24 dev eth0 bogus 3", "unknown route keyword 'bogus'"),
        ("198.51.100.0/24 dev eth0 proto static", "unknown route keyword 'proto'"),
        ("198.51.100.0/24 dev eth0 type unicast", "unknown route keyword 'type'"),
        ("198.51.100.0/24 dev eth0 track_group G", "unknown route keyword 'track_group'"),
        ("198.51.100.0/24 via 192.0.2.999 dev eth0", "invalid via address '192.0.2.999'"),
        ("198.51.100.0/24 via 2001:db8::1 dev eth0", "mixes IPv4 and IPv6"),
        ("nowhere", "invalid destination 'nowhere'"),
        ("via 192.0.2.1 dev eth0", "a route must have a destination"),
        (
            "198.51.100.0/24 dev eth0 table foo",
            "routing table 'foo' is not a name in /etc/iproute2/rt_tables",
        ),
        ("198.51.100.0/24 dev eth0 metric -1", "metric -1 out of range [0, 4294967295]"),
        ("198.51.100.0/24 dev eth0 metric x", "invalid metric 'x'"),
        ("198.51.100.0/24 dev eth0 protocol 256", "protocol '256' is not a name"),
        ("198.51.100.0/24 dev eth0 protocol nosuch", "protocol 'nosuch' is not a name"),
        ("198.51.100.0/24 dev eth0 scope nosuch", "scope 'nosuch' is not a name"),
        ("198.51.100.0/24 dev eth0 tos 300", "TOS value '300'"),
        ("198.51.100.0/24 dev eth0 mtu x", "invalid mtu 'x'"),
        ("198.51.100.0/24 dev eth0 hoplimit 300", "hoplimit 300 out of range [0, 255]"),
        ("198.51.100.0/24 dev eth0 quickack 2", "quickack value 2 out of range [0, 1]"),
        ("198.51.100.0/24 dev eth0 features bogus", "feature 'bogus' not supported (ecn is)"),
        ("198.51.100.0/24 dev eth0 rtt 1500000us", "invalid rtt '1500000u'"),
        ("198.51.100.0/24 dev eth0 pref high", "pref is only valid for IPv6"),
        ("198.51.100.0/24 dev eth0 expires 10", "expires is only valid for IPv6"),
        ("2001:db8:1::/64 dev eth0 expires x", "invalid expires 'x'"),
        ("2001:db8:1::/64 dev eth0 pref best", "pref 'best' is not low, medium or high"),
    ],
)
def test_route_skipped_as_keepalived_does(line, why):
    got, r = read(route, line)
    assert got is None and not r.problems
    (adj,) = r.adjustments
    assert (adj.file, adj.line) == ("k.conf", 7)
    assert adj.message.startswith(f"route '{line}' skipped, as keepalived does: ") and why in adj.message


@pytest.mark.parametrize(
    ("line", "adjusted", "want"),
    [
        ("198.51.100.0/24 gw 192.0.2.1 dev eth0", "'gw' is deprecated", {"via": ip("192.0.2.1")}),
        (
            "198.51.100.0/33 dev eth0",
            "prefix length 33 of destination",
            {"destination": net("198.51.100.0/32")},
        ),
        ("198.51.100.0/24 dev eth0 protocol bird", "protocol is reset to keepalived (18)", {"protocol": 18}),
        ("198.51.100.0/24 via 192.0.2.1", "without 'dev' is not tracked", {"no_track": True}),
        ("blackhole 198.51.100.0/24", "without 'dev' is not tracked", {"type": "blackhole"}),
    ],
)
def test_route_adjusted_and_kept(line, adjusted, want):
    got, r = read(route, line)
    assert got is not None and not r.problems
    assert len(r.adjustments) == 1 and adjusted in r.adjustments[0].message, r.adjustments
    assert fields(got, want) == want


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("198.51.100.0/24 dev eth0 metric", "'metric' needs a value"),
        ("198.51.100.0/24 dev eth0 mtu lock", "'mtu' needs a value"),
    ],
)
def test_route_refused(line, why):
    got, r = read(route, line)
    assert got is None and not r.adjustments
    (p,) = r.problems
    assert (p.file, p.line) == ("k.conf", 7) and p.message.startswith(f"route '{line}': {why}")


def test_multipath_routes():
    got, r = read(
        route,
        "198.51.100.0/24 table 100 nexthop via 192.0.2.1 dev eth0 weight 3 onlink nexthop via inet 192.0.2.2"
        " realms 2 nexthop dev eth1",
    )
    assert not r.problems and [a.message for a in r.adjustments] == [
        "route without 'dev' is not tracked, as keepalived does"
    ]
    assert (got.via, got.dev, got.table) == (None, None, 100)
    assert got.nexthops == (
        Nexthop(ip("192.0.2.1"), "eth0", 3, True),
        Nexthop(ip("192.0.2.2"), realms=2),
        Nexthop(dev="eth1"),
    )
    spec = io.route_spec(got, "eth9")
    assert spec.devs == () and dict(spec.kw)["multipath"] == (
        (("flags", 4), ("gateway", "192.0.2.1"), ("hops", 2), ("oif", "eth0")),
        (("flow", 2), ("gateway", "192.0.2.2"), ("hops", 0)),
        (("hops", 0), ("oif", "eth1")),
    )
    index = {"eth0": 5, "eth1": 6}.get
    assert spec.kwargs(index)["multipath"] == [
        {"flags": 4, "gateway": "192.0.2.1", "hops": 2, "oif": 5},
        {"flow": 2, "gateway": "192.0.2.2", "hops": 0},
        {"hops": 0, "oif": 6},
    ]
    with pytest.raises(LookupError, match="interface eth1 does not exist"):
        spec.kwargs({"eth0": 5}.get)
    # keepalived's deprecated `or`: nexthops of weight 1, each on the route's dev
    got, r = read(route, "198.51.100.0/24 via 192.0.2.1 or 192.0.2.2 or 192.0.2.3 dev eth0")
    assert [a.message for a in r.adjustments] == [
        "'or' is deprecated for routes, read as nexthops, as keepalived does"
    ]
    assert got.nexthops == tuple(Nexthop(ip(f"192.0.2.{i}"), "eth0") for i in (1, 2, 3)) and got.dev is None
    # what follows the nexthops is not read (keepalived: "trailing nonsense")
    got, r = read(route, "198.51.100.0/24 nexthop via 192.0.2.1 table 100")
    assert got.table == 254 and got.nexthops == (Nexthop(ip("192.0.2.1")),)
    assert "'table 100' after the nexthops is not read, as keepalived does" in [
        a.message for a in r.adjustments
    ]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("198.51.100.0/24 nexthop via 192.0.2.1 weight 0", "nexthop weight 0 is invalid (1-256)"),
        ("198.51.100.0/24 nexthop via 192.0.2.1 weight 257", "nexthop weight 257 out of range [0, 256]"),
        ("198.51.100.0/24 nexthop via 2001:db8::1", "mixes IPv4 and IPv6"),
        ("198.51.100.0/24 nexthop weight 2", "a nexthop needs 'via' or 'dev'"),
        ("198.51.100.0/24 dev eth0 or 192.0.2.1", "'or' only follows 'via'"),
    ],
)
def test_multipath_skipped(line, why):
    got, r = read(route, line)
    assert got is None and not r.problems and why in r.adjustments[-1].message, r.adjustments


def test_static_route_takes_track_group():
    got, r = read(static_route, "198.51.100.0/24 dev eth0 track_group G1")
    assert got.track_group == "G1" and not r.problems and not r.adjustments


# --- rules --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "want"),
    [
        ("from 192.0.2.0/24 table 100 priority 5", {"src": net("192.0.2.0/24"), "table": 100, "priority": 5}),
        ("from 192.0.2.0/24 lookup main priority 5", {"table": 254, "action": "table"}),
        ("to 198.51.100.0/24 table 1 preference 6", {"dst": net("198.51.100.0/24"), "priority": 6}),
        ("from all to 198.51.100.1 table 1 priority 5", {"src": None, "dst": net("198.51.100.1/32")}),
        ("from 2001:db8::/32 table 1 priority 5", {"family": 6}),
        ("not from 192.0.2.1 table 1 priority 5", {"invert": True}),
        ("from 192.0.2.1 table 1 priority 5 not", {"invert": True}),
        ("from 192.0.2.1 goto 10 priority 5", {"action": "goto", "goto": 10, "table": None}),
        ("from 192.0.2.1 blackhole priority 5", {"action": "blackhole"}),
        ("from 192.0.2.1 unreachable priority 5", {"action": "unreachable"}),
        ("from 192.0.2.1 prohibit priority 5", {"action": "prohibit"}),
        ("from 192.0.2.1 type prohibit priority 5", {"action": "prohibit"}),
        ("from 192.0.2.1 nop priority 5", {"action": "nop"}),
        ("from 192.0.2.1 l3mdev priority 5", {"l3mdev": True, "action": "table", "table": None}),
        ("table 1 priority 5 fwmark 24", {"fwmark": 24, "fwmask": None}),
        ("table 1 priority 5 fwmark 0x10/0xff", {"fwmark": 16, "fwmask": 255}),
        ("table 1 priority 5 iif eth0", {"iif": "eth0"}),
        ("table 1 priority 5 dev eth0", {"iif": "eth0"}),
        ("table 1 priority 5 oif eth0", {"oif": "eth0"}),
        ("table 1 priority 5 tos 0x10", {"tos": 16}),
        ("table 1 priority 5 dsfield 22", {"tos": 22}),
        ("table 1 priority 5 realms 30/20", {"realms": (30 << 16) | 20}),
        ("table 1 priority 5 suppress_prefixlength 0", {"suppress_prefixlength": 0}),
        ("table 1 priority 5 suppress_ifgroup 1", {"suppress_ifgroup": 1}),
        ("table 1 priority 5 uidrange 10000-19999", {"uidrange": (10000, 19999)}),
        ("table 1 priority 5 ipproto udp sport 10-20 dport 20-30", {"ip_proto": 17, "sport": (10, 20)}),
        ("table 1 priority 5 ipproto 6 dport 20-30", {"ip_proto": 6, "dport": (20, 30)}),
        ("table 1 priority 5 protocol 99 no_track", {"protocol": 99, "no_track": True}),
        ("table 1 priority 5", {"protocol": 18, "family": 4, "no_track": False}),
    ],
)
def test_rule_keyword(line, want):
    got, r = read(rule, line)
    assert got is not None and not r.problems and not r.adjustments, (r.problems, r.adjustments)
    assert fields(got, want) == want


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("from 192.0.2.0/24 table 100 pref 5", "unknown rule option 'pref'"),
        ("from 192.0.2.0/24 table 100 ip_proto udp priority 5", "unknown rule option 'ip_proto'"),
        (
            "from 192.0.2.0/24 table 100 suppress_prefixlen 0 priority 5",
            "unknown rule option 'suppress_prefixlen'",
        ),
        ("from 192.0.2.0/24 table 100 track_group G priority 5", "unknown rule option 'track_group'"),
        ("from 192.0.2.0/24 table 100 priority x", "invalid rule priority 'x'"),
        ("from 192.0.2.0/24 table 100 priority 4294967296", "rule priority 4294967296 out of range"),
        ("from 192.0.2.x table 100 priority 5", "invalid rule from address '192.0.2.x'"),
        ("from 192.0.2.0/24 to 2001:db8::/32 table 100 priority 5", "mixes IPv4 and IPv6"),
        ("from 192.0.2.0/24 table foo priority 5", "routing table 'foo'"),
        ("from 192.0.2.0/24 table 0 priority 5", "table 0 is not valid"),
        ("from 192.0.2.0/24 priority 5", "no action"),
        ("from 192.0.2.0/24 type nat priority 5", "invalid rule action 'nat'"),
        ("from 192.0.2.0/24 table 1 fwmark x priority 5", "invalid fwmark 'x'"),
        ("from 192.0.2.0/24 table 1 tos 300 priority 5", "TOS value '300'"),
        (
            "from 192.0.2.0/24 table 1 uidrange 10000 priority 5",
            "invalid uidrange '10000' (expected START-END)",
        ),
        ("from 192.0.2.0/24 table 1 sport 70000-70001 priority 5", "sport range 70000 out of range"),
        ("from 192.0.2.0/24 table 1 ipproto bogus priority 5", "invalid ipproto 'bogus'"),
        ("from 192.0.2.0/24 table 1 protocol bird priority 5", "invalid protocol 'bird'"),
        ("from 192.0.2.0/24 goto 50 priority 60", "priority 60 is not below the goto target 50"),
    ],
)
def test_rule_skipped_as_keepalived_does(line, why):
    got, r = read(rule, line)
    assert got is None and not r.problems
    (adj,) = r.adjustments
    assert adj.message.startswith(f"rule '{line}' skipped, as keepalived does: ") and why in adj.message


def test_rule_adjusted_and_kept():
    got, r = read(rule, "from 192.0.2.0/33 table 1 priority 5 protocol 12")
    assert got is not None and not r.problems
    assert got.src == net("192.0.2.0/32") and got.protocol == 18
    assert [a.message for a in r.adjustments] == [
        "prefix length 33 of rule from address 192.0.2.0/33 is over 32: 32 used (as keepalived)",
        "a tracked rule's protocol is reset to keepalived (18), as keepalived does",
    ]
    got, r = read(rule, "from 192.0.2.1 table 1 priority")
    assert got is None and [p.message for p in r.problems] == [
        "rule 'from 192.0.2.1 table 1 priority': 'priority' needs a value"
    ]
    got, r = read(static_rule, "from 192.0.2.1 table 1 priority 5 track_group G1")
    assert got.track_group == "G1" and not r.adjustments


def test_rules_without_priority_count_down_across_the_file(tmp_path):
    """keepalived gives 16384, 16383 ... in file order, over every instance and static_rules."""
    p = tmp_path / "k.conf"
    inst = (
        "vrrp_instance {n} {{\n interface eth0\n virtual_router_id {v}\n"
        " virtual_ipaddress {{\n  192.0.2.{v}/24\n }}\n virtual_rules {{\n  from 192.0.2.{v} table 100\n"
        "  from 192.0.2.{v} table 100 priority 7\n }}\n}}\n"
    )
    p.write_text(
        inst.format(n="A", v=10)
        + inst.format(n="B", v=11)
        + "static_rules {\n from 192.0.2.12 table 100\n}\n"
    )
    cfg, problems, _ = check(str(p))
    assert cfg is not None, problems
    got = [r.priority for i in cfg.instances for r in i.virtual_rules] + [
        r.priority for r in cfg.static_rules
    ]
    assert got == [16384, 7, 16383, 7, 16382]


# --- applied from the fields --------------------------------------------------------------------------------
def test_route_netlink_arguments_come_from_the_fields():
    got, _ = read(
        route,
        "198.51.100.0/25 via 192.0.2.254 dev eth0 table 100 metric 7 onlink src 192.0.2.100 tos 0x04"
        " realms 3/4 mtu lock 1300 ssthresh lock 14 congctl cubic scope 0 protocol 99 no_track",
    )
    spec = io.route_spec(got, "eth1")
    assert dict(spec.kw) == {
        "family": socket.AF_INET, "dst": "198.51.100.0", "dst_len": 25, "type": 1, "table": 100, "proto": 99,
        "gateway": "192.0.2.254", "prefsrc": "192.0.2.100", "priority": 7, "tos": 4, "flags": 4,
        "flow": (3 << 16) | 4, "scope": 0,
        "metrics": {"mtu": 1300, "ssthresh": 14, "cc_algo": "cubic", "lock": (1 << 2) | (1 << 6)},
    }  # fmt: skip
    assert spec.devs == (("oif", "eth0"),) and spec.kind == "route" and spec.add_command == "add"
    assert io.route_spec(read(route, "198.51.100.0/24 dev eth0 append")[0]).add_command == "append"
    # no dev and no gateway: the instance's interface; keepalived's universe scope unless local
    assert io.route_spec(read(route, "198.51.100.0/24 no_track")[0], "eth1").devs == (("oif", "eth1"),)
    assert dict(io.route_spec(read(route, "198.51.100.0/24 dev eth0")[0]).kw)["scope"] == 0
    assert dict(io.route_spec(read(route, "local 198.51.100.0/24 dev eth0")[0]).kw)["scope"] == 254
    six = dict(io.route_spec(read(route, "2001:db8:1::/64 dev eth0 pref high expires 10")[0]).kw)
    assert six["expires"] == (10).to_bytes(4, sys.byteorder)
    assert (six["family"], six["dst"], six["dst_len"], six["pref"]) == (
        socket.AF_INET6,
        "2001:db8:1::",
        64,
        1,
    )
    assert "gateway" not in dict(io.route_spec(read(route, "blackhole 198.51.100.0/24")[0], "eth1").kw)
    assert io.route_spec(read(route, "blackhole 198.51.100.0/24")[0], "eth1").devs == ()


def test_rule_netlink_arguments_come_from_the_fields():
    got, _ = read(
        rule,
        "not from 192.0.2.12 to 198.51.100.0/24 table 100 priority 50 fwmark 0x10/0xff iif eth0 oif eth1"
        " tos 0x10 uidrange 10-20 ipproto udp sport 10-20 dport 30-40 suppress_prefixlength 0"
        " suppress_ifgroup 3 realms 30/20 protocol 99 no_track",
    )
    assert dict(io.rule_spec(got).kw) == {
        "family": socket.AF_INET, "priority": 50, "action": 1, "protocol": 99, "table": 100,
        "src": "192.0.2.12", "src_len": 32, "dst": "198.51.100.0", "dst_len": 24, "flags": 2,
        "fwmark": 16, "fwmask": 255, "iifname": "eth0", "oifname": "eth1", "tos": 16,
        "flow": (30 << 16) | 20, "suppress_prefixlen": 0, "suppress_ifgroup": 3, "ip_proto": 17,
        "uid_range": "10:20", "sport_range": "10:20", "dport_range": "30:40",
    }  # fmt: skip
    goto = dict(io.rule_spec(read(rule, "from 192.0.2.1 goto 10 priority 5")[0]).kw)
    assert (goto["action"], goto["goto"], "table" in goto) == (2, 10, False)
    l3 = dict(io.rule_spec(read(rule, "to 192.0.2.1 l3mdev priority 5")[0]).kw)
    assert (l3["action"], l3["l3mdev"], "table" in l3) == (1, 1, False)
    assert dict(io.rule_spec(read(rule, "from 192.0.2.1 nop priority 5")[0]).kw)["action"] == 3


def test_dump_json_shows_typed_fields(tmp_path):
    p = tmp_path / "k.conf"
    p.write_text(
        "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n"
        " virtual_ipaddress {\n  192.0.2.10/24\n }\n"
        " virtual_routes {\n  198.51.100.0/24 via 192.0.2.254 dev eth0 table 100 metric 7 mtu lock 1300\n }\n"
        " virtual_rules {\n  from 192.0.2.10 table 100 priority 50 sport 10-20\n }\n}\n"
    )
    cfg, problems, _ = check(str(p))
    assert cfg is not None, problems
    inst = json.loads(cfg.to_json())["instances"][0]
    (rt,) = inst["virtual_routes"]
    assert {k: rt[k] for k in ("destination", "via", "dev", "table", "metric", "protocol", "type")} == {
        "destination": "198.51.100.0/24", "via": "192.0.2.254", "dev": "eth0", "table": 100, "metric": 7,
        "protocol": 18, "type": "unicast",
    }  # fmt: skip
    assert rt["metrics"] == [{"name": "mtu", "value": 1300, "lock": True}]
    (ru,) = inst["virtual_rules"]
    assert (ru["src"], ru["table"], ru["priority"], ru["sport"], ru["action"]) == (
        "192.0.2.10/32",
        100,
        50,
        [10, 20],
        "table",
    )
    assert "words" not in rt and "words" not in ru


def test_iproute2_names_read_the_files_and_their_d_directories(tmp_path, monkeypatch):
    from fastvrrp.config import iproute2_names

    (tmp_path / "rt_tables").write_text("# comment\n200\tisp1\n0x10 isp2 # hex\nbad line\n")
    (tmp_path / "rt_tables.d").mkdir()
    (tmp_path / "rt_tables.d" / "extra.conf").write_text("201 isp3\n")
    (tmp_path / "rt_tables.d" / "ignored.txt").write_text("202 isp4\n")
    monkeypatch.setattr(iproute2_names, "IPROUTE2_DIR", str(tmp_path))
    iproute2_names.names.cache_clear()
    try:
        words = ("isp1", "isp2", "isp3", "isp4")
        assert [iproute2_names.number("rt_tables", w, 2**32 - 1) for w in words] == [200, 16, 201, None]
        assert iproute2_names.number("rt_tables", "main", 2**32 - 1) == 254  # built in
        assert iproute2_names.number("rt_protos", "keepalived", 255) == 18  # no file: the kernel's names
        assert iproute2_names.number("rt_scopes", "300", 255) is None
        got, r = read(route, "198.51.100.0/24 dev eth0 table isp3")
        assert got.table == 201 and not r.adjustments
    finally:
        iproute2_names.names.cache_clear()


def test_what_fastvrrp_does_not_do_is_noted(tmp_path):
    """A tracked virtual route or rule (keepalived leaves MASTER when it is deleted) and the track_group of a
    static line are notes, once per feature; a track_group must exist, as for static addresses."""
    p = tmp_path / "k.conf"
    p.write_text(
        "track_group G {\n group {\n  A\n }\n}\n"
        "static_routes {\n 198.51.100.0/24 dev eth0 track_group G\n}\n"
        "static_ipaddress {\n 192.0.2.99/24 dev eth0 track_group G\n}\n"
        "static_rules {\n from 192.0.2.1 table 1 priority 5 track_group G\n}\n"
        "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n"
        " virtual_ipaddress {\n  192.0.2.10/24\n }\n"
        " virtual_routes {\n  203.0.113.0/24 dev eth0\n  203.0.114.0/24 dev eth0 no_track\n }\n"
        " virtual_rules {\n  from 192.0.2.10 table 100 priority 9\n }\n}\n"
    )
    cfg, problems, unsupported = check(str(p))
    assert cfg is not None, problems
    assert [(u.line, u.message) for u in unsupported] == [
        (7, "'198.51.100.0/24': track_group of static addresses, routes and rules not implemented by "
            "fastvrrp, ignored (and 2 more places)"),
        (22, "'203.0.113.0/24': tracking of virtual routes and rules (keepalived leaves MASTER when one is"
             " deleted) not implemented by fastvrrp, ignored (and 1 more place)"),
    ]  # fmt: skip
    p.write_text("static_routes {\n 198.51.100.0/24 dev eth0 track_group NOPE\n}\n")
    cfg, problems, _ = check(str(p))
    assert cfg is None and [(x.line, x.message) for x in problems] == [(2, "no track_group 'NOPE'")]


# --- encap, vrf, ttl-propagate, fastopen_no_cookie: read as keepalived 2.2.7 reads them -------------------
@pytest.mark.parametrize(
    ("line", "want"),
    [
        ("198.51.100.0/24 dev eth0 encap mpls 100", {"encap": RouteEncap("mpls", labels=(100,))}),
        (
            "198.51.100.0/24 dev eth0 encap mpls 100/200 metric 5",
            {"encap": RouteEncap("mpls", labels=(100, 200)), "metric": 5},
        ),
        (
            "198.51.100.0/24 dev eth0 encap ip id 5 dst 192.0.2.9 src 192.0.2.1 tos 16 ttl 7 flags 1 "
            "metric 9",
            {
                "encap": RouteEncap(
                    "ip", id=5, dst=ip("192.0.2.9"), src=ip("192.0.2.1"), ttl=7, tos=16, flags=1
                ),
                "metric": 9,
            },
        ),
        (
            "2001:db8:5::/64 dev eth0 encap ip6 dst 2001:db8::9 hoplimit 3 tc 8",
            {"encap": RouteEncap("ip6", dst=ip("2001:db8::9"), ttl=3, tos=8)},
        ),
        ("198.51.100.0/24 dev eth0 vrf blue", {"vrf": "blue", "table": 254}),
        ("198.51.100.0/24 dev eth0 ttl-propagate enabled", {"ttl_propagate": True}),
        ("198.51.100.0/24 dev eth0 ttl-propagate disabled", {"ttl_propagate": False}),
        (
            "198.51.100.0/24 dev eth0 fastopen_no_cookie 1",
            {"metrics": (RouteMetric("fastopen_no_cookie", 1),)},
        ),
    ],
)
def test_tunnel_vrf_and_tcp_keywords_read(line, want):
    got, r = read(route, line)
    assert got is not None and not r.problems and not r.adjustments, r.problems + r.adjustments
    assert fields(got, want) == want


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (
            "198.51.100.0/24 dev eth0 encap ila 2001:0:0:1",
            "ILA encapsulation is not implemented by fastvrrp 'ila'",
        ),
        ("198.51.100.0/24 dev eth0 encap gre 1", "unknown encap type 'gre'"),
        ("198.51.100.0/24 dev eth0 encap ip ttl 5", "address or id missing for ip encapsulation"),
        (
            "198.51.100.0/24 dev eth0 encap ip dst 2001:db8::1",
            "2001:db8::1 is not valid for ip encapsulation",
        ),
        ("198.51.100.0/24 dev eth0 encap mpls 1048576", "MPLS label 1048576 out of range [0, 1048575]"),
        ("198.51.100.0/24 dev eth0 fastopen_no_cookie 2", "fastopen_no_cookie value 2 out of range [0, 1]"),
    ],
)
def test_tunnel_and_tcp_keywords_skipped_as_keepalived_skips(line, why):
    got, r = read(route, line)
    assert got is None and not r.problems
    (a,) = r.adjustments
    assert (a.file, a.line) == ("k.conf", 7) and a.message.endswith(why), a.message


def test_ttl_propagate_other_value_is_disabled_as_keepalived_sends_it():
    # keepalived 2.2.7: "ttl-propagate value on not recognised", and the route carries "disabled"
    got, r = read(route, "198.51.100.0/24 dev eth0 ttl-propagate on")
    assert got is not None and got.ttl_propagate is False and not r.problems
    assert [a.message for a in r.adjustments] == [
        "ttl-propagate value 'on' is not enabled or disabled: disabled, as keepalived does"
    ]


def test_tunnel_vrf_and_tcp_keywords_become_netlink_attributes():
    spec = io.route_spec(read(route, "198.51.100.0/24 dev eth0 encap mpls 100/200")[0])
    assert dict(spec.kw)["encap"] == {"type": "mpls", "labels": [100, 200]} and spec.nlas == ()
    spec = io.route_spec(read(route, "198.51.100.0/24 dev eth0 encap ip id 5 dst 192.0.2.9 ttl 7 flags 1")[0])
    assert spec.nlas == (
        ("RTA_ENCAP_TYPE", 2),
        (
            "RTA_ENCAP",
            {
                "attrs": [
                    ["LWTUNNEL_IP_ID", 5],
                    ["LWTUNNEL_IP_DST", "192.0.2.9"],
                    ["LWTUNNEL_IP_TTL", 7],
                    ["LWTUNNEL_IP_FLAGS", 1],
                ]
            },
        ),
    )
    spec = io.route_spec(read(route, "2001:db8:5::/64 dev eth0 encap ip6 dst 2001:db8::9 hoplimit 3 tc 8")[0])
    assert spec.nlas[0] == ("RTA_ENCAP_TYPE", 4)
    assert spec.nlas[1][1]["attrs"] == [
        ["LWTUNNEL_IP6_DST", "2001:db8::9"],
        ["LWTUNNEL_IP6_HOPLIMIT", 3],
        ["LWTUNNEL_IP6_TC", 8],
    ]
    spec = io.route_spec(
        read(route, "198.51.100.0/24 dev eth0 ttl-propagate enabled fastopen_no_cookie 1")[0]
    )
    assert spec.nlas == (("RTA_TTL_PROPAGATE", 1),)
    assert dict(spec.kw)["metrics"] == {"fastopen_no_cookie": 1}
    assert io.route_spec(read(route, "198.51.100.0/24 dev eth0 vrf blue")[0]).vrf == "blue"
