"""Sync groups, virtual routes and rules, use_vmac, no_accept, lower_prio_no_advert and
higher_prio_send_advert in the running daemon: state in the namespaces through netlink (`ip -j`),
behaviour on the wire."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from fastvrrp import _wire
from fastvrrp.io.nsexec import call_in_netns
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan
from fastvrrp.lab.wiretap import ADVERT

pytestmark = pytest.mark.netns

A = 100  # ms
VIP = "192.0.2.100"
VIP2 = "198.51.100.1"
GROUP = "vrrp_sync_group G {\n    group {\n        VI_51\n        VI_52\n    }\n}\n"


def spec(prio: int, *extra: str, vrid: int = 51, vip: str = VIP, adv: int = A) -> InstanceSpec:
    return InstanceSpec(vrid=vrid, priority=prio, advert_int_ms=adv, vips=(f"{vip}/24",), extra=extra)


def ip_json(lab, ns: str, cmd: str) -> list:
    try:
        return json.loads(lab.sh(ns, f"ip -j {cmd}", check=False) or "[]")
    except json.JSONDecodeError:
        return []  # `ip -j route show table N` of an absent table prints "[" and an error


# --- sync groups --------------------------------------------------------------------------------------------


def test_sync_group_members_fault_and_fail_over_together(lab):
    lan = Lan(lab, routers=2, client=False)
    path = os.path.join(lab.workdir, "vi1.fault")
    track = ("track_file {", "    tf", "}")
    m = lan.router(1, "fastvrrp", [spec(200, *track), spec(200, vrid=52, vip=VIP2)])
    m.blocks = GROUP + f"vrrp_track_file tf {{\n    file {path}\n    weight 0\n}}\n"
    fifo = os.path.join(lab.workdir, "m.fifo")
    m.global_lines = [f"vrrp_notify_fifo {fifo}"]
    b = lan.router(2, "fastvrrp", [spec(100), spec(100, vrid=52, vip=VIP2)])
    b.blocks = GROUP
    with lan.tap() as tap:
        m.start()
        wait_for(lambda: os.path.exists(fifo), timeout=10, what="the notify FIFO")
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        m.wait_all("MASTER", timeout=10)
        b.start()
        b.wait_all("BACKUP", timeout=10)
        t = time.time()
        with open(path, "w") as f:
            f.write("1\n")  # only VI_51's own tracker fails ...
        m.wait_state("FAULT", "VI_51", timeout=5)
        m.wait_state("FAULT", "VI_52", timeout=5)  # ... and the group takes VI_52 with it
        b.wait_all("MASTER", timeout=5)
        # VI_52 resigned with priority 0 (RFC 5798 6.4.3 S10), so the peer took it after Skew_Time only.
        zero = wait_for(
            lambda: next((e for e in tap.adverts(52, m.addr4, t) if e.priority == 0), None), 3, what="prio 0"
        )
        first = wait_for(lambda: tap.first_advert_from(b.addr4, 52, after=zero.t), 3, what="takeover")
        assert (first.t - zero.t) * 1000 < 2 * A
        assert lan.who_has(VIP) == [b.ns] and lan.who_has(VIP2) == [b.ns]
        os.unlink(path)  # the fault clears: both come back as BACKUP, then preempt (200 > 100) together
        m.wait_all("MASTER", timeout=5)
        b.wait_all("BACKUP", timeout=5)
        assert "Entering BACKUP STATE" in m.log().split("Entering FAULT STATE")[-1]
    assert m.stop() == 0 and b.stop() == 0
    try:
        data = os.read(fd, 1 << 16).decode()
    finally:
        os.close(fd)
    # The group's own lines (keepalived: GROUP "NAME" STATE 0), once all its members are there.
    assert [ln for ln in data.splitlines() if ln.startswith("GROUP")] == [
        'GROUP "G" BACKUP 0',
        'GROUP "G" MASTER 0',
        'GROUP "G" FAULT 0',
        'GROUP "G" BACKUP 0',
        'GROUP "G" MASTER 0',
        'GROUP "G" STOP 0',
    ]


# --- virtual routes and rules -------------------------------------------------------------------------------

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


# --- use_vmac -----------------------------------------------------------------------------------------------

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


# --- accept / no_accept -------------------------------------------------------------------------------------


def pings(lab, ns: str, vip: str) -> bool:
    return lab.sh(ns, f"ping -c 1 -W 1 {vip}", check=False).count(" bytes from ") > 0


def test_no_accept_master_drops_traffic_to_its_vip_accept_answers(lab):
    lan = Lan(lab, routers=1, client=True)
    no_acc = InstanceSpec(vrid=51, advert_int_ms=A, vips=(f"{VIP}/24",), name="NA", extra=("no_accept",))
    acc = InstanceSpec(vrid=52, advert_int_ms=A, vips=("192.0.2.101/24",), name="AC", extra=("accept",))
    r = lan.router(1, "fastvrrp", [no_acc, acc])
    r.start()
    r.wait_all("MASTER", timeout=10)
    assert r.has_vip(VIP) and r.has_vip("192.0.2.101")
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


# --- lower_prio_no_advert / higher_prio_send_advert ---------------------------------------------------------


def inject(ns: str, vrid: int, priority: int, src: str, interval_ms: int = 1000) -> None:
    """One VRRPv3 advert from the client namespace (a raw socket there; the kernel writes the IP header)."""

    def send() -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
        try:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)  # RFC 5798 5.1.1.3
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
            msg = _wire.build_advert(
                version=3,
                family=4,
                vrid=vrid,
                priority=priority,
                adver_int_ms=interval_ms,
                addresses=[socket.inet_aton(VIP)],
                src=socket.inet_aton(src),
                dst=socket.inet_aton("224.0.0.18"),
            )
            s.sendto(msg, ("224.0.0.18", 0))
        finally:
            s.close()

    call_in_netns(ns, send)


CLIENT = "192.0.2.50"


@pytest.mark.parametrize("knob", [False, True], ids=["default", "lower_prio_no_advert"])
def test_lower_priority_advert_answered_unless_lower_prio_no_advert(lab, knob):
    lan = Lan(lab, routers=1, client=True)
    extra = ("lower_prio_no_advert",) if knob else ()
    r = lan.router(1, "fastvrrp", [spec(200, *extra, adv=500)])
    with lan.tap() as tap:
        r.start()
        r.wait_state("MASTER", timeout=10)
        wait_for(lambda: len(tap.adverts(51, r.addr4)) >= 2, timeout=4, what="periodic adverts")
        last = tap.adverts(51, r.addr4)[-1]
        ev = tap.wait(lambda e: e.kind == ADVERT and e.src == r.addr4 and e.t > last.t, 3, "next advert")
        inject(lan.client, 51, 50, CLIENT)  # right after a periodic advert: the next is 1 s away
        inj = tap.wait(lambda e: e.kind == ADVERT and e.src == CLIENT, 2, "the injected advert")
        time.sleep(0.3)  # < the 0.5 s interval: only a reply can fall in this window
        replies = [e for e in tap.adverts(51, r.addr4, after=inj.t) if e.t < inj.t + 0.3]
        assert inj.t - ev.t < 0.2  # well before the next periodic advert (0.5 s)
        if knob:
            assert replies == []  # RFC 5798 6.4.3 as written: discard
        else:
            assert len(replies) == 1 and replies[0].priority == 200  # RFC 9568 6.4.3 (S9): answer at once
            assert replies[0].t - inj.t < 0.05


@pytest.mark.parametrize("knob", [False, True], ids=["default", "higher_prio_send_advert"])
def test_higher_priority_advert_yields_with_one_advert_if_higher_prio_send_advert(lab, knob):
    lan = Lan(lab, routers=1, client=True)
    extra = ("higher_prio_send_advert",) if knob else ()
    r = lan.router(1, "fastvrrp", [spec(200, *extra, adv=500)])
    with lan.tap() as tap:
        r.start()
        r.wait_state("MASTER", timeout=10)
        wait_for(lambda: len(tap.adverts(51, r.addr4)) >= 2, timeout=4, what="periodic adverts")
        last = tap.adverts(51, r.addr4)[-1]
        tap.wait(lambda e: e.kind == ADVERT and e.src == r.addr4 and e.t > last.t, 3, "next advert")
        inject(lan.client, 51, 250, CLIENT)
        inj = tap.wait(lambda e: e.kind == ADVERT and e.src == CLIENT, 2, "the injected advert")
        r.wait_state("BACKUP", timeout=2)  # RFC 5798 6.4.3 S8
        time.sleep(0.3)  # < the 0.5 s interval: only a reply can fall in this window
        after = [e for e in tap.adverts(51, r.addr4, after=inj.t) if e.t < inj.t + 0.3]
        if knob:
            assert len(after) == 1 and after[0].priority == 200 and after[0].t - inj.t < 0.05
        else:
            assert after == []


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
