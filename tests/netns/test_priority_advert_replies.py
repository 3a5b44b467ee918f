"""What a master does with an advert of another priority (RFC 5798 / RFC 9568 6.4.3): a lower one is answered
at once unless lower_prio_no_advert, a higher one makes it yield, sending one advert first only with
higher_prio_send_advert. Adverts are injected from the client namespace and timed on the wire."""

from __future__ import annotations

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


def spec(prio: int, *extra: str, vrid: int = 51, vip: str = VIP, adv: int = A) -> InstanceSpec:
    return InstanceSpec(vrid=vrid, priority=prio, advert_int_ms=adv, vips=(f"{vip}/24",), extra=extra)


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
