"""keepalived's top-level `net_namespace NAME`, with keepalived 2.2.7 as the oracle: each daemon is
started in a namespace of its own with no VRRP interface, and the file sends it into its router's
namespace, where its instance becomes master and puts its VIP; nothing lands where it was started. -s on
the command line wins over the file, as keepalived's does."""

from __future__ import annotations

import pytest

from fastvrrp.lab.namespaces import ip_json
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

A = 100  # ms


def started_elsewhere(r, home: str) -> None:
    """Start router `r` from namespace `home`; its file names the router's namespace."""
    r.blocks_before = f"net_namespace {r.ns}\n"  # a top-level keyword (inside global_defs: unknown)
    ns, r.ns = r.ns, home
    try:
        r.start()
    finally:
        r.ns = ns


def addresses(lab, ns: str) -> list[str]:
    return [a["local"] for link in ip_json(lab, ns, "addr show") for a in link.get("addr_info", [])]


def test_net_namespace_runs_the_daemon_in_that_namespace_as_keepalived(lab, keepalived_bin):
    lan = Lan(lab, routers=2, client=False)
    pair = []
    for i, kind in enumerate(("keepalived", "fastvrrp"), 1):
        spec = InstanceSpec(vrid=50 + i, priority=150, advert_int_ms=A, vips=(f"192.0.2.{100 + i}/24",))
        r = lan.router(i, kind, [spec], keepalived_bin=keepalived_bin)
        # the namespace it is started in could run it too (an eth0 with an address): a daemon that ignored
        # net_namespace would become master there
        home = lab.ns(f"home{i}")
        lab.veth(home, "eth0", home, "eth1")
        lab.sh(home, "ip link set lo up")
        lab.addr(home, "eth0", f"192.0.2.{240 + i}/24")
        started_elsewhere(r, home)
        pair.append((r, home))
    for r, home in pair:
        r.wait_state("MASTER", timeout=15)
        vip = r.instances[0].vip_addrs[0]
        assert r.has_vip(vip), r.kind
        assert vip not in addresses(lab, home), r.kind
    for r, _home in pair:
        assert r.stop() == 0
        assert not r.has_vip(r.instances[0].vip_addrs[0]), r.kind


def test_the_command_line_namespace_wins_over_the_file(lab):
    lan = Lan(lab, routers=1, client=False)
    spec = InstanceSpec(vrid=51, priority=150, advert_int_ms=A, vips=("192.0.2.101/24",))
    r = lan.router(1, "fastvrrp", [spec])
    decoy = lab.ns("decoy")
    r.blocks_before = f"net_namespace {decoy}\n"
    r.extra_args = ["-s", r.ns]
    r.start()
    r.wait_state("MASTER", timeout=15)
    assert r.has_vip("192.0.2.101") and "192.0.2.101" not in addresses(lab, decoy)
    assert r.stop() == 0
