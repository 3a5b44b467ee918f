"""`fastvrrp ctl drain` with Debian's keepalived as the peer: keepalived takes over after its Skew_Time on the
drain's priority-0 advert (RFC 5798 6.4.2 S3), the drained fastvrrp follows keepalived at priority 1, takes
over as a last resort when keepalived dies, and an undrain preempts keepalived again."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan, master_down_ms, skew_ms

pytestmark = [pytest.mark.interop, pytest.mark.netns]

A = 100
VIP = "192.0.2.100"


def test_drain_hands_over_to_keepalived_and_undrain_takes_it_back(lab, keepalived_bin):
    lan = Lan(lab, routers=2, client=False)
    base = InstanceSpec(vrid=51, advert_int_ms=A, vips=(f"{VIP}/24",))
    fv = lan.router(1, "fastvrrp", [replace(base, priority=200)])
    ka = lan.router(2, "keepalived", [replace(base, priority=100)], keepalived_bin=keepalived_bin)
    with lan.tap() as tap:
        fv.start()
        fv.wait_state("MASTER", timeout=10)
        ka.start()
        ka.wait_state("BACKUP", timeout=10)
        t = time.time()
        wait_for(lambda: len(tap.adverts(51, fv.addr4, after=t)) >= 5, timeout=5, what="fastvrrp advertising")
        t = time.time()
        fv.ctl("drain", "VI_51")
        zero = wait_for(
            lambda: next((e for e in tap.adverts(51, fv.addr4, after=t) if e.priority == 0), None),
            timeout=5,
            what="the priority-0 advert",
        )
        first = wait_for(
            lambda: tap.first_advert_from(ka.addr4, 51, after=zero.t), timeout=5, what="takeover"
        )
        took = (first.t - zero.t) * 1000
        print(
            f"\nkeepalived took over {took:.1f} ms after the drain (its Skew_Time {skew_ms(100, A):.1f} ms)"
        )
        assert took < master_down_ms(100, A) - A  # S3 on the priority-0 advert, not a timeout
        ka.wait_state("MASTER", timeout=5)
        wait_for(lambda: lan.who_has(VIP) == [ka.ns], timeout=3, what="VIP on keepalived")
        # Drained, fastvrrp follows keepalived and stays silent.
        t = time.time()
        time.sleep(6 * A / 1000)
        assert fv.state() == "BACKUP" and not tap.adverts(51, fv.addr4, after=t)
        # Undrained at 200 it preempts keepalived's 100.
        fv.ctl("undrain", "VI_51")
        fv.wait_state("MASTER", timeout=5)
        ka.wait_state("BACKUP", timeout=5)
        wait_for(lambda: lan.who_has(VIP) == [fv.ns], timeout=3, what="VIP back on fastvrrp")
        # Drained again, then keepalived dies: fastvrrp takes over as the last resort, at priority 1.
        fv.ctl("drain", "all")
        ka.wait_state("MASTER", timeout=5)
        t = time.time()
        ka.crash()
        first = wait_for(lambda: tap.first_advert_from(fv.addr4, 51, after=t), timeout=5, what="last resort")
        assert first.priority == 1
        fv.wait_state("MASTER", timeout=5)
