"""accept / no_accept in the running daemon: a non-owner master with no_accept drops IP traffic to its VIP
(nftables) while ARP still answers, accept answers, and the address owner answers even with no_accept."""

from __future__ import annotations

import pytest

from fastvrrp.lab.namespaces import ip_json, wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

A = 100  # ms
VIP = "192.0.2.100"


def pings(lab, ns: str, vip: str) -> bool:
    return lab.sh(ns, f"ping -c 1 -W 1 {vip}", check=False).count(" bytes from ") > 0


def test_no_accept_master_drops_traffic_to_its_vip_accept_answers(lab):
    lan = Lan(lab, routers=1, client=True)
    no_acc = InstanceSpec(vrid=51, advert_int_ms=A, vips=(f"{VIP}/24",), name="NA", extra=("no_accept",))
    acc = InstanceSpec(vrid=52, advert_int_ms=A, vips=("192.0.2.101/24",), name="AC", extra=("accept",))
    r = lan.router(1, "fastvrrp", [no_acc, acc])
    r.start()
    r.wait_all("MASTER", timeout=10)
    wait_for(lambda: r.has_vip(VIP) and r.has_vip("192.0.2.101"), timeout=3, what="both VIPs")
    # accept mode: the VIP answers (a retry covers ARP resolution on a loaded machine)
    wait_for(lambda: pings(lab, lan.client, "192.0.2.101"), timeout=5, what="the accept VIP answering")
    assert not pings(lab, lan.client, VIP)  # RFC 5798 6.4.3: not the owner, no accept: dropped
    # ARP still answers for it (only IP to the VIP is dropped).
    assert ip_json(lab, lan.client, f"neigh show {VIP}")[0].get("lladdr")
    assert "fastvrrp" in lab.sh(r.ns, "nft list tables")
    assert r.stop() == 0
    assert "fastvrrp" not in lab.sh(r.ns, "nft list tables")


def test_address_owner_accepts_even_with_no_accept(lab):
    lan = Lan(lab, routers=1, client=True)
    owner = InstanceSpec(
        vrid=51, priority=255, state="MASTER", advert_int_ms=A, vips=(f"{VIP}/24",), extra=("no_accept",)
    )
    r = lan.router(1, "fastvrrp", [owner])
    r.start()
    r.wait_state("MASTER", timeout=10)
    wait_for(lambda: pings(lab, lan.client, VIP), timeout=5, what="the owner's VIP answering")
    assert r.stop() == 0
