"""A vrrp_sync_group in the running daemon: one member's FAULT takes the whole group to FAULT, the peer
takes every member after Skew_Time (priority 0), the group comes back together, and the notify FIFO gets the
group's own lines."""

from __future__ import annotations

import os
import time

import pytest

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

A = 100  # ms
VIP = "192.0.2.100"
VIP2 = "198.51.100.1"


def spec(prio: int, *extra: str, vrid: int = 51, vip: str = VIP, adv: int = A) -> InstanceSpec:
    return InstanceSpec(vrid=vrid, priority=prio, advert_int_ms=adv, vips=(f"{vip}/24",), extra=extra)


GROUP = "vrrp_sync_group G {\n    group {\n        VI_51\n        VI_52\n    }\n}\n"


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
        wait_for(lambda: lan.who_has(VIP) == [b.ns] and lan.who_has(VIP2) == [b.ns], 3, what="VIPs on b only")
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
