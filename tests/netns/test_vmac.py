"""use_vmac and vmac_xmit_base in the running daemon: the macvlan interface, its sysctls set and restored,
adverts and gratuitous ARPs from the virtual MAC (or adverts from the base interface with vmac_xmit_base),
and the client reaching the VIP at the virtual MAC."""

from __future__ import annotations

import time

import pytest

from fastvrrp.lab.namespaces import ip_json, wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

A = 100  # ms
VIP = "192.0.2.100"


def spec(prio: int, *extra: str, vrid: int = 51, vip: str = VIP, adv: int = A) -> InstanceSpec:
    return InstanceSpec(vrid=vrid, priority=prio, advert_int_ms=adv, vips=(f"{vip}/24",), extra=extra)


VMAC = "00:00:5e:00:01:33"  # RFC 5798 7.3: 00-00-5E-00-01-{VRID}, VRID 51


def sysctls(lab, ns: str) -> dict[str, str]:
    keys = (
        "net.ipv4.conf.eth0.arp_ignore",
        "net.ipv4.conf.eth0.arp_filter",
        "net.ipv4.conf.eth0.arp_announce",
        "net.ipv4.igmp_link_local_mcast_reports",
    )
    return {k: lab.sh(ns, f"sysctl -n {k}").strip() for k in keys}


def test_use_vmac_macvlan_adverts_garps_and_sysctls_restored(lab):
    lan = Lan(lab, routers=2, client=True)
    m = lan.router(1, "fastvrrp", [spec(200, "use_vmac")])
    b = lan.router(2, "fastvrrp", [spec(100, "use_vmac")])
    before = sysctls(lab, m.ns)
    assert before["net.ipv4.conf.eth0.arp_ignore"] == "0"
    with lan.tap() as tap:
        m.start()
        m.wait_state("MASTER", timeout=10)
        b.start()
        b.wait_state("BACKUP", timeout=10)
        link = ip_json(lab, m.ns, "-d link show vrrp.51")[0]
        assert link["address"] == VMAC and link["linkinfo"]["info_kind"] == "macvlan"
        assert link["linkinfo"]["info_data"]["mode"] == "private"
        addrs = {a["local"] for a in ip_json(lab, m.ns, "addr show dev vrrp.51")[0]["addr_info"]}
        assert addrs == {VIP}  # no EUI-64 link-local from the VMAC (RFC 5798 7.4)
        assert sysctls(lab, m.ns) == {
            "net.ipv4.conf.eth0.arp_ignore": "1",
            "net.ipv4.conf.eth0.arp_filter": "1",
            "net.ipv4.conf.eth0.arp_announce": "2",
            "net.ipv4.igmp_link_local_mcast_reports": "0",
        }
        assert lab.sh(m.ns, "sysctl -n net.ipv4.conf.vrrp/51.arp_ignore").strip() == "1"
        # The master's adverts and gratuitous ARPs come from the VMAC (RFC 5798 7.3, 6.4.1).
        wait_for(lambda: len(tap.adverts(51, m.addr4)) >= 3, timeout=3, what="adverts")
        assert {e.src_mac for e in tap.adverts(51, m.addr4)} == {VMAC}
        garp = wait_for(lambda: tap.first_garp(VIP), timeout=3, what="GARP")
        assert garp.src_mac == VMAC
        # The client reaches the VIP at the VMAC (the parent does not answer ARP for it: arp_ignore=1).
        lab.sh(lan.client, f"ping -c 1 -W 2 {VIP}")
        neigh = ip_json(lab, lan.client, f"neigh show {VIP}")
        assert neigh and neigh[0]["lladdr"] == VMAC
        t = time.time()
        assert m.stop() == 0
        b.wait_state("MASTER", timeout=5)
        first = wait_for(lambda: tap.first_advert_from(b.addr4, 51, after=t), timeout=3, what="r2's advert")
        assert first.src_mac == VMAC  # the same virtual MAC from the other router
    assert ip_json(lab, m.ns, "link show") and "vrrp.51" not in lab.sh(m.ns, "ip -o link show")
    assert sysctls(lab, m.ns) == before
    assert b.stop() == 0


def test_vmac_xmit_base_adverts_from_the_base_interface(lab):
    """vmac_xmit_base: the VIP and its gratuitous ARPs stay on the VMAC; adverts use the base interface."""
    lan = Lan(lab, routers=2, client=False)
    m = lan.router(1, "fastvrrp", [spec(200, "use_vmac", "vmac_xmit_base")])
    b = lan.router(2, "fastvrrp", [spec(100, "use_vmac", "vmac_xmit_base")])
    base_mac = ip_json(lab, m.ns, "link show eth0")[0]["address"]
    with lan.tap() as tap:
        m.start()
        m.wait_state("MASTER", timeout=10)
        b.start()
        b.wait_state("BACKUP", timeout=10)
        wait_for(lambda: len(tap.adverts(51, m.addr4)) >= 3, timeout=3, what="adverts")
        assert {e.src_mac for e in tap.adverts(51, m.addr4)} == {base_mac}
        assert wait_for(lambda: tap.first_garp(VIP), timeout=3, what="GARP").src_mac == VMAC
        addrs = {a["local"] for a in ip_json(lab, m.ns, "addr show dev vrrp.51")[0]["addr_info"]}
        assert addrs == {VIP}
        assert m.stop() == 0
        b.wait_state("MASTER", timeout=5)  # the backup heard the base-interface adverts, and the priority 0
