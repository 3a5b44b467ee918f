"""skip_check_adv_addr on the wire: a VRRPv2 master changes its address list; the backup that skips the check
for its current master keeps following it, the one that checks drops the adverts (RFC 3768 7.1) and takes
over."""

from __future__ import annotations

import socket
import time

import pytest

from fastvrrp import _wire
from fastvrrp.io.sockets import open_rx_tx_in_netns
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

VIP = "192.0.2.100"


def test_skip_check_adv_addr_keeps_following_the_same_master(lab):
    lan = Lan(lab, routers=3, client=False)
    inj_ns = lan.router_ns[0]  # 192.0.2.1 plays a v2 master at priority 200, by hand
    socks = open_rx_tx_in_netns(inj_ns, "eth0", socket.AF_INET, primary_ip="192.0.2.1")
    skip = lan.router(
        2,
        "fastvrrp",
        [
            InstanceSpec(
                vrid=51,
                priority=100,
                version=2,
                advert_int_ms=1000,
                vips=(f"{VIP}/24",),
                extra=("skip_check_adv_addr",),
            )
        ],
    )
    check = lan.router(
        3,
        "fastvrrp",
        [InstanceSpec(vrid=51, priority=90, version=2, advert_int_ms=1000, vips=(f"{VIP}/24",))],
    )

    def advert(addresses: list[str]) -> None:
        msg = _wire.build_advert(
            version=2,
            family=4,
            vrid=51,
            priority=200,
            adver_int_ms=1000,
            addresses=[socket.inet_aton(a) for a in addresses],
            src=socket.inet_aton("192.0.2.1"),
            dst=socket.inet_aton("224.0.0.18"),
        )
        socks.tx.sendto(msg, ("224.0.0.18", 0))

    try:
        advert([VIP])
        skip.start()
        check.start()

        # The injector advertises once a second (its advert interval) until each condition holds: how
        # long the daemons take to start is not ours to choose, so no fixed number of adverts.
        def advertise_until(addresses: list[str], cond, timeout: float, what: str) -> None:
            deadline = time.monotonic() + timeout
            while not cond():
                assert time.monotonic() < deadline, f"{what}: {skip.log()[-800:]} {check.log()[-800:]}"
                advert(addresses)
                wait_for(cond, timeout=1.0, raise_on_timeout=False)

        # both follow the master while its list matches theirs
        advertise_until([VIP], lambda: skip.state() == check.state() == "BACKUP", 20, "both BACKUP")
        for _ in range(2):  # and stay BACKUP while it advertises
            advert([VIP])
            time.sleep(1.0)  # the injector's own advert interval
        assert skip.state() == "BACKUP" and check.state() == "BACKUP"
        # the same master now lists another address as well: `check` drops the adverts and takes over after
        # its Master_Down_Interval (RFC 3768 7.1)
        advertise_until([VIP, "192.0.2.101"], lambda: check.state() == "MASTER", 15, "check takes over")
        advert([VIP, "192.0.2.101"])
        time.sleep(1.0)
        assert skip.state() == "BACKUP", skip.log()[-1500:]  # skips the check for its current master
        assert check.state() == "MASTER", check.log()[-1500:]  # drops them and takes over (RFC 3768 7.1)
    finally:
        socks.close()
