"""fastvrrp.tools.pcap: classic pcap (both byte orders, µs and ns), pcapng, damage, link layers."""

from __future__ import annotations

import io
import struct

import pytest

from fastvrrp.tools import pcap

T0 = 1_700_000_000_123_456_789  # ns


def classic(records, bo="<", nano=True, linktype=1, snaplen=65535, trailer=b""):
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(bo + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)
    for t_ns, data, *orig in records:
        sec, ns = divmod(t_ns, 10**9)
        frac = ns if nano else ns // 1000
        out += struct.pack(bo + "IIII", sec, frac, len(data), orig[0] if orig else len(data)) + data
    return out + trailer


def read(blob, name="x.pcap"):
    return list(pcap.read_stream(io.BytesIO(blob), name))


@pytest.mark.parametrize("bo", ["<", ">"])
@pytest.mark.parametrize("nano", [True, False])
def test_classic_both_orders_and_precisions(bo, nano):
    recs = read(classic([(T0, b"\x01" * 20), (T0 + 10**9, b"\x02" * 30, 1500)], bo, nano))
    assert [r.index for r in recs] == [1, 2]
    assert [r.offset for r in recs] == [24, 24 + 16 + 20]
    expect0 = T0 if nano else T0 // 1000 * 1000
    assert recs[0].t_ns == expect0
    assert recs[1].t_ns == expect0 + 10**9
    assert recs[0].data == b"\x01" * 20 and not recs[0].truncated
    assert recs[1].orig_len == 1500 and recs[1].truncated
    assert recs[0].ts_digits == (9 if nano else 6)
    assert recs[0].linktype == 1


def test_linktype_fcs_bits_are_masked():
    recs = read(classic([(T0, b"x")], linktype=0x10000000 | 113))
    assert recs[0].linktype == 113


def test_writer_round_trip(tmp_path):
    path = tmp_path / "w.pcap"
    with open(path, "wb") as f:
        w = pcap.PcapWriter(f, linktype=pcap.LINKTYPE_LINUX_SLL2)
        w.write(T0, b"abc")
        w.write(T0 + 5, b"defg", orig_len=100)
    recs = list(pcap.read_file(str(path)))
    assert [(r.t_ns, r.data, r.orig_len, r.linktype) for r in recs] == [
        (T0, b"abc", 3, 276),
        (T0 + 5, b"defg", 100, 276),
    ]


def test_empty_capture_has_no_records():
    assert read(classic([])) == []


# --- damage: the message names the file and the byte offset; records before the damage are delivered ------


def collect_until_error(blob, name="cap.pcap"):
    got = []
    with pytest.raises(pcap.PcapError) as ei:
        for r in pcap.read_stream(io.BytesIO(blob), name):
            got.append(r)
    return got, ei.value


def test_bad_magic():
    got, err = collect_until_error(b"GIF89a" + b"\0" * 40)
    assert got == [] and err.offset == 0
    assert str(err).startswith("cap.pcap: offset 0: not a pcap or pcapng file")


def test_too_short_for_magic():
    got, err = collect_until_error(b"\xd4\xc3")
    assert err.offset == 0 and "too short" in str(err)


def test_truncated_file_header():
    got, err = collect_until_error(classic([])[:17])
    assert err.offset == 4 and "truncated pcap file header (17 of 24 bytes)" in str(err)


def test_truncated_record_header():
    blob = classic([(T0, b"a" * 10)]) + b"\0" * 7
    got, err = collect_until_error(blob)
    assert len(got) == 1
    assert err.offset == 24 + 16 + 10
    assert "truncated record header (7 of 16 bytes)" in str(err)


def test_truncated_record_data():
    blob = classic([(T0, b"a" * 10), (T0, b"b" * 50)])[:-20]
    got, err = collect_until_error(blob)
    assert [r.data for r in got] == [b"a" * 10]
    assert err.offset == 50 and "truncated record: 30 of 50 bytes present" in str(err)


def test_impossible_length_is_damage_not_an_allocation():
    blob = classic([(T0, b"a" * 4)])
    blob += struct.pack("<IIII", 1, 0, 0x7FFFFFF0, 0x7FFFFFF0)
    got, err = collect_until_error(blob)
    assert len(got) == 1 and err.offset == 44 and "impossible record length" in str(err)


def test_missing_file_is_oserror():
    with pytest.raises(OSError):
        list(pcap.read_file("/nonexistent/x.pcap"))


# --- pcapng ---------------------------------------------------------------------------------------------


def ng_block(btype, body, bo="<"):
    body += b"\0" * (-len(body) % 4)
    total = 12 + len(body)
    return struct.pack(bo + "II", btype, total) + body + struct.pack(bo + "I", total)


def ng_shb(bo="<"):
    return ng_block(0x0A0D0D0A, struct.pack(bo + "IHHq", 0x1A2B3C4D, 1, 0, -1), bo)


def ng_idb(linktype, tsresol=None, bo="<"):
    opts = b""
    if tsresol is not None:
        opts = struct.pack(bo + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0" + struct.pack(bo + "HH", 0, 0)
    return ng_block(1, struct.pack(bo + "HHI", linktype, 0, 0) + opts, bo)


def ng_epb(if_id, ticks, data, bo="<", orig=None):
    body = struct.pack(bo + "IIIII", if_id, ticks >> 32, ticks & 0xFFFFFFFF, len(data), orig or len(data))
    return ng_block(6, body + data, bo)


@pytest.mark.parametrize("bo", ["<", ">"])
def test_pcapng_resolutions_interfaces_and_skipped_blocks(bo):
    blob = ng_shb(bo) + ng_idb(1, None, bo) + ng_idb(113, 9, bo) + ng_idb(276, 0x80 | 30, bo)
    blob += ng_epb(0, T0 // 1000, b"usec", bo)
    blob += ng_block(5, b"\0" * 8, bo)  # an interface statistics block: not a packet
    blob += ng_epb(1, T0, b"nsec", bo)
    blob += ng_epb(2, (T0 // 10**9) << 30, b"pow2", bo)
    recs = read(blob)
    assert [(r.index, r.linktype, r.data) for r in recs] == [
        (1, 1, b"usec"),
        (2, 113, b"nsec"),
        (3, 276, b"pow2"),
    ]
    assert recs[0].t_ns == T0 // 1000 * 1000 and recs[0].ts_digits == 6
    assert recs[1].t_ns == T0 and recs[1].ts_digits == 9
    assert recs[2].t_ns == T0 // 10**9 * 10**9


def test_pcapng_from_scapy(tmp_path):
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcapng

    p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Raw(b"hello")
    p.time = 1_700_000_000.5
    path = str(tmp_path / "s.pcapng")
    wrpcapng(path, [p, p])
    recs = list(pcap.read_file(path))
    assert [r.data for r in recs] == [bytes(p)] * 2
    assert recs[0].linktype == 1
    assert abs(recs[0].t_ns - 1_700_000_000_500_000_000) < 1000


def test_pcapng_damage():
    good = ng_shb() + ng_idb(1) + ng_epb(0, 5, b"a" * 8)
    got, err = collect_until_error(good + ng_epb(0, 6, b"b" * 40)[:-10], "n.pcapng")
    assert len(got) == 1 and err.offset == len(good) and "truncated pcapng block" in str(err)
    got, err = collect_until_error(good + ng_epb(3, 6, b"b"), "n.pcapng")
    assert len(got) == 1 and "undeclared interface 3" in str(err)
    bad_trailer = bytearray(ng_epb(0, 6, b"c" * 4))
    bad_trailer[-1] ^= 0xFF
    got, err = collect_until_error(good + bytes(bad_trailer), "n.pcapng")
    assert len(got) == 1 and "trailer" in str(err)


# --- link layers ------------------------------------------------------------------------------------------

IP4 = bytes([0x45]) + b"\0" * 19
IP6 = bytes([0x60]) + b"\0" * 39


def test_ethernet_and_vlan_tags():
    eth = b"\x01" * 6 + b"\x02" * 6
    assert pcap.link_payload(1, eth + b"\x08\x00" + IP4) == (0x0800, IP4)
    tagged = eth + b"\x81\x00\x00\x05" + b"\x86\xdd" + IP6
    assert pcap.link_payload(1, tagged) == (0x86DD, IP6)
    qinq = eth + b"\x88\xa8\x00\x05" + b"\x81\x00\x00\x06" + b"\x08\x00" + IP4
    assert pcap.link_payload(1, qinq) == (0x0800, IP4)
    assert pcap.link_payload(1, eth + b"\x00\x40" + IP4) is None  # 802.3 length field
    assert pcap.link_payload(1, eth + b"\x81\x00") is None  # cut inside the tag


def test_cooked_sll_and_sll2():
    sll = struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6, 0x0800)
    assert pcap.link_payload(113, sll + IP4) == (0x0800, IP4)
    sll2 = struct.pack("!HHIHBB8s", 0x86DD, 0, 3, 1, 0, 6, b"\x02" * 6)
    assert pcap.link_payload(276, sll2 + IP6) == (0x86DD, IP6)
    assert pcap.link_payload(113, sll[:10]) is None


def test_raw_ip_link_types():
    assert pcap.link_payload(101, IP4) == (0x0800, IP4)
    assert pcap.link_payload(101, IP6) == (0x86DD, IP6)
    assert pcap.link_payload(228, IP4) == (0x0800, IP4)
    assert pcap.link_payload(228, IP6) is None
    assert pcap.link_payload(229, IP6) == (0x86DD, IP6)
    assert pcap.link_payload(147, IP4) is None  # a link type we do not know
