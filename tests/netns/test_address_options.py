"""The options of an address line (keepalived.conf(5): `peer`, `brd + / -`, `noprefixroute`, `home`,
`mngtmpaddr`, `-nodad`, `preferred_lft`, and the /128 default of an IPv6 VIP), with keepalived 2.2.7 as the
oracle: a keepalived and a fastvrrp master, each of its own VRID with the same lines (a host number of its
own in each address), must leave the same addresses in the kernel, as `ip -j addr` shows them."""

from __future__ import annotations

import json

import pytest

from fastvrrp.lab.namespaces import ip_json, wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

A = 100  # ms
HOSTS = {"keepalived": 11, "fastvrrp": 12}
LINES = (
    "192.0.2.{h}/24 dev eth0 noprefixroute",
    "198.51.100.{h}/32 peer 198.51.100.200/30 brd + dev eth0",  # a peer with a prefix: no peer, no brd
    "198.51.100.{h}1 peer 198.51.100.201 dev eth0",
    "198.51.100.2{h}/24 peer 198.51.100.202 dev eth0",  # with a peer, the prefix is the full length
    "203.0.113.{h}/24 brd - dev eth0",  # the host bits cleared: the network's address
    "203.0.113.1{h}/32 brd + dev eth0",  # no broadcast past /30
    "2001:db8:5::{h}/64 dev eth0 preferred_lft 0",
    "2001:db8:6::{h}/64 dev eth0 -nodad",  # duplicate address detection runs
    "2001:db8:7::{h}/64 dev eth0 mngtmpaddr",
    "2001:db8:8::{h}/64 dev eth0 preferred_lft 100",
    "2001:db8:9::{h}/64 dev eth0 home",
    "2001:db8:a::{h}/64 dev eth0 noprefixroute",
    "2001:db8:b::{h}/128 dev eth0",  # a /128 that says nothing: deprecated
    "2001:db8:c::{h}/128 dev eth0 preferred_lft forever",
    "2001:db8:d::{h} peer 2001:db8:d::99/128 dev eth0",  # no peer: a /128 that says nothing
    "2001:db8:e::{h} peer 2001:db8:e::99 dev eth0 preferred_lft forever",
)
VIPS = {"keepalived": "192.0.2.101", "fastvrrp": "192.0.2.102"}


def addresses(lab, r) -> list[dict]:
    """eth0's addresses but the router's own, its link-local and its VIP, as `ip -j` shows them, with this
    router's host number replaced by a placeholder and the lifetimes reduced to whether they run out."""
    own = {r.addr4, r.addr6, VIPS[r.kind]}
    rows = []
    for link in ip_json(lab, r.ns, "addr show dev eth0"):
        for a in link.get("addr_info", []):
            if a["local"] in own or a["local"].startswith("fe80:"):
                continue
            a["preferred_life_time"] = "forever" if a["preferred_life_time"] == 4294967295 else "limited"
            a["valid_life_time"] = "forever" if a["valid_life_time"] == 4294967295 else "limited"
            text = json.dumps(a, sort_keys=True)
            for line in LINES:
                mine = line.format(h=HOSTS[r.kind]).split()[0].split("/")[0]
                text = text.replace(f'"{mine}"', f'"{line.split()[0].split("/")[0]}"')
            rows.append(json.loads(text))
    return sorted(rows, key=lambda a: json.dumps(a, sort_keys=True))


def test_address_options_as_keepalived_adds_them(lab, keepalived_bin):
    lan = Lan(lab, routers=2, client=False)
    routers = []
    for i, (kind, vrid) in enumerate((("keepalived", 51), ("fastvrrp", 52)), 1):
        excluded = ("virtual_ipaddress_excluded {", *(x.format(h=HOSTS[kind]) for x in LINES), "}")
        spec = InstanceSpec(
            vrid=vrid, priority=150, advert_int_ms=A, vips=(f"{VIPS[kind]}/24",), extra=excluded
        )
        routers.append(lan.router(i, kind, [spec], keepalived_bin=keepalived_bin))
    ka, fv = routers
    for r in routers:
        r.start()
    for r in routers:
        r.wait_state("MASTER", timeout=15)

    def settled(r) -> bool:
        rows = addresses(lab, r)
        return len(rows) == len(LINES) and not any(a.get("tentative") for a in rows)

    wait_for(lambda: settled(ka) and settled(fv), timeout=15, what="both routers' addresses, DAD done")
    got, want = addresses(lab, fv), addresses(lab, ka)
    assert got == want, "\n".join(
        json.dumps(x, sort_keys=True) for x in ["fastvrrp", *got, "keepalived", *want]
    )
    by = {a["local"]: a for a in got}
    assert by["192.0.2.{h}"].get("noprefixroute") and by["2001:db8:a::{h}"].get("noprefixroute")
    assert [(a, row["address"], row["prefixlen"]) for a, row in sorted(by.items()) if "address" in row] == [
        ("198.51.100.2{h}", "198.51.100.202", 32),
        ("198.51.100.{h}1", "198.51.100.201", 32),
        ("2001:db8:e::{h}", "2001:db8:e::99", 128),
    ]
    assert by["203.0.113.{h}"]["broadcast"] == "203.0.113.0" and "broadcast" not in by["203.0.113.1{h}"]
    deprecated = sorted(a for a, row in by.items() if row.get("deprecated"))
    assert deprecated == ["2001:db8:5::{h}", "2001:db8:b::{h}", "2001:db8:d::{h}"]
    assert not by["2001:db8:6::{h}"].get("nodad") and by["2001:db8:7::{h}"].get("nodad")
    assert by["2001:db8:8::{h}"]["preferred_life_time"] == "limited"
    for r in routers:
        assert r.stop() == 0
    assert addresses(lab, fv) == []
    # keepalived 2.2.7 leaves its IPv4 addresses with a peer behind: its removal names the address itself
    # where the kernel matches the peer (docs/keepalived-config.md#deviations)
    assert all(row["family"] == "inet" and "address" in row for row in addresses(lab, ka))
