"""The density lab's analysis (fastvrrp.lab.density): gaps per VRID, the rate share, backup adverts, and the
pcap decoding of the observer, on hand-made stamps and frames."""

from __future__ import annotations

import struct

import pytest

from fastvrrp.lab.density import (
    PCAP_NS_MAGIC,
    PCAP_US_MAGIC,
    Advert,
    analyse,
    density_instances,
    first_advert_after,
    largest_gaps,
    parse_pcap,
    segment_addr,
    segments_for,
)

MS = 1_000_000


def test_largest_gap_inside_the_window():
    ts = {"a": [0, 10 * MS, 20 * MS, 45 * MS, 55 * MS]}
    assert largest_gaps(ts, 0, 55 * MS) == {"a": 25 * MS}


def test_edges_are_closed_by_the_adverts_just_outside():
    # window [100, 200] ms: last before is 95, first after is 230 -> the gap 180 -> 230 counts (50 ms)
    ts = {"a": [95 * MS, 120 * MS, 150 * MS, 180 * MS, 230 * MS]}
    assert largest_gaps(ts, 100 * MS, 200 * MS) == {"a": 50 * MS}
    # without anything outside, the window edges close it
    ts = {"a": [120 * MS, 150 * MS, 170 * MS]}
    assert largest_gaps(ts, 100 * MS, 200 * MS) == {"a": 30 * MS}


def test_a_key_silent_in_the_window_has_a_gap_across_it():
    ts = {"a": [10 * MS, 300 * MS]}
    assert largest_gaps(ts, 100 * MS, 200 * MS) == {"a": 290 * MS}


def _adverts(host, seg, vrid, start_ms, step_ms, n, prio=200):
    return [Advert((start_ms + i * step_ms) * MS, seg, host, vrid, prio) for i in range(n)]


def test_analyse_counts_rate_gaps_and_backup_adverts():
    # 2 instances on segments 0 and 1 (1 per segment), A = 10 ms, window [1000, 2000] ms
    adv = _adverts(1, 0, 1, 990, 10, 102)  # every 10 ms from 990 to 2000
    adv += _adverts(9, 1, 1, 990, 10, 50)  # host 9 = router 1 on segment 1, 990 .. 1480
    adv += _adverts(9, 1, 1, 1530, 10, 48)  # a 50 ms hole 1480 -> 1530, then on to 2000
    adv += _adverts(10, 1, 1, 1500, 10, 3, prio=100)  # router 2 advertised three times: two masters
    adv += [Advert(1600 * MS, 1, 10, 1, 0)]  # a priority-0 advert is a resignation, not a master
    rep = analyse(adv, 1.0, 2.0, 10, master=1, instances=2, mdi_ms=36.1, per_segment=1)
    assert rep.master_adverts == 101 + 98 - 1  # 990 is outside; segment 1 starts at 990 too
    assert rep.expected_adverts == pytest.approx(200)
    assert rep.gaps_ms[(0, 1)] == pytest.approx(10)
    assert rep.gaps_ms[(1, 1)] == pytest.approx(50)
    assert rep.worst_vrid == (1, 1) and rep.late_vrids == 1
    assert rep.other_adverts == {2: 3} and rep.backup_adverts == 3
    assert rep.silent == 0


def test_analyse_reports_a_silent_instance_with_a_gap_of_the_window():
    adv = _adverts(1, 0, 1, 990, 10, 102)
    rep = analyse(adv, 1.0, 2.0, 10, master=1, instances=2, mdi_ms=36.1, per_segment=1)
    assert rep.silent == 1 and rep.gaps_ms[(1, 1)] == pytest.approx(1000)


def test_analyse_refuses_a_capture_that_ends_before_the_window():
    adv = _adverts(1, 0, 1, 990, 10, 50)
    with pytest.raises(ValueError, match="ends before"):
        analyse(adv, 1.0, 2.0, 10, master=1, instances=1, mdi_ms=36.1)


def _frame(src_last: int, vrid: int, prio: int, proto: int = 112) -> bytes:
    eth = b"\x01\x00\x5e\x00\x00\x12" + b"\x00\x00\x5e\x00\x01\x01" + b"\x08\x00"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 32, 0, 0, 255, proto, 0, bytes([192, 0, 2, src_last]),
                     bytes([224, 0, 0, 18]))  # fmt: skip
    return (eth + ip + bytes([0x31, vrid, prio, 1, 0, 1]))[:40]


def _pcap(records, magic=PCAP_NS_MAGIC) -> bytes:
    out = struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 40, 1)
    for sec, frac, fr in records:
        out += struct.pack("<IIII", sec, frac, len(fr), 64) + fr
    return out


def test_parse_pcap_reads_vrrp_and_skips_the_rest():
    data = _pcap([(10, 5, _frame(9, 7, 200)), (10, 6, _frame(9, 7, 200, proto=17)), (11, 0, _frame(2, 8, 0))])
    got = parse_pcap(data, 3)
    assert got == [Advert(10_000_000_005, 3, 9, 7, 200), Advert(11_000_000_000, 3, 2, 8, 0)]
    us = parse_pcap(_pcap([(1, 2, _frame(1, 1, 100))], magic=PCAP_US_MAGIC), 0)
    assert us[0].t_ns == 1_000_002_000
    with pytest.raises(ValueError):
        parse_pcap(b"\x00" * 24, 0)


def test_plan_addresses_and_instances():
    assert segments_for(1000) == 4 and segments_for(4000) == 16 and segments_for(1) == 1
    assert segment_addr(0, 1) == "192.0.2.1" and segment_addr(15, 6) == "192.0.2.126"
    with pytest.raises(ValueError):
        segment_addr(16, 1)
    inst = density_instances(501, 100, 10, owner=(0, 1))
    assert [i.interface for i in (inst[0], inst[249], inst[250], inst[500])] == [
        "eth0",
        "eth0",
        "eth1",
        "eth2",
    ]
    assert (
        inst[250].vrid == 1 and inst[250].vips == ("203.0.113.1/32",) and inst[500].vips[0].startswith("198.")
    )
    assert inst[0].priority == 255 and inst[1].priority == 100
    assert len({i.iname for i in inst}) == 501


def test_first_advert_after():
    adv = [Advert(5 * MS, 0, 1, 1, 255), Advert(30 * MS, 0, 1, 1, 255), Advert(20 * MS, 0, 2, 1, 100)]
    assert first_advert_after(adv, 1, 0.010) == pytest.approx(0.020)
    assert first_advert_after(adv, 3, 0.0) is None
