"""static_ipaddress in the running daemon, with keepalived 2.2.7 run beside it as the oracle: the same lines
give the same addresses in the kernel (labels, scopes, broadcast, IPv6, a line without `dev` on the default
interface, an address that was already there), a reload removes and adds the difference, and a stop removes
them, a stop with -V (which leaves the VIPs) included, together with the static routes."""

from __future__ import annotations

import signal

import pytest

from fastvrrp.lab.namespaces import ip_json, wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

A = 100  # ms
VIPS = {51: "192.0.2.101", 52: "192.0.2.102"}
PRESENT = "192.0.2.69/24"  # on eth0 before the daemon starts; a static line too: removed at stop all the same

STATIC = """static_ipaddress {
    192.0.2.60/24 dev eth0
    192.0.2.61/24 dev eth0 label eth0:st
    198.51.100.61/24 dev eth0 scope link
    203.0.113.61/24 brd + dev eth0
    203.0.113.130/25 brd 203.0.113.200 dev eth0
    2001:db8:61::1/64 dev eth0
    192.0.2.62/24
    192.0.2.69/24 dev eth0
}
static_routes {
    198.18.61.0/24 via 192.0.2.254 dev eth0 table 100
    198.18.62.0/24 dev eth0 src 203.0.113.61 table 100
}
"""

RELOADED = (
    STATIC.replace("    192.0.2.60/24 dev eth0\n", "")  # dropped
    .replace("198.51.100.61/24 dev eth0 scope link", "198.51.100.61/24 dev eth0 scope host")  # changed
    .replace("    192.0.2.62/24\n", "    192.0.2.62/24\n    2001:db8:62::1/64 dev eth0\n")  # added
    # changed: removed and added again; the route using it as its source stays
    .replace("203.0.113.61/24 brd + dev eth0", "203.0.113.61/24 brd - dev eth0")
)


def statics(lab, r) -> list[dict]:
    """eth0's addresses but the router's own, its link-local and its VIP, as `ip -j` shows them (lifetimes
    aside), in a stable order."""
    own = {r.addr4, r.addr6, *VIPS.values()}
    rows = []
    for link in ip_json(lab, r.ns, "addr show dev eth0"):
        for a in link.get("addr_info", []):
            if a["local"] in own or a["local"].startswith("fe80:"):
                continue
            rows.append({k: v for k, v in a.items() if not k.endswith("_life_time")})
    return sorted(rows, key=lambda a: (a["family"], a["local"]))


def table100(lab, r) -> list[str]:
    return sorted(x["dst"] for x in ip_json(lab, r.ns, "route show table 100"))


def pair(lab, keepalived_bin, *, leave: bool):
    lan = Lan(lab, routers=2, client=False)
    specs = {
        vrid: InstanceSpec(vrid=vrid, priority=150, advert_int_ms=A, vips=(f"{vip}/24",))
        for vrid, vip in VIPS.items()
    }
    ka = lan.router(1, "keepalived", [specs[51]], keepalived_bin=keepalived_bin)
    fv = lan.router(2, "fastvrrp", [specs[52]])
    for r in (ka, fv):
        lab.sh(r.ns, f"ip addr add {PRESENT} dev eth0")
        r.blocks_before = STATIC
    if leave:
        ka.keepalived_args = ["-V"]
        fv.extra_args = ["-V"]
    return ka, fv


def settle(lab, ka, fv, count: int, mask: str = "") -> list[dict]:
    """Wait for keepalived's static addresses (`count` of them), then for fastvrrp's to be the same (but the
    broadcast address of `mask`); fastvrrp's."""

    def seen(r) -> list[dict]:
        return [
            {k: v for k, v in a.items() if a["local"] != mask or k != "broadcast"} for a in statics(lab, r)
        ]

    wait_for(lambda: len(statics(lab, ka)) == count, timeout=15, what="keepalived's static addresses")
    try:
        wait_for(lambda: seen(fv) == seen(ka), timeout=10, what="fastvrrp's as keepalived's")
    except TimeoutError:
        pass  # the assertion shows the difference
    assert seen(fv) == seen(ka)
    return statics(lab, fv)


def test_static_addresses_as_keepalived_adds_reloads_and_removes_them(lab, keepalived_bin):
    ka, fv = pair(lab, keepalived_bin, leave=False)
    for r in (ka, fv):
        r.start()
    got = settle(lab, ka, fv, 8)
    by_addr = {a["local"]: a for a in got}
    assert by_addr["192.0.2.61"]["label"] == "eth0:st"
    assert by_addr["198.51.100.61"]["scope"] == "link"
    assert by_addr["203.0.113.61"]["broadcast"] == "203.0.113.255"
    assert by_addr["203.0.113.130"]["broadcast"] == "203.0.113.200"
    assert by_addr["192.0.2.62"]["label"] == "eth0"  # no dev: the default interface
    assert by_addr["2001:db8:61::1"]["prefixlen"] == 64
    for r in (ka, fv):
        r.wait_state("MASTER", timeout=15)
        r.blocks_before = RELOADED
        r.write_config()
        r.proc.send_signal(signal.SIGHUP)
    wait_for(
        lambda: (
            "192.0.2.60" not in {a["local"] for a in statics(lab, ka)}
            and "2001:db8:62::1" in {a["local"] for a in statics(lab, ka)}
        ),
        timeout=15,
        what="keepalived's reload",
    )
    # keepalived 2.2.7 keeps an address whose broadcast alone changed as it was; fastvrrp applies the change
    # (docs/keepalived-config.md#static-addresses)
    got = settle(lab, ka, fv, 8, mask="203.0.113.61")
    by_addr = {a["local"]: a for a in got}
    assert "192.0.2.60" not in by_addr and "2001:db8:62::1" in by_addr
    assert by_addr["198.51.100.61"]["scope"] == "host"
    assert "reload refused" not in fv.log()
    assert by_addr["203.0.113.61"]["broadcast"] == "203.0.113.0"
    print("\nkeepalived's table 100 after the reload:", table100(lab, ka))
    assert table100(lab, fv) == ["198.18.61.0/24", "198.18.62.0/24"]
    for r in (ka, fv):
        assert r.stop() == 0
        assert statics(lab, r) == [], f"{r.kind} left static addresses"
        assert table100(lab, r) == []
        assert not r.has_vip(VIPS[51 if r is ka else 52])


def test_a_stop_with_dont_release_vrrp_keeps_the_vips_and_removes_the_static_ones(lab, keepalived_bin):
    ka, fv = pair(lab, keepalived_bin, leave=True)
    for r in (ka, fv):
        r.start()
    settle(lab, ka, fv, 8)
    for r, vrid in ((ka, 51), (fv, 52)):
        r.wait_state("MASTER", timeout=15)
        wait_for(lambda r=r, vrid=vrid: r.has_vip(VIPS[vrid]), timeout=10, what=f"{r.kind}'s VIP")
        want = ["198.18.61.0/24", "198.18.62.0/24"]
        wait_for(lambda r=r, want=want: table100(lab, r) == want, timeout=10, what=f"{r.kind}'s routes")
    for r, vrid in ((ka, 51), (fv, 52)):
        assert r.stop() == 0
        assert r.has_vip(VIPS[vrid]), f"{r.kind} -V left its VIP"
        assert statics(lab, r) == [], f"{r.kind} -V left static addresses"
        assert table100(lab, r) == [], f"{r.kind} -V left the static route"


def test_a_refused_start_leaves_no_static_address_or_route(lab):
    """A start the system refuses (here: an instance on an interface that is not there) after the static
    addresses and routes went in takes them out again; a static address with no interface to go on refuses
    the start before anything is added."""
    lan = Lan(lab, routers=1, client=False)
    bad = InstanceSpec(vrid=51, priority=150, advert_int_ms=A, vips=("192.0.2.101/24",), interface="eth9")
    r = lan.router(1, "fastvrrp", [bad])
    r.blocks_before = STATIC
    r.start()
    assert r.proc.popen.wait(30) == 1
    assert statics(lab, r) == [] and table100(lab, r) == []
    assert "192.0.2.69" not in {a["local"] for a in statics(lab, r)}  # even the one that was there before
    r.instances = [InstanceSpec(vrid=51, priority=150, advert_int_ms=A, vips=("192.0.2.101/24",))]
    r.global_lines = ["default_interface nosuch9"]
    r.start()
    assert r.proc.popen.wait(30) == 1
    assert "static_ipaddress: address 192.0.2.62 names no interface and nosuch9 is not here" in r.log()
    assert statics(lab, r) == [] and table100(lab, r) == []
