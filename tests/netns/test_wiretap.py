"""WireTap in real namespaces: two hosts on a bridge in a third; adverts, GARP, NA and pings on the wire.

Frames are built with scapy and sent from a thread inside the sender's namespace through an AF_PACKET socket;
pings come from iputils `ping`. The tap sits on the bridge. A second test runs tcpdump next to the tap and
decodes tcpdump's files with `fastvrrp decode`, comparing them with what the tap saw.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time

import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vrrp import VRRP, VRRPv3

from fastvrrp import cli
from fastvrrp.io.nsexec import enter_netns
from fastvrrp.lab import wiretap
from fastvrrp.lab.namespaces import wait_for

pytestmark = pytest.mark.netns

VMAC = "00:00:5e:00:01:33"
VMAC6 = "00:00:5e:00:02:33"
MC4_MAC = "01:00:5e:00:00:12"


@pytest.fixture
def net(lab):
    """ns a (192.0.2.1, 2001:db8::1) and b (192.0.2.2) on br0 in ns sw."""
    sw, a, b = lab.ns("sw"), lab.ns("a"), lab.ns("b")
    lab.bridge(sw, "br0")
    lab.veth(a, "eth0", sw, "pa", bridge="br0")
    lab.veth(b, "eth0", sw, "pb", bridge="br0")
    lab.addr(a, "eth0", "192.0.2.1/24")
    lab.addr(a, "eth0", "2001:db8::1/64")
    lab.addr(b, "eth0", "192.0.2.2/24")
    return lab, sw, a, b


def send_frames(ns, ifname, frames, gap_s=0.0):
    """Send Ethernet frames from inside `ns`; return time.time_ns() taken around each send."""
    stamps = []
    err = []

    def body():
        try:
            enter_netns(ns)
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as s:
                s.bind((ifname, 0))
                for i, fr in enumerate(frames):
                    if i and gap_s:
                        time.sleep(gap_s)
                    before = time.time_ns()
                    s.send(bytes(fr))
                    stamps.append((before, time.time_ns()))
        except BaseException as e:  # pragma: no cover - re-raised below
            err.append(e)

    t = threading.Thread(target=body)
    t.start()
    t.join(30)
    if err:
        raise err[0]
    return stamps


def v3_advert(src, vrid, prio, ttl=255):
    return (
        Ether(src=VMAC, dst=MC4_MAC)
        / IP(src=src, dst="224.0.0.18", ttl=ttl)
        / VRRPv3(vrid=vrid, priority=prio, ipcount=1, addrlist=["192.0.2.100"])
    )


def test_adverts_garp_na_with_kernel_timestamps(net, tmp_path, capsys):
    lab, sw, a, _b = net
    pcap_path = str(tmp_path / "tap.pcap")
    tap = wiretap.WireTap(sw, "br0", pcap_path=pcap_path).start()
    try:
        adverts = [v3_advert("192.0.2.1", 51, 100) for _ in range(5)]
        stamps = send_frames(a, "eth0", adverts, gap_s=0.1)
        bad = send_frames(a, "eth0", [v3_advert("192.0.2.1", 51, 100, ttl=64)])
        v2 = (
            Ether(src=VMAC, dst=MC4_MAC)
            / IP(src="192.0.2.9", dst="224.0.0.18", ttl=255)
            / VRRP(vrid=52, priority=200, addrlist=["192.0.2.200"])
        )
        garp = Ether(src=VMAC, dst="ff:ff:ff:ff:ff:ff") / ARP(
            op=1, hwsrc=VMAC, psrc="192.0.2.100", hwdst="ff:ff:ff:ff:ff:ff", pdst="192.0.2.100"
        )
        not_garp = Ether(src=VMAC, dst="ff:ff:ff:ff:ff:ff") / ARP(
            op=1, hwsrc=VMAC, psrc="192.0.2.1", pdst="192.0.2.7"
        )
        na = (
            Ether(src=VMAC6, dst="33:33:00:00:00:01")
            / IPv6(src="2001:db8::100", dst="ff02::1", hlim=255)
            / ICMPv6ND_NA(R=1, S=0, O=1, tgt="2001:db8::100")
            / ICMPv6NDOptDstLLAddr(lladdr=VMAC6)
        )
        zero = v3_advert("192.0.2.1", 51, 0)  # a resignation (RFC 5798 6.4.3), not a new master
        later = send_frames(a, "eth0", [v2, not_garp, garp, na, zero])
        tap.wait(lambda e: e.kind == wiretap.NA, timeout=5, what="the unsolicited NA")
    finally:
        events = tap.stop()

    advs = tap.adverts(51, "192.0.2.1", valid=True)[:5]
    assert [(e.vrid, e.priority, e.version, e.adver_int_ms, e.addresses, e.src_mac) for e in advs] == [
        (51, 100, 3, 1000, ("192.0.2.100",), VMAC)
    ] * 5
    # Kernel receive times: after the send began, and close behind it (veth + bridge, same host). 20 ms
    # allows a scheduler hiccup on a loaded 2-core machine.
    for e, (before, after) in zip(advs, stamps, strict=True):
        assert before <= e.t_ns <= after + 20_000_000, (before, e.t_ns, after)
    # Spacing on the wire follows the sender's spacing (100 ms sleeps), to within the send-time jitter.
    for i in range(1, len(advs)):
        wire_gap = advs[i].t_ns - advs[i - 1].t_ns
        send_gap = stamps[i][0] - stamps[i - 1][0]
        assert abs(wire_gap - send_gap) < 20_000_000, (i, wire_gap, send_gap)
    # The TTL-64 advert is seen and judged invalid; the helpers still count it (it shows who claims the
    # VRID), `valid` narrows that.
    (invalid,) = tap.adverts(51, "192.0.2.1", valid=False)
    assert (invalid.reason, invalid.valid) == ("ttl", False) and invalid.t_ns >= bad[0][0]
    (resign,) = tap.adverts(51, "192.0.2.1", after=invalid.t)
    assert resign.priority == 0 and resign.valid
    assert tap.adverts(51, "192.0.2.1") == [*advs, invalid, resign]
    assert tap.adverts(51, "192.0.2.1", after=advs[2].t) == [*advs[3:], invalid, resign]
    assert tap.last_advert_from("192.0.2.1", 51) == resign
    assert tap.last_advert_from("192.0.2.1", 51, before=advs[2].t) == advs[2]  # at or before
    assert tap.last_advert_from("192.0.2.1", 51, before=advs[0].t - 1e-6) is None
    assert tap.first_advert_from("192.0.2.1", 51, after=advs[2].t) == advs[3]  # strictly after
    # priority 0 is the old master leaving, not a new one, unless asked for
    assert tap.first_advert_from("192.0.2.1", 51, after=invalid.t) is None
    assert tap.first_advert_from("192.0.2.1", 51, after=invalid.t, min_priority=0) == resign
    assert tap.first_advert_from("192.0.2.1", 99) is None
    (e2,) = tap.adverts(src="192.0.2.9")
    assert (e2.version, e2.vrid, e2.priority, e2.adver_int_ms, e2.addresses) == (
        2,
        52,
        200,
        1000,
        ("192.0.2.200",),
    )

    g = tap.first_garp("192.0.2.100/24", after=advs[-1].t)
    assert g is not None and (g.kind, g.src_mac) == (wiretap.GARP, VMAC) and g.t_ns >= later[0][0]
    assert tap.first_garp("192.0.2.100", after=g.t) is None
    assert tap.first_garp("192.0.2.1") is None  # an ordinary ARP request is not gratuitous
    n = tap.first_garp("2001:DB8:0::100")  # compared as addresses, not as text
    assert n is not None and (n.kind, n.src_mac, n.family) == (wiretap.NA, VMAC6, 6)
    # the monotonic reading comes after the kernel stamp, in order of capture
    assert [e.frame for e in events] == sorted(e.frame for e in events)
    assert all(e.mono_ns > 0 for e in events)

    # The tap's pcap holds every frame (ARP and NA too); `fastvrrp decode` finds exactly the 8 adverts in it.
    capsys.readouterr()
    rc = cli.main(["decode", "--json", pcap_path])
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 0 and [g["time_ns"] for g in got] == [e.t_ns for e in tap.adverts()]
    assert len(got) == 8 and tap.frames >= 11


def test_tap_pcap_decodes_to_the_same_events(net, tmp_path, capsys):
    lab, sw, a, _b = net
    pcap_path = str(tmp_path / "tap.pcap")
    with wiretap.WireTap(sw, "br0", pcap_path=pcap_path) as tap:
        send_frames(a, "eth0", [v3_advert("192.0.2.1", 7, p) for p in (10, 20, 30)], gap_s=0.01)
        tap.wait(lambda e: e.kind == wiretap.ADVERT and e.priority == 30, timeout=5)
    rc = cli.main(["decode", "--json", pcap_path])
    out = capsys.readouterr().out
    got = [json.loads(line) for line in out.splitlines()]
    want = [(e.t_ns, e.src, e.vrid, e.priority, e.valid) for e in tap.adverts()]
    assert rc == 0 and len(want) == 3
    assert [(g["time_ns"], g["src"], g["vrid"], g["priority"], g["valid"]) for g in got] == want


def test_ping_gap_measures_an_outage(net):
    lab, sw, a, b = net
    tap = wiretap.WireTap(sw, "br0").start()
    try:
        ping = lab.spawn(a, ["ping", "-n", "-i", "0.05", "-c", "60", "192.0.2.2"], "ping")
        tap.wait(lambda e: e.kind == wiretap.ECHO_REPLY and e.seq >= 5, timeout=10, what="5 replies")
        down = time.time()
        lab.sh(b, "ip link set eth0 down")
        n_before = len(tap.events)
        wait_for(lambda: len(tap.events) >= n_before + 8, timeout=5, what="requests during the outage")
        up = time.time()
        lab.sh(b, "ip link set eth0 up")
        back = tap.wait(lambda e: e.kind == wiretap.ECHO_REPLY and e.t > up, timeout=10, what="replies")
        tap.wait(lambda e: e.kind == wiretap.ECHO_REPLY and e.seq >= back.seq + 3, timeout=10, what="3 more")
        ping.stop(signal.SIGINT)
    finally:
        tap.stop()
    assert {e.icmp for e in tap.snapshot(wiretap.PING)} == {"request", "reply"}
    assert all(e.icmp == "" for e in tap.snapshot(wiretap.ADVERT))
    # Over [down, up] the longest silence runs from the last reply before "link down" to the first one after
    # "link up"; with the window a single moment (the demo's use) it is the same silence.
    gap = tap.ping_gap("192.0.2.2", down, up)
    assert gap is not None and up - down <= gap < up - down + 2.0, (gap, up - down)
    assert tap.ping_gap("192.0.2.2", down) == gap
    assert gap == back.t - max(e.t for e in tap.snapshot(wiretap.PING) if e.icmp == "reply" and e.t <= down)
    # before and after the outage, replies come every 50 ms
    assert tap.ping_gap("192.0.2.2", down - 0.1) < 0.1
    assert tap.ping_gap("192.0.2.2", back.t) < 0.1
    assert tap.ping_gap("192.0.2.2", time.time()) is None  # no reply after the window (yet)
    assert tap.ping_gap("192.0.2.99", down) is None


def test_tcpdump_captures_decode(net, tmp_path, capsys):
    """tcpdump -w (Ethernet on br0, cooked SLL2 with -i any) while adverts are sent; decode both files."""
    lab, sw, a, _b = net
    eth_pcap, any_pcap = str(tmp_path / "br0.pcap"), str(tmp_path / "any.pcap")
    # --immediate-mode: TPACKET_V3 would otherwise hold frames until a ring block retires (up to 1 s)
    tcpdump = ["tcpdump", "--immediate-mode", "-U", "-n"]
    dumps = [
        lab.spawn(
            sw,
            [*tcpdump, "-i", "br0", "--time-stamp-precision=nano", "-w", eth_pcap, "ip proto 112"],
            "td-br0",
        ),
        lab.spawn(sw, [*tcpdump, "-i", "any", "-w", any_pcap, "ip proto 112"], "td-any"),
    ]
    for d in dumps:
        wait_for(lambda d=d: "listening on" in d.log(), timeout=10, what="tcpdump to listen")
    with wiretap.WireTap(sw, "br0") as tap:
        frames = [v3_advert("192.0.2.1", 61, 100 + i) for i in range(3)]
        frames.append(v3_advert("192.0.2.1", 61, 150, ttl=1))
        send_frames(a, "eth0", frames, gap_s=0.02)
        tap.wait(lambda e: e.kind == wiretap.ADVERT and e.priority == 150, timeout=5)
    for d in dumps:
        # SIGINT makes tcpdump flush and close the file; -U wrote each packet already
        assert d.stop(signal.SIGINT) == 0, d.log()
    tap_times = [e.t_ns for e in tap.adverts()]

    rc = cli.main(["decode", "--json", eth_pcap])
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 0
    assert [(g["priority"], g["valid"], g["reason"], g["ttl"]) for g in got] == [
        (100, True, None, 255), (101, True, None, 255), (102, True, None, 255), (150, False, "ttl", 1)
    ]  # fmt: skip
    assert all(g["checksum_form"] == "pseudo" for g in got[:3])  # scapy's VRRPv3 uses the pseudo-header
    # tcpdump and the tap read the same kernel timestamp for each frame (both ask SO_TIMESTAMP-style stamps)
    assert [g["time_ns"] for g in got] == tap_times

    rc = cli.main(["decode", any_pcap])
    lines = capsys.readouterr().out.splitlines()
    # -i any sees each frame on every interface it crosses (pa and br0 in the switch namespace)
    assert rc == 0 and len(lines) >= 4
    assert sum("prio 101" in line and "valid" in line for line in lines) >= 1
    assert all("INVALID [ttl]" in line for line in lines if "prio 150" in line)
    with open(any_pcap, "rb") as f:
        head = f.read(24)
    assert int.from_bytes(head[20:24], "little") in (113, 276)  # a cooked capture


# --- no namespace needed: the classifier on damaged frames, and the gap arithmetic on edge cases -----------


def test_classify_never_raises_on_damaged_frames():
    from fastvrrp import _wire

    good = bytes(v3_advert("192.0.2.1", 51, 100))
    garp = bytes(Ether(src=VMAC) / ARP(op=1, hwsrc=VMAC, psrc="192.0.2.100", pdst="192.0.2.100"))
    for frame in (good, garp):
        assert wiretap.classify(frame, 1, _wire) is not None
        for cut in range(len(frame)):
            ev = wiretap.classify(frame[:cut], 1, _wire)
            # a cut advert is still an advert, judged invalid; a cut ARP is nothing
            assert ev is None or (ev.kind == wiretap.ADVERT and not ev.valid)


def test_ping_gap_edges():
    def ev(kind, t_ms, src="192.0.2.2"):
        dst = "192.0.2.1"
        if kind == wiretap.ECHO_REQUEST:
            src, dst = dst, src
        return wiretap.Event(t_ms * 1_000_000, kind, src, dst, ident=9)

    tap = wiretap.WireTap(None, None)
    seq = [ev(wiretap.ECHO_REPLY, 1000), ev(wiretap.ECHO_REQUEST, 1050), ev(wiretap.ECHO_REPLY, 1100),
           ev(wiretap.ECHO_REPLY, 1400), ev(wiretap.ECHO_REPLY, 1450, src="192.0.2.3"),  # another host
           ev(wiretap.ECHO_REPLY, 1500), ev(wiretap.ECHO_REPLY, 1550)]  # fmt: skip
    tap._events.extend([*seq, ev(wiretap.ECHO_REQUEST, 1900)])
    assert tap.ping_gap("192.0.2.2", 0.9) is None  # no reply at or before the start
    assert tap.ping_gap("192.0.2.2", 1.55) is None  # none after the end
    assert tap.ping_gap("192.0.2.2", 1.1) == pytest.approx(0.3)  # a reply exactly at the start counts
    assert tap.ping_gap("192.0.2.2", 1.2) == pytest.approx(0.3)
    # over a window: the longest gap between consecutive replies, the other host's reply not among them
    assert tap.ping_gap("192.0.2.2", 1.0, 1.45) == pytest.approx(0.3)
    assert tap.ping_gap("192.0.2.2", 1.4, 1.45) == pytest.approx(0.1)
    assert tap.ping_gap("192.0.2.3/24", 1.45, 1.5) is None
    assert [e.t for e in tap.snapshot(wiretap.PING) if e.icmp == "request"] == [1.05, 1.9]
