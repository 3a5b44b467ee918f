"""Regression tests for what the fuzz harnesses (fuzz/, docs/fuzzing.md) found: each one the smallest input
of its kind, written out here, with the answer the parser must now give."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import struct
import subprocess
import sys

import pytest

from fastvrrp import cli, config
from fastvrrp.config.to_core import instance_config
from fastvrrp.health import checks
from fastvrrp.health.spec import UrlSpec
from fastvrrp.io import netlink
from fastvrrp.tools import decode

# --- fastvrrp decode: a pcapng timestamp beyond the calendar ------------------------------------------


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def _pcapng_at(ticks: int, frame: bytes) -> bytes:
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(1, struct.pack("<HHI", 1, 0, 65535))  # Ethernet, microsecond ticks
    epb = _block(6, struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame)) + frame)
    return shb + idb + epb


def test_decode_prints_a_packet_whose_time_is_past_year_9999(tmp_path, capsys):
    # A VRRPv3 advert (vrid 7, 192.0.2.1 -> 224.0.0.18, checksum not right: it is still printed).
    msg = bytes([0x31, 7, 100, 0, 0, 100, 0, 0])
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 255, 112, 0, bytes([192, 0, 2, 1]), bytes([224, 0, 0, 18])
    )
    frame = bytes(6) + bytes(6) + b"\x08\x00" + ip + msg
    path = tmp_path / "future.pcapng"
    path.write_bytes(_pcapng_at(2**64 - 1, frame))  # 584,554 years after 1970
    rc = cli.main(["decode", str(path)])
    out, err = capsys.readouterr()
    assert (rc, err) == (0, "")
    assert out.startswith("@18446744073709.551615 192.0.2.1 > 224.0.0.18 VRRPv3 vrid 7 prio 100 ")
    assert decode.time_text(-(10**30), 9).startswith("@-")


@pytest.mark.parametrize("ihl,total", [(0, 4), (1, 8), (4, 16), (5, 12)])
def test_decode_ip_total_length_under_the_fixed_header(tmp_path, capsys, ihl, total):
    """A padded frame whose IPv4 total length is under 20 bytes: decode once cut the packet to that length
    and then read the TTL and addresses past its end (IndexError). The header is now judged by the codec
    ("ip") with the addresses and TTL shown as sent."""
    msg = bytes([0x31, 7, 100, 1, 0, 100, 0, 0]) + bytes([192, 0, 2, 100])
    src, dst = bytes([192, 0, 2, 1]), bytes([224, 0, 0, 18])
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 0, 0, 255, 112, 0, src, dst)
    frame = bytes(6) + bytes(6) + b"\x08\x00" + ip + msg + bytes(20)  # link padding after the packet
    path = tmp_path / "short.pcapng"
    path.write_bytes(_pcapng_at(0, frame))
    rc = cli.main(["decode", "--json", str(path)])
    out, err = capsys.readouterr()
    (g,) = [json.loads(line) for line in out.splitlines()]
    assert (rc, err) == (0, "")
    got = (g["valid"], g["reason"], g["src"], g["dst"], g["ttl"])
    assert got == (False, "ip", "192.0.2.1", "224.0.0.18", 255)


# --- HTTP check: what a server may answer -------------------------------------------------------------


def _read(response: bytes, url: UrlSpec, eof: bool = True) -> str:
    async def go() -> str:
        reader = asyncio.StreamReader(limit=1024)
        reader.feed_data(response)
        if eof:
            reader.feed_eof()
        # Without end of stream a reader that waits for more would hang: the answer must come first.
        return await asyncio.wait_for(checks.read_response(reader, url), 5)

    return asyncio.run(go())


DIGEST = UrlSpec(path="/", digest="5d41402abc4b2a76b9719d911017c592")


@pytest.mark.parametrize(
    "response, detail",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nhello", "bad content-length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: " + b"a" * 2000 + b"\r\n\r\nhello", "line too long"),
        (b"HTTP/1.1 200 " + b"O" * 2000 + b"\r\n\r\nhello", "line too long"),
    ],
)
def test_http_malformed_answers_are_bad_responses(response, detail):
    with pytest.raises(checks.CheckFailed) as e:
        _read(response, DIGEST)
    assert (e.value.reason, e.value.detail) == ("bad_response", detail)


def test_http_chunk_over_the_body_cap_is_refused_before_it_is_read():
    # 2 GiB announced, nothing sent after it and the connection left open: refused at once.
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n80000000\r\n"
    with pytest.raises(checks.CheckFailed) as e:
        _read(head, DIGEST, eof=False)
    assert (e.value.reason, e.value.detail) == ("bad_response", "body too large")


def test_http_good_answers_still_pass():
    assert _read(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", DIGEST) == "/ 200"
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;x=y\r\nlo\r\n0\r\n\r\n"
    assert _read(chunked, DIGEST) == "/ 200"


# --- netlink: messages shorter than their headers ------------------------------------------------------


def _nlmsg(mtype: int, payload: bytes, seq: int = 0) -> bytes:
    return struct.pack("=IHHII", 16 + len(payload), mtype, 0, seq, 0) + payload


def test_netlink_ack_without_its_error_code_is_skipped():
    good = _nlmsg(netlink.NLMSG_ERROR, struct.pack("=i", -17) + bytes(16), seq=8)
    assert list(netlink._iter_acks(_nlmsg(netlink.NLMSG_ERROR, b"", seq=7))) == []  # raised struct.error
    assert list(netlink._iter_acks(_nlmsg(netlink.NLMSG_ERROR, b"", seq=7) + good)) == [(8, 17)]


def test_netlink_short_link_message_is_malformed_not_read_from_the_next():
    links = []
    mon = netlink.LinkMonitor(None, lambda i, n, up: links.append((i, n, up)))  # type: ignore[arg-type]
    name = struct.pack("=HH", 8, netlink.IFLA_IFNAME) + b"fz0\0"
    full = _nlmsg(netlink.RTM_NEWLINK, struct.pack("=BxHiII", 0, 1, 5, 0x41, 0) + name)
    # A 4-byte RTM_NEWLINK body followed by a whole one: the short one used to be read into the next.
    mon._handle(_nlmsg(netlink.RTM_NEWLINK, b"\0\0\0\0") + full)
    assert mon.malformed == 1
    assert links == [(5, "fz0", True)]
    mon._handle(_nlmsg(netlink.RTM_NEWADDR, b"\2\x18\0\0"))
    assert mon.malformed == 1  # (no on_addr: address messages are not read at all)


# --- keepalived.conf: only "\n" ends a line ------------------------------------------------------------


def test_config_lone_cr_does_not_shift_line_numbers(tmp_path):
    path = tmp_path / "keepalived.conf"
    path.write_bytes(
        b"vrrp_instance VI_1 {\n    interface eth0\r\r\r\r\n    virtual_router_id 300\n"
        b"    virtual_ipaddress {\n        192.0.2.1/24\n    }\n}\n"
    )
    cfg, problems, _w = config.check(str(path), instance_id="t", env={})
    assert cfg is None
    assert [(p.line, "virtual_router_id" in p.message) for p in problems] == [(3, True)]


def test_config_crlf_file_reads_as_before(tmp_path):
    text = (
        "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    priority 100\n"
        "    virtual_ipaddress {\n        192.0.2.1/24\n    }\n}\n"
    )
    lf, crlf = tmp_path / "lf.conf", tmp_path / "crlf.conf"
    lf.write_text(text)
    crlf.write_bytes(text.replace("\n", "\r\n").encode())
    a, pa, _ = config.check(str(lf), instance_id="t", env={})
    b, pb, _ = config.check(str(crlf), instance_id="t", env={})
    assert pa == [] and pb == []
    assert a is not None and b is not None
    assert dataclasses.replace(b.instances[0], file=a.instances[0].file) == a.instances[0]


def test_config_password_that_is_not_utf8_is_its_bytes(tmp_path):
    path = tmp_path / "keepalived.conf"
    path.write_bytes(
        b"vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    priority 100\n"
        b"    authentication {\n        auth_type PASS\n        auth_pass a\x84bc\xff\n    }\n"
        b"    virtual_ipaddress {\n        192.0.2.1/24\n    }\n}\n"
    )
    cfg, problems, _w = config.check(str(path), instance_id="t", env={})  # raised UnicodeEncodeError
    assert problems == [] and cfg is not None
    assert instance_config(cfg.instance("VI_1"), "192.0.2.2").auth_data == b"a\x84bc\xff\0\0\0"
    path.write_bytes(path.read_bytes().replace(b"a\x84bc\xff", b"\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9"))
    cfg, problems, warnings = config.check(str(path), instance_id="t", env={})
    assert problems == [] and cfg is not None and "longer than 8 bytes" in warnings[0].message
    assert instance_config(cfg.instance("VI_1"), "192.0.2.2").auth_data == b"\xe9" * 8


def test_config_address_label_that_is_not_utf8_is_its_bytes(tmp_path):
    """The label length check (15 bytes, as keepalived) encoded the label strictly and raised
    UnicodeEncodeError on a file that is not UTF-8 (found by make test's smoke run of the config harness);
    the label is the file's bytes, to the check and to the kernel."""
    from fastvrrp.io import netlink

    path = tmp_path / "keepalived.conf"
    head = b"vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    virtual_ipaddress {\n"
    path.write_bytes(head + b"        192.0.2.10/24 dev eth0 label e\x8c\x97\xcf\xc5\n    }\n}\n")
    cfg, problems, _w = config.check(str(path), instance_id="t", env={})  # raised UnicodeEncodeError
    assert problems == [] and cfg is not None
    label = cfg.instance("VI_1").virtual_ipaddress[0].label
    spec = netlink.VipSpec("192.0.2.10", 24, 1, label=label)
    assert b"e\x8c\x97\xcf\xc5\0" in netlink.encode_addr(spec, netlink.RTM_NEWADDR)
    path.write_bytes(
        head + b"        192.0.2.10/24 dev eth0 label e\x8c\x97\xcf\xc5" + b"\xff" * 11 + b"\n    }\n}\n"
    )
    cfg, problems, warnings = config.check(str(path), instance_id="t", env={})
    assert cfg is not None and any("longer than 15 characters" in w.message for w in warnings)  # 16 bytes


# --- keepalived.conf: a few lines that used to take all the memory ---------------------------------------

BLOWUPS = {
    # a definition that uses itself twice: the fixed-point loop doubled the line 64 times
    "self": ("$X=a $X $X\nglobal_defs {\n    router_id $X\n}\n", 3, "parameter expansion makes more than"),
    # definitions that multiply (8**8 characters), each used thousands of times on one line
    "multiply": (
        "".join(f"${b}={' '.join(['$' + a] * 8)}\n" for a, b in zip("ABCDEFG", "BCDEFGH", strict=True))
        + "$A=x\nvrrp_instance $H {\n}\n",
        9,
        "parameter expansion makes more than",
    ),
    # a ~SEQ whose end has a typo, inside another (the bound is on all the rows of the file)
    "seq": (
        "global_defs {\n~SEQ(a, 9) ~SEQ(b, 1000000000) router_id r$a$b\n}\n",
        2,
        "~SEQ: more than 524288 rows",
    ),
}


@pytest.mark.parametrize("name", BLOWUPS)
def test_config_expansion_is_bounded(tmp_path, name):
    text, line, message = BLOWUPS[name]
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    # In a child limited to 2 GiB of address space and a minute: before the bounds it ran out of both.
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "from fastvrrp import config\n"
        f"cfg, problems, _w = config.check({str(path)!r}, instance_id='t', env={{}})\n"
        "for p in problems: print(p.line, p.message)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    assert any(ln.startswith(f"{line} {message}") for ln in p.stdout.splitlines()), p.stdout
