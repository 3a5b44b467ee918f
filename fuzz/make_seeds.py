"""Write the seed corpora under fuzz/corpus/ that can be made from the repository itself (run from the
repository root: `python fuzz/make_seeds.py`; the output is committed, so this only needs running again when
a layout changes). The kernel's own messages and a real capture come from fuzz/capture_seeds.py.

  wire, engine  adverts built by the reference codec tests/refcodec.py (v2, v3 over IPv4 both checksum
                forms, v3 over IPv6), in the harness layouts (see fuzz_wire.py, fuzz_engine.py)
  pcap          classic pcap files (us and ns, both byte orders, Ethernet / VLAN / SLL / SLL2 / raw) and
                pcapng with the same adverts
  config        the configurations of tests/configs (an include folded into the NUL-separated second file)
  dns           responses the way resolvers send them: A, AAAA, CNAME chain, NXDOMAIN with an SOA, TC
  http          responses: plain, Content-Length, chunked, redirect, error, keep-alive

and fuzz/config.dict, the libFuzzer dictionary of fuzz_config.py: every keyword the reader knows (the
quoted identifiers of fastvrrp/config) and the tokens of the line-level language.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import socket
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import refcodec  # noqa: E402

from fastvrrp.health import dnswire  # noqa: E402

OUT = os.path.join(ROOT, "fuzz", "corpus")


def ip4(s: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, s)


def ip6(s: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, s)


def write(kind: str, name: str, data: bytes) -> None:
    d = os.path.join(OUT, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def ipv4_packet(msg: bytes, src: bytes, dst: bytes, ttl: int = 255) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(msg), 0, 0, ttl, 112, 0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", refcodec.checksum(hdr)) + hdr[12:]
    return hdr + msg


def ipv6_packet(msg: bytes, src: bytes, dst: bytes, hlim: int = 255) -> bytes:
    return struct.pack("!IHBB", 0x60000000, len(msg), 112, hlim) + src + dst + msg


S4, P4, G4 = ip4("192.0.2.2"), ip4("192.0.2.3"), ip4("224.0.0.18")
S6, G6 = ip6("2001:db8::2"), ip6("ff02::12")


def adverts() -> dict[str, tuple[int, bytes, bytes, bytes]]:
    """name -> (family, msg, src, dst)"""
    vips4 = [ip4("192.0.2.100"), ip4("192.0.2.101")]
    b = refcodec.build_advert
    return {
        "v3_ipv4_pseudo": (4, b(version=3, family=4, vrid=1, priority=100, adver_int_ms=1000,
                                addresses=vips4, src=S4, dst=G4), S4, G4),
        "v3_ipv4_message": (4, b(version=3, family=4, vrid=2, priority=100, adver_int_ms=1000,
                                 addresses=vips4[:1], src=S4, dst=G4, checksum_form=refcodec.CS_MESSAGE),
                            S4, G4),
        "v3_ipv4_unicast": (4, b(version=3, family=4, vrid=2, priority=100, adver_int_ms=1000,
                                 addresses=vips4, src=S4, dst=P4), S4, P4),
        "v2_pass": (4, b(version=2, family=4, vrid=3, priority=100, adver_int_ms=1000, addresses=vips4,
                         src=S4, dst=G4, auth_type=1, auth_data=b"secret"), S4, G4),
        "v2_none": (4, b(version=2, family=4, vrid=4, priority=150, adver_int_ms=3000, addresses=vips4,
                         src=S4, dst=G4), S4, G4),
        "v3_ipv4_prio0": (4, b(version=3, family=4, vrid=1, priority=0, adver_int_ms=1000, addresses=vips4,
                               src=S4, dst=G4), S4, G4),
        "v3_ipv6": (6, b(version=3, family=6, vrid=1, priority=100, adver_int_ms=1000,
                         addresses=[ip6("fe80::1"), ip6("2001:db8::100")], src=S6, dst=G6), S6, G6),
        "v3_ipv6_vrid2": (6, b(version=3, family=6, vrid=2, priority=100, adver_int_ms=1000,
                               addresses=[ip6("fe80::1")], src=S6, dst=G6), S6, G6),
    }  # fmt: skip


def wire_and_engine() -> None:
    ads = adverts()
    for name, (fam, msg, src, dst) in ads.items():
        if fam == 4:
            pkt = ipv4_packet(msg, src, dst)
            write("wire", name, bytes([0b0010]) + pkt)  # TTL rule, accept both
            write("wire", name + "_notll", bytes([0b0100]) + pkt)  # no TTL rule, pseudo only
        else:
            write("wire", name, bytes([0b0011]) + src + dst + bytes([255]) + msg)
            write("wire", name + "_nohop", bytes([0b10011]) + src + dst + bytes([0]) + msg)
    # engine: byte 1 = slot modes (slot 1 backup, 2 master, 3 backup, 4 timer): the fast path absorbs the
    # backup slots' master adverts; the others become events or drops.
    for fam, flag in ((4, 0b0010), (6, 0b0011)):
        items = []
        for _name, (f, msg, src, dst) in ads.items():
            if f != fam:
                continue
            one = ipv4_packet(msg, src, dst) if fam == 4 else src + dst + bytes([255]) + msg
            items.append(one)
        body = b"".join(len(x).to_bytes(2, "big") + x for x in items * 2)
        write("engine", f"ipv{fam}_mixed", bytes([flag, 0b00100110]) + body)
        write("engine", f"ipv{fam}_fastpath_off", bytes([flag | 16, 0b11100110]) + body)


def _pcap(records: list[bytes], linktype: int, bo: str = "<", nano: bool = False) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(bo + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)
    for i, r in enumerate(records):
        out += struct.pack(bo + "IIII", 1_700_000_000 + i, 123456, len(r), len(r)) + r
    return out


def _pcapng(records: list[bytes], linktype: int) -> bytes:
    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)  # if_tsresol = ns
    idb = block(1, struct.pack("<HHI", linktype, 0, 262144) + opts)
    out = shb + idb
    t = 1_700_000_000 * 10**9
    for r in records:
        out += block(6, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(r), len(r)) + r)
    out += block(3, struct.pack("<I", len(records[0])) + records[0])  # a simple packet block
    return out


def pcaps() -> None:
    ads = adverts()
    v4 = [ipv4_packet(m, s, d) for f, m, s, d in ads.values() if f == 4]
    v6 = [ipv6_packet(m, s, d) for f, m, s, d in ads.values() if f == 6]
    mac = bytes.fromhex("00005e000101") + bytes.fromhex("020000000002")
    eth = [mac + b"\x08\x00" + p + b"\0" * max(0, 46 - len(p)) for p in v4]
    eth += [mac + b"\x86\xdd" + p for p in v6]
    vlan = [mac + b"\x81\x00\x00\x0a\x08\x00" + p for p in v4[:2]]
    sll = [struct.pack("!HHH8sH", 0, 1, 6, b"\0" * 8, 0x0800) + p for p in v4[:2]]
    sll2 = [struct.pack("!HHIHBB8s", 0x86DD, 0, 2, 1, 0, 6, b"\0" * 8) + p for p in v6]
    write("pcap", "ethernet_us.pcap", _pcap(eth, 1))
    write("pcap", "ethernet_ns_be.pcap", _pcap(eth[:3], 1, ">", nano=True))
    write("pcap", "vlan.pcap", _pcap(vlan, 1))
    write("pcap", "sll.pcap", _pcap(sll, 113))
    write("pcap", "sll2.pcap", _pcap(sll2, 276))
    write("pcap", "raw.pcap", _pcap(v4[:2] + v6, 101))
    write("pcap", "ethernet.pcapng", _pcapng(eth, 1))
    # an IPv6 advert behind a hop-by-hop header, and a cut-short frame (snaplen)
    hbh = struct.pack("!BB6x", 112, 0)
    p = v6[0]
    ext = p[:6] + b"\x00" + p[7:40] + hbh + p[40:]
    ext = ext[:4] + struct.pack("!H", len(ext) - 40) + ext[6:]
    write("pcap", "ipv6_hbh.pcap", _pcap([mac + b"\x86\xdd" + ext], 1))
    cut = _pcap([eth[0][:40]], 1)
    cut = cut[:24] + cut[24:32] + struct.pack("<II", 40, len(eth[0])) + cut[40:]
    write("pcap", "snaplen.pcap", cut)


def configs() -> None:
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "configs", "*", "*.conf"))):
        kind = os.path.basename(os.path.dirname(path))
        with open(path, "rb") as f:
            text = f.read()
        if b"include" in text:
            incs = b"".join(open(p, "rb").read() for p in sorted(glob.glob(os.path.join(ROOT, "tests",
                            "configs", kind, "inc.d", "*.inc"))))  # fmt: skip
            text = b"include inc.conf\n" + b"\0" + incs if incs else text.replace(b"/", b"_")
        write("config", f"{kind}_{os.path.basename(path)}", text)


def dns() -> None:
    q = dnswire.build_query(0x1234, "www.example.test", dnswire.TYPE_A)
    write("dns", "a", dnswire.build_response(q, [(1, ip4("192.0.2.10")), (1, ip4("192.0.2.11"))]))
    q6 = dnswire.build_query(0x4321, "www.example.test", dnswire.TYPE_AAAA)
    write("dns", "aaaa", dnswire.build_response(q6, [(28, ip6("2001:db8::10"))]))
    write("dns", "nxdomain", dnswire.build_response(q, [], rcode=3))
    # CNAME chain with compression into the CNAME's rdata, then an A for the target; SOA in authority
    hdr = struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 2, 1, 0)
    qname = dnswire.encode_name("www.example.test")
    body = hdr + qname + struct.pack("!HH", 1, 1)
    target = b"\x03web" + b"\xc0\x10"  # web.example.test (pointer to "example.test" in the question)
    target_at = len(body) + 12  # the CNAME's rdata, after its owner pointer (2) and fixed fields (10)
    body += b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 300, len(target)) + target
    body += b"\xc0" + bytes([target_at]) + struct.pack("!HHIH", 1, 1, 60, 4)
    body += ip4("192.0.2.12")
    soa = b"\x02ns\xc0\x10" + b"\x05admin\xc0\x10" + struct.pack("!IIIII", 1, 3600, 600, 86400, 60)
    body += b"\xc0\x10" + struct.pack("!HHIH", 6, 1, 60, len(soa)) + soa
    write("dns", "cname_chain", body)
    write("dns", "truncated_tc", struct.pack("!HHHHHH", 0x1234, 0x8380, 1, 0, 0, 0) + qname + b"\0\1\0\1")


def http() -> None:
    md5 = hashlib.md5(b"hello").hexdigest()
    assert md5 == "5d41402abc4b2a76b9719d911017c592"
    seeds = {
        "ok_plain": b"\x00HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\n\r\nok\n",
        "ok_length_digest": b"\x01HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        "chunked_regex": b"\x22HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nstat\r\n6;ext=1\r\nus: up\r\n0\r\n\r\n",
        "redirect": b"\x08HTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n",
        "error": b"\x00HTTP/1.0 503 Service Unavailable\r\n\r\ndown",
        "to_eof_regex_no_match": b"\x46HTTP/1.1 200 OK\nX-Header: a:b\n\nstatus: down\n",
    }
    for name, data in seeds.items():
        write("http", name, data)


def config_dict() -> None:
    words = set()
    for path in glob.glob(os.path.join(ROOT, "fastvrrp", "config", "*.py")):
        with open(path) as f:
            words.update(re.findall(r'"([a-z][a-z0-9_]{2,40})"', f.read()))
    words.update(
        [
            "{",
            "}",
            "@",
            "@^",
            "$",
            "${",
            "~SEQ(",
            "~SEQx(",
            "~LST(",
            "include",
            "${_PWD}",
            "\\",
            "${_INSTANCE}",
            "${_RANDOM 1 9}",
            "${_HASH}",
            "${_BANG}",
            "${_ENV FUZZ}",
            "!",
            "#",
            '"',
            "'",
            "192.0.2.1/24",
            "2001:db8::1/64",
            "eth0",
            "MASTER",
            "BACKUP",
            "PASS",
            "AH",
            "VI_1",
        ]
    )
    lines = ["# libFuzzer dictionary for fuzz_config.py, written by fuzz/make_seeds.py"]
    lines += ['"' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in sorted(words)]
    with open(os.path.join(ROOT, "fuzz", "config.dict"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    config_dict()
    wire_and_engine()
    pcaps()
    configs()
    dns()
    http()
