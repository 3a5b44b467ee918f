"""`fastvrrp decode`: capture files written here (scapy's wrpcap and by hand), decoded by the real codec.

Packets are built in this file with struct and a local RFC 1071 sum, not with fastvrrp's own builder, so the
expected values come from the packet we wrote, not from the code under test.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys

import pytest
from scapy.layers.l2 import CookedLinux, Dot1Q, Ether
from scapy.packet import Raw
from scapy.utils import wrpcap, wrpcapng

from fastvrrp import cli

T0 = 1_700_000_000_000_000_000
MC4, MC6 = "224.0.0.18", "ff02::12"
SRC4, SRC6 = "192.0.2.1", "fe80::1"


def rfc1071(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def packed(a: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in a else socket.AF_INET, a)


def vrrp(
    version=3,
    vrid=51,
    prio=100,
    interval=100,
    addrs=("192.0.2.100",),
    src=SRC4,
    dst=MC4,
    form="pseudo",
    type_=1,
    auth_type=0,
    auth=b"",
    count=None,
    csum_xor=0,
):
    """A VRRP message. interval: centiseconds (v3) or seconds (v2)."""
    count = len(addrs) if count is None else count
    body = b"".join(packed(a) for a in addrs)
    if version == 2:
        head = struct.pack("!BBBBBBH", (2 << 4) | type_, vrid, prio, count, auth_type, interval, 0)
        msg = head + body + auth.ljust(8, b"\0")
    else:
        head = struct.pack("!BBBBHH", (version << 4) | type_, vrid, prio, count, interval & 0x0FFF, 0)
        msg = head + body
    pseudo = b""
    if version == 3 and ":" in src:  # RFC 8200 8.1
        pseudo = packed(src) + packed(dst) + struct.pack("!I3xB", len(msg), 112)
    elif version == 3 and form == "pseudo":
        pseudo = packed(src) + packed(dst) + struct.pack("!BBH", 0, 112, len(msg))
    c = rfc1071(pseudo + msg) ^ csum_xor
    return msg[:6] + struct.pack("!H", c) + msg[8:], c


def ipv4(payload, src=SRC4, dst=MC4, ttl=255, proto=112, frag=0):
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 1, frag, ttl, proto, 0, packed(src), packed(dst)
    )
    hdr = hdr[:10] + struct.pack("!H", rfc1071(hdr)) + hdr[12:]
    return hdr + payload


def ipv6(payload, src=SRC6, dst=MC6, hlim=255, nh=112, ext=b""):
    return (
        struct.pack("!IHBB16s16s", 6 << 28, len(ext) + len(payload), nh, hlim, packed(src), packed(dst))
        + ext
        + payload
    )


def eth(ip, vlan=None, pad=False):
    etype = 0x86DD if ip[0] >> 4 == 6 else 0x0800
    base = Ether(src="00:00:5e:00:01:33", dst="01:00:5e:00:00:12", type=0x8100 if vlan else etype)
    if vlan:
        base = base / Dot1Q(vlan=vlan, type=etype)
    if pad:
        ip = ip + b"\0" * 20
    return base / Raw(ip)


def expect(
    i, t, src=SRC4, dst=MC4, ttl=255, version=3, type_=1, vrid=51, prio=100, count=1, int_ms=1000,
    addrs=("192.0.2.100",), auth=None, csum=0, form="pseudo", reason=None, family=4, file="",
):  # fmt: skip
    return {
        "file": file, "frame": i, "time": t / 1e9, "time_ns": t, "family": family, "src": src, "dst": dst,
        "ttl": ttl, "version": version, "type": type_, "vrid": vrid, "priority": prio, "count": count,
        "adver_int_ms": int_ms, "addresses": list(addrs), "auth_type": auth, "checksum": csum,
        "checksum_form": form, "valid": reason is None, "reason": reason,
    }  # fmt: skip


def cases():
    """(frame, expected JSON without file) for valid packets, one broken packet per reason, and noise."""
    out = []
    t = T0

    def add(frame, **exp):
        nonlocal t
        t += 1_000_000
        frame.time = t / 1e9  # scapy writes µs; we chose whole ms so nothing is lost
        out.append((frame, None if exp.get("skip") else dict(exp, t=t)))

    m, c = vrrp(addrs=("192.0.2.100", "192.0.2.101"))
    add(eth(ipv4(m), pad=True), csum=c, count=2, addrs=("192.0.2.100", "192.0.2.101"))
    m, c = vrrp(prio=254, interval=10, form="message")
    add(eth(ipv4(m)), csum=c, prio=254, int_ms=100, form="message")
    m, c = vrrp(version=2, prio=255, interval=1, auth_type=1, auth=b"pw")
    add(eth(ipv4(m)), version=2, csum=c, prio=255, auth=1, form="message")
    v6 = ("fe80::100", "2001:db8::100")
    m, c = vrrp(prio=0, interval=5, addrs=v6, src=SRC6, dst=MC6)
    add(eth(ipv6(m)), family=6, src=SRC6, dst=MC6, prio=0, int_ms=50, addrs=v6, count=2, csum=c)
    # a hop-by-hop header (PadN to 8 bytes) before VRRP: walked over (RFC 8200 4.3)
    m, c = vrrp(vrid=9, addrs=("fe80::9",), src=SRC6, dst=MC6)
    hbh = bytes([112, 0, 1, 4, 0, 0, 0, 0])
    add(eth(ipv6(m, nh=0, ext=hbh)), family=6, src=SRC6, dst=MC6, vrid=9, addrs=("fe80::9",), csum=c)
    m, c = vrrp(vrid=7)
    add(eth(ipv4(m), vlan=5), vrid=7, csum=c)
    # one broken packet per reason
    m, c = vrrp()
    add(eth(ipv4(m, ttl=64)), ttl=64, csum=c, addrs=(), form=None, reason="ttl")
    m, c = vrrp(version=4)
    add(eth(ipv4(m)), version=4, csum=c, addrs=(), form=None, reason="version", int_ms=0)
    m, c = vrrp(version=2, interval=1, src=SRC6, dst=MC6, addrs=("fe80::1",))
    add(eth(ipv6(m)), family=6, src=SRC6, dst=MC6, version=2, csum=c, addrs=(), form=None, reason="version",
        auth=0)  # fmt: skip
    m, c = vrrp(type_=2)
    add(eth(ipv4(m)), type_=2, csum=c, addrs=(), form=None, reason="type")
    m, c = vrrp(count=3)
    add(eth(ipv4(m)), count=3, csum=c, addrs=(), form=None, reason="length")
    m, c = vrrp(csum_xor=0x0101)
    add(eth(ipv4(m)), csum=c, form=None, reason="checksum")  # the length check passed: addresses were read
    m, c = vrrp(vrid=0)
    add(eth(ipv4(m)), vrid=0, csum=c, reason="vrid")
    m, c = vrrp(interval=0)
    add(eth(ipv4(m)), int_ms=0, csum=c, reason="adver_int")
    m, c = vrrp(version=2, interval=1, auth_type=5)
    add(eth(ipv4(m)), version=2, auth=5, csum=c, form="message", reason="auth")
    # a fragment (MF set): VRRP is never fragmented; the codec rejects the IP header
    m, c = vrrp()
    add(eth(ipv4(m, frag=0x2000)), version=0, type_=0, vrid=0, prio=0, count=0, int_ms=0, addrs=(), csum=0,
        form=None, reason="ip", ttl=255)  # fmt: skip
    # noise that is not VRRP: ICMP echo, ARP, an IPv6 ICMP, a VRRP-less VLAN frame
    add(eth(ipv4(b"\x08\0\0\0\0\1\0\1", proto=1, dst="192.0.2.2")), skip=True)
    arp = bytes.fromhex("0001080006040001") + b"\2" * 6 + packed(SRC4) + b"\0" * 6 + packed(SRC4)
    add(Ether(dst="ff:ff:ff:ff:ff:ff", type=0x0806) / Raw(arp), skip=True)
    add(eth(ipv6(b"\x80\0\0\0\0\1\0\1", nh=58)), skip=True)
    return out


def run_cli(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def expected_json(items, path, frames=None):
    res = []
    for n, (_frame, exp) in enumerate(items, 1):
        if exp is None:
            continue
        e = dict(exp)
        t = e.pop("t")
        res.append(expect(n if frames is None else frames[n - 1], t, file=path, **e))
    return res


def test_json_ethernet_every_reason(tmp_path, capsys):
    items = cases()
    path = str(tmp_path / "eth.pcap")
    wrpcap(path, [f for f, _ in items])
    rc, out, err = run_cli(["decode", "--json", path], capsys)
    assert rc == 0 and err == ""
    got = [json.loads(line) for line in out.splitlines()]
    assert got == expected_json(items, path)
    reasons = {g["reason"] for g in got}
    assert reasons >= {
        None,
        "ttl",
        "version",
        "type",
        "length",
        "checksum",
        "vrid",
        "adver_int",
        "auth",
        "ip",
    }


def test_text_ethernet_in_words(tmp_path, capsys):
    items = cases()
    path = str(tmp_path / "eth.pcap")
    wrpcap(path, [f for f, _ in items])
    rc, out, err = run_cli(["decode", path], capsys)
    lines = out.splitlines()
    assert rc == 0 and len(lines) == sum(1 for _, e in items if e)
    first = lines[0]
    for word in ("2023-11-14 22:13:20.001000", "192.0.2.1 > 224.0.0.18", "VRRPv3", "vrid 51", "prio 100",
                 "int 1 s", "addrs 192.0.2.100,192.0.2.101", "ttl 255", "pseudo-header",
                 "valid"):  # fmt: skip
        assert word in first, (word, first)
    assert "message only, RFC 9568" in lines[1] and "int 100 ms" in lines[1]
    assert "VRRPv2" in lines[2] and 'auth simple password "pw"' in lines[2] and "address owner" in lines[2]
    assert "fe80::1 > ff02::12" in lines[3] and "resigning" in lines[3] and "int 50 ms" in lines[3]
    by_reason = {}
    for line in lines:
        if "INVALID [" in line:
            by_reason.setdefault(line.split("INVALID [")[1].split("]")[0], line)
    assert "TTL is 64, must be 255" in by_reason["ttl"]
    assert "version is 4" in by_reason["version"]
    assert "type is 2" in by_reason["type"]
    assert "too short" in by_reason["length"] and "20 bytes needed" in by_reason["length"]
    assert "wrong both with and without the IPv4 pseudo-header" in by_reason["checksum"]
    assert "VRID 0" in by_reason["vrid"]
    assert "interval is 0" in by_reason["adver_int"]
    assert "authentication type 5" in by_reason["auth"]
    assert "fragment" in by_reason["ip"] and "192.0.2.1 > 224.0.0.18" in by_reason["ip"]
    assert sum("VRRP version 2 does not exist over IPv6" in line for line in lines) == 1
    assert all("Traceback" not in line for line in lines)


def test_invalid_only_and_options(tmp_path, capsys):
    items = cases()
    path = str(tmp_path / "eth.pcap")
    wrpcap(path, [f for f, _ in items])
    rc, out, _ = run_cli(["decode", "--json", "--invalid", path], capsys)
    got = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and got and all(not g["valid"] for g in got)
    # unicast captures: the TTL rule is off, so the TTL-64 packet is valid
    rc, out, _ = run_cli(["decode", "--json", "--no-ttl-check", path], capsys)
    ttl64 = [json.loads(line) for line in out.splitlines() if json.loads(line)["ttl"] == 64]
    assert [(g["valid"], g["checksum_form"], g["addresses"]) for g in ttl64] == [
        (True, "pseudo", ["192.0.2.100"])
    ]
    # pseudo-header only: the RFC 9568-style advert (frame 2) now fails its checksum
    rc, out, _ = run_cli(["decode", "--json", "--checksum", "pseudo", path], capsys)
    second = json.loads(out.splitlines()[1])
    assert (second["frame"], second["valid"], second["reason"]) == (2, False, "checksum")


def test_cooked_sll_sll2_raw_and_pcapng(tmp_path, capsys):
    m4, c4 = vrrp(vrid=12)
    m6, c6 = vrrp(vrid=13, addrs=("fe80::d",), src=SRC6, dst=MC6)
    p4, p6 = ipv4(m4), ipv6(m6)
    t1, t2 = T0 + 10**9, T0 + 2 * 10**9
    exp4 = dict(vrid=12, csum=c4)
    exp6 = dict(vrid=13, csum=c6, addrs=("fe80::d",), family=6, src=SRC6, dst=MC6)
    # SLL with scapy, as `tcpdump -i any` wrote it before libpcap 1.10
    sll = [CookedLinux(pkttype=0, proto=0x0800) / Raw(p4), CookedLinux(pkttype=0, proto=0x86DD) / Raw(p6)]
    sll[0].time, sll[1].time = t1 / 1e9, t2 / 1e9
    f_sll = str(tmp_path / "sll.pcap")
    wrpcap(f_sll, sll)
    # SLL2 (276) and raw IP (101) by hand, big-endian, nanosecond magic
    f_sll2, f_raw = str(tmp_path / "sll2.pcap"), str(tmp_path / "raw.pcap")
    for fname, linktype, frames in (
        (f_sll2, 276, [struct.pack("!HHIHBB8s", et, 0, 2, 1, 0, 6, b"\2" * 6) + p
                       for et, p in ((0x800, p4), (0x86DD, p6))]),
        (f_raw, 101, [p4, p6]),
    ):  # fmt: skip
        with open(fname, "wb") as f:
            f.write(struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, linktype))
            for t, fr in zip((t1, t2), frames, strict=True):
                f.write(struct.pack(">IIII", t // 10**9, t % 10**9, len(fr), len(fr)) + fr)
    f_ng = str(tmp_path / "eth.pcapng")
    ngp = [eth(p4), eth(p6)]
    ngp[0].time, ngp[1].time = t1 / 1e9, t2 / 1e9
    wrpcapng(f_ng, ngp)
    for path in (f_sll, f_sll2, f_raw, f_ng):
        rc, out, err = run_cli(["decode", "--json", path], capsys)
        assert rc == 0 and err == "", path
        got = [json.loads(line) for line in out.splitlines()]
        assert got == [expect(1, t1, file=path, **exp4), expect(2, t2, file=path, **exp6)], path


def test_snaplen_cut_is_blamed_on_the_capture(tmp_path, capsys):
    m, _c = vrrp(addrs=("192.0.2.100", "192.0.2.101", "192.0.2.102"))
    frame = bytes(eth(ipv4(m)))
    path = str(tmp_path / "snap.pcap")
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 40, 1))
        f.write(struct.pack("<IIII", T0 // 10**9, 0, 40, len(frame)) + frame[:40])
    rc, out, _ = run_cli(["decode", "--json", path], capsys)
    (g,) = [json.loads(line) for line in out.splitlines()]
    assert (rc, g["valid"], g["reason"]) == (0, False, "snaplen")
    # 14 + 20 bytes of headers, then the first 6 bytes of the VRRP message: its fields are there to read
    assert (g["version"], g["type"], g["vrid"], g["priority"], g["count"], g["adver_int_ms"]) == (
        3, 1, 51, 100, 3, 1000
    )  # fmt: skip
    rc, out, _ = run_cli(["decode", path], capsys)
    assert "kept only 40 of 54 bytes" in out
    assert "VRRPv3 type 1 vrid 51 prio 100 count 3 int 1 s" in out


@pytest.mark.parametrize("cut", [1, 2, 6, 7])
def test_message_cut_inside_the_header_still_shows_its_fields(tmp_path, capsys, cut):
    """The sender's packet is short (the IP total length says so): the codec stops at "length" and reads
    no field under 8 bytes; decode shows the ones whose bytes are there."""
    m, _c = vrrp(version=3, vrid=77, prio=200, interval=25)
    frames = [eth(ipv4(m[:cut])), eth(ipv6(vrrp(vrid=78, addrs=("fe80::1",), src=SRC6, dst=MC6)[0][:cut]))]
    path = str(tmp_path / "cut.pcap")
    wrpcap(path, frames)
    rc, out, _ = run_cli(["decode", "--json", path], capsys)
    g4, g6 = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and (g4["reason"], g6["reason"]) == ("length", "length")
    assert (g4["version"], g4["type"], g6["version"], g6["type"]) == (3, 1, 3, 1)
    assert (g4["vrid"], g6["vrid"]) == ((77, 78) if cut >= 2 else (0, 0))
    assert g4["priority"] == (200 if cut >= 3 else 0)
    assert g4["adver_int_ms"] == (250 if cut >= 6 else 0)
    rc, out, _ = run_cli(["decode", path], capsys)
    line4 = out.splitlines()[0]
    assert f"VRRPv3 type 1{' vrid 77' if cut >= 2 else ''}" in line4
    assert f"the message is {cut} bytes, shorter than the 8-byte VRRP header" in line4
    assert ("int 250 ms" in line4) == (cut >= 6)


def test_checksum_of_v2_and_ipv6_names_its_form(tmp_path, capsys):
    m2, c2 = vrrp(version=2, interval=1, csum_xor=0x0101)
    m6, c6 = vrrp(addrs=("fe80::1",), src=SRC6, dst=MC6, csum_xor=0x0101)
    path = str(tmp_path / "csum.pcap")
    wrpcap(path, [eth(ipv4(m2)), eth(ipv6(m6))])
    rc, out, _ = run_cli(["decode", path], capsys)
    v2, v6 = out.splitlines()
    assert f"checksum 0x{c2:04x} is wrong on the message alone (RFC 3768 5.3.8)" in v2
    assert f"checksum 0x{c6:04x} is wrong with the IPv6 pseudo-header (RFC 5798 5.2.8)" in v6


@pytest.mark.parametrize(
    ("policy", "form", "words"),
    [
        ("pseudo", "message", "wrong with the IPv4 pseudo-header, the only form --checksum pseudo checks; "
         "it is right on the message alone (RFC 9568 style) (--checksum accept-both accepts it)"),
        ("message", "pseudo", "wrong on the message alone (RFC 9568 style), the only form --checksum message "
         "checks; it is right with the IPv4 pseudo-header (--checksum accept-both accepts it)"),
        ("pseudo", "broken", "wrong with the IPv4 pseudo-header, the only form --checksum pseudo checks; "
         "it is wrong on the message alone (RFC 9568 style) too"),
        ("accept-both", "broken", "wrong both with and without the IPv4 pseudo-header"),
    ],
)  # fmt: skip
def test_checksum_message_names_the_form_checked(tmp_path, capsys, policy, form, words):
    if form == "broken":
        m, c = vrrp(csum_xor=0x0101)
    else:
        m, c = vrrp(form=form)
    path = str(tmp_path / "csum.pcap")
    wrpcap(path, [eth(ipv4(m))])
    rc, out, _ = run_cli(["decode", "--checksum", policy, path], capsys)
    assert rc == 0 and "INVALID [checksum]" in out and f"checksum 0x{c:04x} is {words}" in out, out
    assert "wrong both" not in out or policy == "accept-both"
    # the form that passes is named when it is accepted
    if form != "broken":
        rc, out, _ = run_cli(["decode", "--checksum", form, path], capsys)
        assert "valid" in out and ("pseudo-header" if form == "pseudo" else "message only") in out


# --- damaged and missing files: a message with the file and byte offset, exit 2, earlier packets printed


def good_pcap(tmp_path, name="good.pcap", n=2):
    path = str(tmp_path / name)
    frames = []
    for i in range(n):
        m, _ = vrrp(vrid=20 + i)
        fr = eth(ipv4(m))
        fr.time = (T0 + i * 10**6) / 1e9
        frames.append(fr)
    wrpcap(path, frames)
    return path


def test_truncated_record(tmp_path, capsys):
    path = good_pcap(tmp_path, n=3)
    data = open(path, "rb").read()
    rec_len = (len(data) - 24) // 3
    open(path, "wb").write(data[:-10])
    rc, out, err = run_cli(["decode", path], capsys)
    assert rc == 2
    assert [line.split(" vrid ")[1].split()[0] for line in out.splitlines()] == ["20", "21"]
    assert (
        err == f"fastvrrp decode: {path}: offset {24 + 2 * rec_len}: "
        f"truncated record: {rec_len - 26} of {rec_len - 16} bytes present\n"
    )


def test_truncated_header_and_bad_magic(tmp_path, capsys):
    p1 = str(tmp_path / "short.pcap")
    open(p1, "wb").write(open(good_pcap(tmp_path), "rb").read()[:20])
    rc, out, err = run_cli(["decode", p1], capsys)
    assert (rc, out) == (2, "")
    assert err == f"fastvrrp decode: {p1}: offset 4: truncated pcap file header (20 of 24 bytes)\n"
    p2 = str(tmp_path / "text.pcap")
    open(p2, "wb").write(b"hello, this is not a capture\n")
    rc, out, err = run_cli(["decode", "--json", p2], capsys)
    assert (rc, out) == (2, "")
    assert err == f"fastvrrp decode: {p2}: offset 0: not a pcap or pcapng file (magic 68656c6c)\n"


def test_several_files_damage_does_not_hide_the_others(tmp_path, capsys):
    good = good_pcap(tmp_path)
    missing = str(tmp_path / "nope.pcap")
    rc, out, err = run_cli(["decode", "--json", missing, good], capsys)
    assert rc == 2
    assert [json.loads(line)["vrid"] for line in out.splitlines()] == [20, 21]
    assert err == f"fastvrrp decode: {missing}: No such file or directory\n"


def test_console_entry_point_no_traceback(tmp_path):
    path = good_pcap(tmp_path)
    open(path, "ab").write(b"\x01\x02\x03")
    p = subprocess.run(
        [sys.executable, "-m", "fastvrrp", "decode", path], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 2
    assert len(p.stdout.splitlines()) == 2
    assert "Traceback" not in p.stderr and "truncated record header (3 of 16 bytes)" in p.stderr


@pytest.mark.parametrize("argv", [["decode"], ["decode", "--checksum", "sideways", "x.pcap"]])
def test_usage_errors(argv, capsys):
    rc, out, err = run_cli(argv, capsys)
    assert rc == cli.EXIT_USAGE and "fastvrrp decode:" in err
