"""`fastvrrp decode FILE...`: print every VRRP packet of a capture, decoded and judged by the real codec.

The judgement is the daemon's own: each packet goes through `fastvrrp._wire.decode_ipv4` / `decode_ipv6`,
the same validation the receive path applies (RFC 5798 7.1, RFC 3768 7.1), so "valid" here means "the
daemon would accept it on the wire". Meaning (is that VRID ours, is the interval ours) is not judged: that
needs a configuration.

Exit codes: 0 when every file was read to its end, 2 when a file is missing or damaged (packets before the
damage are still printed), 64 on a usage error.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from fastvrrp.tools import pcap

IPPROTO_VRRP = 112
# IPv6 extension headers walked to reach the upper layer (RFC 8200 4): hop-by-hop, routing, destination
# options, AH (RFC 4302: length in 4-byte units minus 2), fragment (RFC 8200 4.5).
_EXT_GENERIC = (0, 43, 60)
_EXT_AH = 51
_EXT_FRAGMENT = 44

# Reasons that decode adds on top of the codec's: the capture, not the packet, is at fault.
R_SNAPLEN = "snaplen"

CHECKSUM_POLICIES = {"accept-both": 0, "pseudo": 1, "message": 2}


@dataclass(frozen=True, slots=True)
class Found:
    """A VRRP packet found in a capture: the record it came from and the codec's verdict."""

    record: pcap.Record
    family: int
    packet: Any  # fastvrrp._wire.Packet
    reason: str | None  # the packet's reason, or R_SNAPLEN when the capture cut it short
    # From the IP header, read here: the codec leaves them unset when it rejects the IP header itself.
    src: str
    dst: str
    ttl: int
    message: bytes = b""  # the VRRP message as captured (read here when the codec stops short of the header)
    policy: int = 0  # the --checksum policy the codec applied (CHECKSUM_POLICIES)


def _codec() -> Any:
    from fastvrrp import _wire

    return _wire


def find_vrrp(
    records: Iterator[pcap.Record], check_ttl: bool = True, policy: int = 0, codec: Any = None
) -> Iterator[Found]:
    """Decode the VRRP packets among `records`; other traffic is skipped."""
    wire = codec if codec is not None else _codec()
    for rec in records:
        lp = pcap.link_payload(rec.linktype, rec.data)
        if lp is None:
            continue
        etype, payload = lp
        if etype == pcap.ETH_P_IP:
            ip = ipv4_vrrp(payload)
            if ip is None:
                continue
            pkt = wire.decode_ipv4(ip, check_ttl=check_ttl, policy=policy)
            family = 4
            src, dst, ttl = _ntop(socket.AF_INET, ip[12:16]), _ntop(socket.AF_INET, ip[16:20]), ip[8]
            msg = ip[(ip[0] & 0x0F) * 4 :]
        elif etype == pcap.ETH_P_IPV6:
            parts = ipv6_vrrp(payload)
            if parts is None:
                continue
            msg, src6, dst6, ttl = parts
            pkt = wire.decode_ipv6(msg, src6, dst6, ttl, check_ttl=check_ttl)
            family = 6
            src, dst = _ntop(socket.AF_INET6, src6), _ntop(socket.AF_INET6, dst6)
        else:
            continue
        reason = pkt.reason
        # A packet cut by the capture's snaplen cannot be judged: say so rather than blame the sender.
        if not pkt.valid and rec.truncated:
            reason = R_SNAPLEN
        yield Found(rec, family, pkt, reason, src, dst, ttl, bytes(msg), policy)


def _ntop(af: int, b: bytes) -> str:
    return socket.inet_ntop(af, b) if len(b) == (4 if af == socket.AF_INET else 16) else b.hex()


def ipv4_vrrp(data: bytes) -> bytes | None:
    """The IPv4 packet (link padding removed) if it carries VRRP (protocol 112), else None."""
    if len(data) < 20 or data[0] >> 4 != 4 or data[9] != IPPROTO_VRRP:
        return None
    total = int.from_bytes(data[2:4], "big")
    # Ethernet pads short frames to 60 bytes; the IP total length says where the packet ends. A total
    # length beyond the data, or one shorter than the fixed header, is left for the codec to judge.
    if max(20, (data[0] & 0x0F) * 4) <= total < len(data):
        return data[:total]
    return data


def ipv6_upper(data: bytes) -> tuple[int, bytes, bytes, bytes, int] | None:
    """(upper-layer protocol, its bytes, src, dst, hop limit) of an IPv6 packet, extension headers walked.

    None if it is not IPv6, is cut short, or is a fragment (a fragment alone cannot be decoded).
    """
    if len(data) < 40 or data[0] >> 4 != 6:
        return None
    plen = int.from_bytes(data[4:6], "big")
    nh = data[6]
    hlim = data[7]
    src, dst = data[8:24], data[24:40]
    body = data[40 : 40 + plen] if 40 + plen <= len(data) else data[40:]
    pos = 0
    for _ in range(8):  # no sane packet carries more extension headers than this
        if nh in _EXT_GENERIC:
            if len(body) < pos + 8:
                return None
            nh, pos = body[pos], pos + (body[pos + 1] + 1) * 8
        elif nh == _EXT_AH:
            if len(body) < pos + 8:
                return None
            nh, pos = body[pos], pos + (body[pos + 1] + 2) * 4
        elif nh == _EXT_FRAGMENT:
            if len(body) < pos + 8:
                return None
            frag = int.from_bytes(body[pos + 2 : pos + 4], "big")
            if frag & 0xFFF9:  # an offset or more fragments to come
                return None
            nh, pos = body[pos], pos + 8
        else:
            return nh, body[pos:], src, dst, hlim
    return None


def ipv6_vrrp(data: bytes) -> tuple[bytes, bytes, bytes, int] | None:
    """(VRRP message, src, dst, hop limit) if the IPv6 packet carries VRRP (next header 112), else None."""
    up = ipv6_upper(data)
    if up is None or up[0] != IPPROTO_VRRP:
        return None
    return up[1], up[2], up[3], up[4]


def header_fields(found: Found) -> dict[str, int]:
    """The fixed-header fields the codec did not fill because the message is cut short (it reads none of
    them under 8 bytes), by the sender or by the capture's snaplen: each one whose bytes are present, read
    from the captured message. Empty when the codec read the header itself or refused a whole IP header."""
    pkt = found.packet
    m = found.message
    if (pkt.reason != "length" and found.reason != R_SNAPLEN) or pkt.version or not m:
        return {}
    out = {"version": m[0] >> 4, "type": m[0] & 0x0F}
    names = ("vrid", "priority", "count")
    out.update((name, m[i]) for i, name in enumerate(names, 1) if i < len(m))
    if len(m) >= 6 and out["version"] == 2:
        out["auth_type"] = m[4]
        out["adver_int_ms"] = m[5] * 1000
    elif len(m) >= 6 and out["version"] == 3:
        out["adver_int_ms"] = (int.from_bytes(m[4:6], "big") & 0x0FFF) * 10
    return out


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def v3_ipv4_checksum_forms(found: Found) -> tuple[bool, bool]:
    """(right with the IPv4 pseudo-header, right on the message alone) for a VRRPv3 IPv4 message as
    captured: RFC 1071 over the message (checksum field included) sums to 0xffff when it is right."""
    m = found.message
    pseudo = (
        socket.inet_pton(socket.AF_INET, found.src)
        + socket.inet_pton(socket.AF_INET, found.dst)
        + bytes([0, IPPROTO_VRRP])
        + len(m).to_bytes(2, "big")
    )
    return _sum16(pseudo + m) == 0xFFFF, _sum16(m) == 0xFFFF


_FORM_WORDS = {"pseudo": "with the IPv4 pseudo-header", "message": "on the message alone (RFC 9568 style)"}


def _v3_ipv4_checksum_explained(found: Found) -> str:
    """Which forms the policy checked, and how the captured message fares in each."""
    csum = found.packet.checksum
    checked = [k for k, v in CHECKSUM_POLICIES.items() if v == found.policy][0]
    if checked == "accept-both":
        return (
            f"checksum 0x{csum:04x} is wrong both with and without the IPv4 pseudo-header "
            "(RFC 5798 5.2.8, RFC 9568 5.2.8)"
        )
    other = "message" if checked == "pseudo" else "pseudo"
    pseudo_ok, message_ok = v3_ipv4_checksum_forms(found)
    other_ok = message_ok if checked == "pseudo" else pseudo_ok
    text = f"checksum 0x{csum:04x} is wrong {_FORM_WORDS[checked]}, the only form --checksum {checked} checks"
    if other_ok:
        return f"{text}; it is right {_FORM_WORDS[other]} (--checksum accept-both accepts it)"
    return f"{text}; it is wrong {_FORM_WORDS[other]} too"


# --- presentation -------------------------------------------------------------------------------------


def time_text(t_ns: int, digits: int) -> str:
    sec, frac = divmod(t_ns, 1_000_000_000)
    try:
        stamp = _dt.datetime.fromtimestamp(sec, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        # A damaged or hostile capture can claim any time (pcapng: 64-bit ticks plus a signed offset);
        # beyond the calendar's years 1-9999 show the seconds since the epoch rather than fail the file.
        stamp = f"@{sec}"
    if digits >= 9:
        return f"{stamp}.{frac:09d}"
    return f"{stamp}.{frac // 1000:06d}"


def interval_text(ms: int) -> str:
    if ms % 1000 == 0:
        return f"{ms // 1000} s"
    return f"{ms} ms"


def priority_text(prio: int) -> str:
    if prio == 255:
        return "255 (address owner)"
    if prio == 0:
        return "0 (master is resigning)"
    return str(prio)


def printable(b: bytes) -> str:
    """Bytes from the wire as text that stays on its line and cannot be mistaken for the quotes around it:
    printable ASCII as is, anything else (control characters, quote, backslash, non-ASCII) as \\xNN."""
    return "".join(chr(c) if 0x20 <= c < 0x7F and c not in (0x22, 0x5C) else f"\\x{c:02x}" for c in b)


def _auth_text(pkt: Any) -> str:
    if pkt.auth_type == 0:
        return "none"
    if pkt.auth_type == 1:
        pw = printable(bytes(pkt.auth_data).rstrip(b"\0"))
        return f'simple password "{pw}"'
    if pkt.auth_type == 2:
        return "IP AH"
    return f"type {pkt.auth_type}"


def explain(found: Found) -> str:
    """The drop reason in plain words, with the values that caused it."""
    pkt = found.packet
    r = found.reason
    rec = found.record
    if r == R_SNAPLEN:
        return (
            f"the capture kept only {len(rec.data)} of {rec.orig_len} bytes of this frame "
            "(raise tcpdump -s); the packet cannot be judged"
        )
    if r == "ttl":
        what = "TTL" if found.family == 4 else "hop limit"
        return (
            f"{what} is {found.ttl}, must be 255: the packet crossed a router or the sender does not set it "
            "(RFC 5798 7.1; unicast peers: use --no-ttl-check)"
        )
    if r == "version":
        if pkt.version == 2 and found.family == 6:
            return "VRRP version 2 does not exist over IPv6 (RFC 5798 5.2.1)"
        return f"VRRP version is {pkt.version}, only 2 and 3 exist (RFC 5798 5.2.1)"
    if r == "type":
        return f"type is {pkt.type}, only 1 (advertisement) exists (RFC 5798 5.2.2)"
    if r == "length" and header_fields(found):
        return (
            f"the message is {len(found.message)} bytes, shorter than the 8-byte VRRP header "
            "(RFC 5798 5.1); the fields shown are the ones present"
        )
    if r == "length":
        alen = 4 if found.family == 4 else 16
        need = 8 + pkt.count * alen + (8 if pkt.version == 2 else 0)
        return (
            f"the message is too short for its header and {pkt.count} address(es): "
            f"{need} bytes needed (RFC 5798 7.1)"
        )
    if r == "ip":
        return "bad IPv4 header: header or total length wrong, or a fragment (VRRP is never fragmented)"
    if r == "checksum":
        if found.family == 4 and pkt.version == 3:
            return _v3_ipv4_checksum_explained(found)
        if found.family == 6:
            return f"checksum 0x{pkt.checksum:04x} is wrong with the IPv6 pseudo-header (RFC 5798 5.2.8)"
        return f"checksum 0x{pkt.checksum:04x} is wrong on the message alone (RFC 3768 5.3.8)"
    if r == "vrid":
        return f"VRID {pkt.vrid} is not allowed, it must be 1-255 (RFC 5798 5.2.3)"
    if r == "adver_int":
        return "the advertisement interval is 0 (RFC 5798 5.2.7)"
    if r == "auth":
        return f"unknown authentication type {pkt.auth_type}, only 0, 1 and 2 exist (RFC 3768 5.3.6)"
    if r == "count":
        return f"address count {pkt.count} does not fit the message"
    return f"dropped: {r}"


def _checksum_text(found: Found) -> str:
    form = found.packet.checksum_form
    if found.family == 4 and found.packet.version == 3:
        if form == "pseudo":
            return "checksum ok (with IPv4 pseudo-header, keepalived/FRR style)"
        if form == "message":
            return "checksum ok (message only, RFC 9568 style)"
    elif form is not None:
        return "checksum ok"
    return f"checksum 0x{found.packet.checksum:04x} not verified"


def as_text(found: Found) -> str:
    pkt = found.packet
    rec = found.record
    parts = [time_text(rec.t_ns, rec.ts_digits), f"{found.src} > {found.dst}"]
    cut = header_fields(found)
    if cut:
        parts += _cut_header_text(cut)
    elif pkt.reason != "ip" and (pkt.reason != "length" or pkt.version):
        # The fixed header was read (the codec reads it before any check): say what it claims.
        parts += [f"VRRPv{pkt.version}", f"vrid {pkt.vrid}", f"prio {priority_text(pkt.priority)}"]
        if pkt.version in (2, 3):  # the interval field means nothing in an unknown version
            parts.append(f"int {interval_text(pkt.adver_int_ms)}")
        if pkt.address_texts or (pkt.count == 0 and found.reason is None):
            parts.append("addrs " + (",".join(pkt.address_texts) or "none"))
        else:
            parts.append(f"count {pkt.count}")
        if pkt.version == 2:
            parts.append(f"auth {_auth_text(pkt)}")
    parts.append(f"{'ttl' if found.family == 4 else 'hlim'} {found.ttl}")
    if pkt.checksum_form is not None:
        parts.append(_checksum_text(found))
    if found.reason is None:
        parts.append("valid")
    else:
        parts.append(f"INVALID [{found.reason}] {explain(found)}")
    return " ".join(parts)


def _cut_header_text(cut: dict[str, int]) -> list[str]:
    """The fields of a message cut inside its fixed header, as as_text shows a whole header."""
    out = [f"VRRPv{cut['version']}", f"type {cut['type']}"]
    if "vrid" in cut:
        out.append(f"vrid {cut['vrid']}")
    if "priority" in cut:
        out.append(f"prio {priority_text(cut['priority'])}")
    if "count" in cut:
        out.append(f"count {cut['count']}")
    if "adver_int_ms" in cut:
        out.append(f"int {interval_text(cut['adver_int_ms'])}")
    return out


def as_json(found: Found, filename: str) -> dict[str, Any]:
    pkt = found.packet
    rec = found.record
    cut = header_fields(found)
    version = cut.get("version", pkt.version)
    return {
        "file": filename,
        "frame": rec.index,
        "time": rec.t_ns / 1e9,
        "time_ns": rec.t_ns,
        "family": found.family,
        "src": found.src,
        "dst": found.dst,
        "ttl": found.ttl,
        "version": version,
        "type": cut.get("type", pkt.type),
        "vrid": cut.get("vrid", pkt.vrid),
        "priority": cut.get("priority", pkt.priority),
        "count": cut.get("count", pkt.count),
        "adver_int_ms": cut.get("adver_int_ms", pkt.adver_int_ms),
        "addresses": list(pkt.address_texts),
        "auth_type": cut.get("auth_type", pkt.auth_type) if version == 2 else None,
        "checksum": pkt.checksum,
        "checksum_form": pkt.checksum_form,
        "valid": found.reason is None,
        "reason": found.reason,
    }


# --- the command --------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files", nargs="+", metavar="FILE", help="capture files (pcap or pcapng, as tcpdump -w writes)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per packet")
    p.add_argument(
        "--no-ttl-check",
        dest="check_ttl",
        action="store_false",
        help="do not require TTL/hop limit 255 (unicast peers, keepalived's unicast mode)",
    )
    p.add_argument(
        "--checksum",
        choices=sorted(CHECKSUM_POLICIES),
        default="accept-both",
        help="which v3 IPv4 checksum form to accept (default: accept-both)",
    )
    p.add_argument("--invalid", action="store_true", help="print only the packets that would be dropped")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        codec = _codec()
    except ImportError as e:
        print(f"fastvrrp decode: the compiled codec is not built ({e}); run `make build`", file=err)
        return 2
    policy = CHECKSUM_POLICIES[args.checksum]
    rc = 0
    for name in args.files:
        try:
            for found in find_vrrp(pcap.read_file(name), args.check_ttl, policy, codec):
                if args.invalid and found.reason is None:
                    continue
                if args.json:
                    out.write(json.dumps(as_json(found, name)) + "\n")
                else:
                    out.write(as_text(found) + "\n")
        except pcap.PcapError as e:
            out.flush()
            print(f"fastvrrp decode: {e}", file=err)
            rc = 2
        except OSError as e:
            out.flush()
            print(f"fastvrrp decode: {name}: {e.strerror or e}", file=err)
            rc = 2
    out.flush()
    return rc
