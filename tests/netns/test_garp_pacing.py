"""GARP / NA pacing per interface (keepalived.conf(5) vrrp_garp_interval / vrrp_gna_interval, garp_group
garp_interval / gna_interval): the least time between two gratuitous ARPs (two unsolicited NAs) sent on one
interface, whichever instances they announce. Fifty instances of one daemon become master together on one
interface; tcpdump on that interface stamps every GARP and NA (kernel timestamps, ns, taken on the sender's
side) and the spacing of consecutive frames of a family is checked against the interval (larger is fine,
smaller never), with every VIP announced. A master that resigns before its queued GARPs went out sends none
of them."""

from __future__ import annotations

import os
import re
import signal
import socket
import time

import pytest

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan
from fastvrrp.tools import pcap

pytestmark = pytest.mark.netns

COUNT = 50


def _vip(v: int, mixed: bool) -> str:
    """VRID v's VIP: IPv4, or with `mixed` IPv6 for the upper half of the VRIDs."""
    return f"2001:db8:51::{v:x}/128" if mixed and v > COUNT // 2 else f"198.51.100.{v}/32"


def _specs(mixed: bool) -> list[InstanceSpec]:
    # state MASTER: every instance becomes master at start-up, in the same turn; adverts every second
    return [
        InstanceSpec(vrid=v, priority=100, advert_int_ms=1000, vips=(_vip(v, mixed),), state="MASTER")
        for v in range(1, COUNT + 1)
    ]


class ArpCapture:
    """tcpdump of the ARP frames leaving the router's eth0, written at once (immediate mode, packet-buffered).
    Captured on the sender's side: an outgoing frame is stamped inside the send call, so the stamps show the
    spacing the daemon made. Downstream (on the bridge) the veth hand-off adds its own jitter of a fraction
    of a millisecond, which no sender can control."""

    def __init__(self, lan: Lan, ns: str) -> None:
        self.path = os.path.join(lan.lab.workdir, f"arp-{len(lan.lab.procs)}.pcap")
        # -s 96 (an NA is 86 bytes): in immediate mode the ring has frames of the snapshot length, so the
        # default 256 KiB would leave room for 8 and a burst of 50 would be dropped by the kernel (stop()
        # checks that none was)
        argv = [
            "tcpdump", "-i", "eth0", "-n", "-s", "96", "-U",
            "--immediate-mode", "--time-stamp-precision=nano",
        ]  # fmt: skip
        what = "arp or (icmp6 and ip6[40] == 136)"
        self.proc = lan.lab.spawn(ns, [*argv, "-w", self.path, what], "tcpdump-arp")
        wait_for(lambda: "listening on" in self.proc.log(), timeout=10, what="tcpdump listening")

    def garps(self) -> list[tuple[int, str]]:
        """(kernel stamp ns, VIP) of each gratuitous ARP (sender address = target address) and unsolicited
        NA (ICMPv6 136, its target address) seen so far."""
        out = []
        if not os.path.exists(self.path) or os.path.getsize(self.path) < 24:
            return out
        try:
            for rec in pcap.read_file(self.path):
                d = rec.data
                if len(d) >= 42 and d[12:14] == b"\x08\x06" and d[28:32] == d[38:42]:
                    out.append((rec.t_ns, socket.inet_ntoa(d[28:32])))
                elif len(d) >= 78 and d[12:14] == b"\x86\xdd" and d[20] == 58 and d[54] == 136:
                    out.append((rec.t_ns, socket.inet_ntop(socket.AF_INET6, d[62:78])))
        except pcap.PcapError:  # a record being written: read what is whole
            pass
        return out

    def stop(self) -> None:
        self.proc.stop(signal.SIGINT, timeout=10)
        m = re.search(r"(\d+) packets? dropped by kernel", self.proc.log())
        assert m and m[1] == "0", f"the capture lost frames: {self.proc.log()}"


def _run(
    lab, global_lines: list[str], before: str = "", mixed: bool = False
) -> tuple[list[tuple[int, str]], set[str]]:
    lan = Lan(lab, routers=1, client=False)
    r = lan.router(1, "fastvrrp", _specs(mixed), global_lines=global_lines)
    r.blocks_before = before
    vips = {_vip(v, mixed).split("/")[0] for v in range(1, COUNT + 1)}
    cap = ArpCapture(lan, r.ns)
    try:
        r.start()
        r.wait_all("MASTER", timeout=30)
        seen = wait_for(
            lambda: {v for _, v in cap.garps()} >= vips, timeout=20, what="a GARP for every VIP",
            raise_on_timeout=False,
        )  # fmt: skip
        missing = sorted(vips - {v for _, v in cap.garps()})
        assert seen, f"no GARP for {len(missing)} VIPs: {missing[:5]}"
    finally:
        cap.stop()
    assert r.stop() == 0
    return cap.garps(), vips


ONE_BURST = ["vrrp_garp_master_repeat 1", "vrrp_garp_master_delay 0"]


def _spacing_ms(garps: list[tuple[int, str]], family: int) -> float:
    stamps = sorted(t for t, v in garps if (":" in v) == (family == 6))
    assert len(stamps) > 1
    return min(b - a for a, b in zip(stamps, stamps[1:], strict=False)) / 1e6


@pytest.mark.parametrize("how", ["global_defs", "garp_group"])
def test_garps_and_nas_of_all_instances_are_spaced_on_the_interface(lab, how):
    """25 IPv4 and 25 IPv6 instances: GARPs >= 5 ms apart, NAs >= 5 ms apart (the two are paced apart, as
    in keepalived: a GARP and an NA may follow each other closely)."""
    if how == "global_defs":
        lines = [*ONE_BURST, "vrrp_garp_interval 0.005", "vrrp_gna_interval 0.005"]
        garps, vips = _run(lab, lines, mixed=True)
    else:  # the group's intervals on eth0 win over the global 0
        group = "garp_group {\n    garp_interval 0.005\n    gna_interval 0.005\n    interface eth0\n}\n"
        garps, vips = _run(lab, [*ONE_BURST, "vrrp_garp_interval 0"], group, mixed=True)
    assert sorted(v for _, v in garps) == sorted(vips)  # one burst, one frame each, none lost or repeated
    for family in (4, 6):
        gap = _spacing_ms(garps, family)
        assert gap >= 5.0, f"IPv{family}: announcements {gap:.3f} ms apart on one interface (interval 5 ms)"


def test_without_an_interval_every_garp_goes_out_at_once(lab):
    garps, vips = _run(lab, [*ONE_BURST, "vrrp_garp_interval 0"])
    assert sorted(v for _, v in garps) == sorted(vips)
    stamps = sorted(t for t, _ in garps)
    # not a timing claim: back to back, fifty frames take far less than the 245 ms that 5 ms spacing would
    assert stamps[-1] - stamps[0] < 245_000_000


def test_a_master_that_resigns_drops_its_queued_garps(lab):
    """50 GARPs at 50 ms: 2.5 s of queue. Draining every instance mid-queue makes them resign (priority 0,
    then backup at priority 1, taking over again only ~4 s later as nobody else advertises): no GARP of the
    old queue goes out after the drain is done."""
    lan = Lan(lab, routers=1, client=False)
    r = lan.router(1, "fastvrrp", _specs(False), global_lines=[*ONE_BURST, "vrrp_garp_interval 0.05"])
    cap = ArpCapture(lan, r.ns)
    try:
        r.start()
        wait_for(lambda: len(cap.garps()) >= 3, timeout=30, what="the first GARPs")
        r.ctl("drain", "all")
        drained_ns = time.time_ns()
        wait_for(lambda: time.time_ns() - drained_ns >= 1_500_000_000, timeout=5, what="1.5 s after it")
        r.wait_all("BACKUP", timeout=5)  # still backups: the window ended before any took over again
        garps = cap.garps()
    finally:
        cap.stop()
    assert r.stop() == 0
    late = [v for t, v in garps if t > drained_ns]
    assert not late, f"{len(late)} GARPs after the drain: {late[:5]}"
    assert 3 <= len(garps) < COUNT  # part of the queue went out, the rest was dropped
