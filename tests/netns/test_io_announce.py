"""GARP / unsolicited NA: the schedule (virtual clock) and the frames on a real veth, byte for byte."""

from __future__ import annotations

import json
import select
import socket
import struct

import pytest

from fastvrrp.io.announce import AnnounceSchedule, AnnounceSettings, FrameSender, Pacer, announcement_frames
from fastvrrp.io.nsexec import call_in_netns
from fastvrrp.lab.namespaces import wait_for

VMAC4 = bytes.fromhex("00005e000133")  # RFC 5798 7.3, VRID 51
VMAC6 = bytes.fromhex("00005e000233")
VIP4 = socket.inet_aton("192.0.2.100")
VIP6 = socket.inet_pton(socket.AF_INET6, "2001:db8::100")
ETH_P_ALL = 0x0003
GARP_A = b"\0" * 12 + b"\x08\x06" + b"A"  # what a Pacer looks at: the EtherType
GARP_B = b"\0" * 12 + b"\x08\x06" + b"B"
NA_A = b"\0" * 12 + b"\x86\xdd" + b"A"


def _csum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def expected_garp(mac: bytes, vip: bytes) -> bytes:
    """docs/rfc-checklist.md#announcements, field by field: broadcast ARP request, sha=VMAC, spa=tpa=VIP,
    tha=ff..ff."""
    eth = b"\xff" * 6 + mac + struct.pack("!H", 0x0806)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + vip + b"\xff" * 6 + vip
    return eth + arp


def expected_na(mac: bytes, vip: bytes, router: bool) -> bytes:
    """docs/rfc-checklist.md#announcements: to ff02::1 from the VIP, hop limit 255 (RFC 4861 7.1.2), flags
    R|O, TLLA = VMAC."""
    all_nodes = socket.inet_pton(socket.AF_INET6, "ff02::1")
    flags = 0xA0000000 if router else 0x20000000
    body = struct.pack("!I", flags) + vip + bytes((2, 1)) + mac
    pseudo = vip + all_nodes + struct.pack("!IxxxB", 4 + len(body), 58)
    c = _csum(pseudo + struct.pack("!BBH", 136, 0, 0) + body)
    icmp = struct.pack("!BBH", 136, 0, c) + body
    ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), 58, 255) + vip + all_nodes
    return b"\x33\x33\x00\x00\x00\x01" + mac + struct.pack("!H", 0x86DD) + ip6 + icmp


# --- the schedule (no I/O) ------


def _sched(settings=None, n4=2, n6=1):
    arp = [b"A%d" % i for i in range(n4)]
    na = [b"N%d" % i for i in range(n6)]
    return AnnounceSchedule(arp, na, settings)


def test_frames_match_notes_byte_for_byte():
    arp, na = announcement_frames(VMAC4, [VIP4, VIP6])
    assert arp == [expected_garp(VMAC4, VIP4)] and len(arp[0]) == 42
    assert na == [expected_na(VMAC4, VIP6, router=True)] and len(na[0]) == 86
    assert announcement_frames(VMAC6, [VIP6], router=False)[1] == [expected_na(VMAC6, VIP6, router=False)]
    with pytest.raises(ValueError):
        announcement_frames(VMAC4, [b"\1\2\3"])


def test_defaults_first_burst_now_second_after_5s():
    s = _sched()
    out = s.became_master(1000)
    # garp_master_repeat 5: five rounds over the VIPs, all at once with interval 0, in the same iteration.
    assert out == [b"A0", b"A1"] * 5 + [b"N0"] * 5
    assert s.next_deadline_ms == 6000  # garp_master_delay 5 s
    assert s.poll(5999) == []
    assert s.poll(6000) == [b"A0", b"A1"] * 5 + [b"N0"] * 5
    assert s.next_deadline_ms is None  # garp_master_refresh 0: nothing more
    assert (s.arp_sent, s.na_sent, s.bursts) == (20, 10, 2)


def test_no_second_burst_when_delay_is_zero():
    s = _sched(AnnounceSettings(master_delay_ms=0, master_repeat=1))
    assert s.became_master(0) == [b"A0", b"A1", b"N0"]
    assert s.next_deadline_ms is None


def _alive_all(owner, epoch):
    return True


def test_pacer_spaces_frames_of_all_instances_on_an_interface():
    p = Pacer(arp_gap_ms=10, na_gap_ms=25)
    a, b = AnnounceSchedule([GARP_A], [NA_A]), AnnounceSchedule([GARP_B], [])
    p.push("a", 0, a.became_master(100)[:1] + a.na_frames)
    p.push("b", 0, b.became_master(100)[:1])
    assert p.due(100, _alive_all) == [("a", GARP_A), ("a", NA_A)]  # the first of each family at once
    p.restamp(101)  # sent at 101: the gaps count from there
    assert p.deadline() == 111
    assert p.due(110, _alive_all) == []
    assert p.due(111, _alive_all) == [("b", GARP_B)]  # another instance's ARP waits its turn
    p.restamp(111)
    assert p.deadline() is None and len(p) == 0 and p.sent == 3
    p.push("a", 0, [GARP_A, GARP_A])
    assert p.due(130, _alive_all) == [("a", GARP_A)]  # a late timer: one frame, never a catch-up burst
    p.restamp(130)
    assert p.deadline() == 140


def test_pacer_drops_the_frames_of_an_instance_that_resigned():
    p = Pacer(arp_gap_ms=5)
    p.push("a", 1, [GARP_A] * 3)
    p.push("b", 0, [GARP_B] * 2)
    gone = {"a"}
    assert p.due(0, lambda owner, epoch: owner not in gone) == [("b", GARP_B)]  # a's three take no slot
    p.restamp(0)
    assert p.dropped == 3 and len(p) == 1
    p.drop("b")
    assert len(p) == 0 and p.deadline() is None


def test_pacer_knows_what_waits_and_forgets_stale_frames_of_a_flapping_instance():
    p = Pacer(arp_gap_ms=10)
    p.push("b", 0, [GARP_B] * 100)  # a long paced queue ahead
    p.push("a", 0, [GARP_A] * 2)
    assert p.waiting("a", 0) and not p.waiting("a", 1) and not p.waiting("c", 0)
    # "a" flaps 1,000 times while the queue drains one frame per 10 ms: its earlier masterships' frames are
    # stale, and the queue is compacted instead of growing by two frames a flap.
    for epoch in range(1, 1001):
        p.push("a", epoch, [GARP_A] * 2)
        assert len(p) <= 2 * (100 + 2) + 64
    assert p.waiting("a", 1000) and not p.waiting("a", 999)
    out = []
    t = 0
    while len(p):  # (the daemon's alive() says which epoch is current, as here)
        out += p.due(t, lambda owner, epoch: owner != "a" or epoch == 1000)
        p.restamp(t)
        t += 10
    assert out == [("b", GARP_B)] * 100 + [("a", GARP_A)] * 2  # only the current mastership's frames
    assert p.sent == 102 and p.dropped == 2000
    assert not p.waiting("a", 1000) and not p.waiting("b", 0)


def test_pacer_with_no_interval_sends_back_to_back():
    p = Pacer()
    p.push("a", 0, [GARP_A, NA_A, GARP_B])
    assert p.due(0, _alive_all) == [("a", GARP_A), ("a", GARP_B), ("a", NA_A)]
    with pytest.raises(ValueError):
        Pacer(arp_gap_ms=-1)


def test_refresh_repeats_while_master_and_stop_silences():
    s = _sched(
        AnnounceSettings(
            master_delay_ms=3000, master_repeat=1, master_refresh_ms=2000, master_refresh_repeat=2
        )
    )
    s.became_master(0)
    assert s.next_deadline_ms == 2000
    assert s.poll(2000) == [b"A0", b"A1", b"A0", b"A1", b"N0", b"N0"]
    assert s.next_deadline_ms == 3000
    assert s.poll(3000) == [b"A0", b"A1", b"N0"]  # the second burst
    assert s.next_deadline_ms == 4000
    assert len(s.poll(4000)) == 6
    s.stop()  # RFC 5798 6.4.2: a backup does not announce
    assert s.next_deadline_ms is None and s.poll(10_000) == [] and s.burst(10_000, 3) == []
    # Becoming master again starts over.
    assert len(s.became_master(20_000)) == 3 and s.next_deadline_ms == 22_000


def test_negative_settings_rejected():
    with pytest.raises(ValueError):
        AnnounceSettings(master_repeat=-1)


# --- on the wire ------


def _capture_socket(ifname: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # nothing until bound to ifname
    s.bind((ifname, ETH_P_ALL))
    s.setblocking(False)
    return s


def _collect(s: socket.socket, want, timeout: float = 3.0) -> list[bytes]:
    got: list[bytes] = []

    def receive() -> bool:
        r, _, _ = select.select([s], [], [], 0.05)  # the wait between polls
        while r:
            try:
                frame, addr = s.recvfrom(4096)
            except BlockingIOError:
                break
            if addr[2] != socket.PACKET_OUTGOING:
                got.append(frame)
        return want(got)

    wait_for(receive, timeout, interval=0, what="frames", raise_on_timeout=False)
    return got


def _neigh(lab, ns: str, addr: str) -> dict:
    data = json.loads(lab.sh(ns, f"ip -j neigh show {addr} dev ethB"))
    return data[0] if data else {}


@pytest.mark.netns
def test_garp_and_na_on_the_wire_update_peer_neighbours(lab):
    a = lab.ns("a")
    b = lab.ns("b")
    lab.veth(a, "ethA", b, "ethB")
    lab.addr(a, "ethA", "192.0.2.1/24")
    lab.addr(b, "ethB", "192.0.2.2/24")
    lab.addr(a, "ethA", "2001:db8::1/64")
    lab.addr(b, "ethB", "2001:db8::2/64")
    # The peer already knows the VIPs by an old MAC (a GARP updates an entry; with arp_accept=0 it does not
    # create one, docs/kernel-notes.md#arp-cache-updates).
    lab.sh(b, "ip neigh replace 192.0.2.100 lladdr 02:00:00:00:00:01 dev ethB nud stale")
    lab.sh(b, "ip -6 neigh replace 2001:db8::100 lladdr 02:00:00:00:00:01 dev ethB nud stale")

    cap = call_in_netns(b, _capture_socket, "ethB")
    tx = FrameSender("ethA", netns=a)
    try:
        arp_frames, _ = announcement_frames(VMAC4, [VIP4])
        _, na_frames = announcement_frames(VMAC6, [VIP6], router=True)
        sched = AnnounceSchedule(arp_frames, na_frames, AnnounceSettings(master_repeat=2))
        assert tx.send(sched.became_master(0)) == 4 and tx.errors == {}

        def enough(got):
            return (
                sum(f[12:14] == b"\x08\x06" for f in got) >= 2
                and sum(f[12:14] == b"\x86\xdd" for f in got) >= 2
            )

        got = _collect(cap, enough)
        garps = [f for f in got if f[12:14] == b"\x08\x06"]
        nas = [f for f in got if f[12:14] == b"\x86\xdd" and f[20] == 58 and f[54] == 136]
        assert len(garps) == 2 and len(nas) == 2
        for f in garps:  # may arrive padded to the Ethernet minimum; the padding is zeros
            assert f[:42] == expected_garp(VMAC4, VIP4) and set(f[42:]) <= {0}
        for f in nas:
            assert f == expected_na(VMAC6, VIP6, router=True)

        wait_for(
            lambda: _neigh(lab, b, "192.0.2.100").get("lladdr") == "00:00:5e:00:01:33", 5, what="ARP entry"
        )
        n6 = wait_for(
            lambda: (e := _neigh(lab, b, "2001:db8::100")).get("lladdr") == "00:00:5e:00:02:33" and e,
            5,
            what="ND entry",
        )
        assert "router" in n6  # the R flag (RFC 4861 4.4) was honoured
    finally:
        tx.close()
        cap.close()
