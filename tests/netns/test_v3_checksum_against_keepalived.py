"""The VRRPv3 IPv4 checksum knob against keepalived 2.2.7 (docs/rfc-checklist.md#v3-ipv4-checksum).

keepalived 2.2.7 computes and requires the checksum over the IPv4 pseudo-header. fastvrrp does the same by
default; with `v3_checksum_as_v2` it sends the message-only checksum (RFC 9568 5.2.8, Cisco, Juniper), which
keepalived rejects ("Invalid VRRPv3 checksum") and so takes over although a higher priority is advertising.
fastvrrp accepts either form on receive, so it keeps hearing keepalived in both legs.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = [pytest.mark.interop, pytest.mark.netns]

A = 100
SPEC = InstanceSpec(vrid=52, version=3, advert_int_ms=A, vips=("192.0.2.100/24",))
BAD = "Invalid VRRPv3 checksum"


@pytest.mark.parametrize("knob", [False, True], ids=["pseudo-header", "v3_checksum_as_v2"])
def test_v3_ipv4_checksum_form_against_keepalived(lab, keepalived_bin, knob):
    lan = Lan(lab, routers=2, client=False)
    extra = ("v3_checksum_as_v2",) if knob else ()
    fv = lan.router(1, "fastvrrp", [replace(SPEC, priority=200, extra=extra)])
    ka = lan.router(2, "keepalived", [replace(SPEC, priority=100)], keepalived_bin)
    with lan.tap() as tap:
        fv.start()
        fv.wait_state("MASTER", timeout=10)
        wait_for(lambda: len(tap.adverts(52, fv.addr4)) >= 3, timeout=3, what="fastvrrp adverts")
        t0 = time.time()
        ka.start()
        if knob:
            # keepalived drops every advert of the higher-priority master and takes over after its
            # Master_Down_Interval (3 x 100 ms + skew 61 ms); fastvrrp hears keepalived's pseudo-header
            # adverts at priority 100 and stays master, answering them (two masters: the misconfiguration).
            wait_for(lambda: BAD in ka.log(), timeout=5, what="keepalived rejecting the checksum")
            ka.wait_state("MASTER", timeout=5)
            first = wait_for(
                lambda: tap.first_advert_from(ka.addr4, 52, after=t0), 3, what="keepalived advert"
            )
            assert first.priority == 100
            assert fv.state() == "MASTER"
        else:
            ka.wait_state("BACKUP", timeout=5)
            time.sleep(10 * A / 1000)  # > 2.5 Master_Down_Intervals: it is hearing fastvrrp
            assert ka.state() == "BACKUP" and BAD not in ka.log()
            assert tap.adverts(52, ka.addr4, after=t0) == []
            # And the other way round: keepalived's adverts reach fastvrrp (stop: priority 0, S3 / S7).
            t1 = time.time()
            assert fv.stop() == 0
            ka.wait_state("MASTER", timeout=5)
            first = wait_for(
                lambda: tap.first_advert_from(ka.addr4, 52, after=t1), 3, what="keepalived advert"
            )
            zero = next(e for e in tap.adverts(52, fv.addr4, after=t1) if e.priority == 0)
            assert (
                first.t - zero.t
            ) * 1000 < 3 * A  # Skew_Time after the priority-0 advert, not 3+ intervals
    assert ka.stop() == 0
