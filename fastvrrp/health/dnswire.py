"""A small DNS message codec (RFC 1035 section 4) for the DNS health check: build a query, parse a
response. Pure; a malformed response raises DnsError with the reason (the check counts it)."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

TYPE_A = 1
TYPE_AAAA = 28
TYPES = {"A": TYPE_A, "AAAA": TYPE_AAAA}
CLASS_IN = 1
RCODES = {0: "noerror", 1: "formerr", 2: "servfail", 3: "nxdomain", 4: "notimp", 5: "refused"}
_HDR = struct.Struct("!HHHHHH")  # id, flags, qdcount, ancount, nscount, arcount (RFC 1035 4.1.1)


class DnsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Answer:
    name: str
    rtype: int
    rclass: int
    ttl: int
    rdata: bytes

    @property
    def address(self) -> str | None:
        if self.rtype == TYPE_A and len(self.rdata) == 4:
            return str(ipaddress.IPv4Address(self.rdata))
        if self.rtype == TYPE_AAAA and len(self.rdata) == 16:
            return str(ipaddress.IPv6Address(self.rdata))
        return None


@dataclass(frozen=True, slots=True)
class Response:
    id: int
    flags: int
    rcode: int
    questions: tuple[tuple[str, int, int], ...]
    answers: tuple[Answer, ...]

    @property
    def is_response(self) -> bool:
        return bool(self.flags & 0x8000)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & 0x0200)


def encode_name(name: str) -> bytes:
    """RFC 1035 3.1: length-prefixed labels, at most 63 octets each and 255 in all."""
    out = bytearray()
    for label in name.rstrip(".").split(".") if name.strip(".") else []:
        b = label.encode("idna") if not label.isascii() else label.encode()
        if not 0 < len(b) <= 63:
            raise DnsError(f"bad label in {name!r}")
        out += bytes([len(b)]) + b
    out += b"\0"
    if len(out) > 255:
        raise DnsError(f"name too long: {name!r}")
    return bytes(out)


def build_query(qid: int, name: str, qtype: int, rd: bool = True) -> bytes:
    flags = 0x0100 if rd else 0  # RD (RFC 1035 4.1.1)
    return (
        _HDR.pack(qid & 0xFFFF, flags, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", qtype, CLASS_IN)
    )


def build_response(query: bytes, answers: list[tuple[int, bytes]], rcode: int = 0, ttl: int = 30) -> bytes:
    """A response to `query` carrying (type, rdata) answers with a compressed owner name (used by tests'
    tiny servers; written here so the codec is exercised in both directions)."""
    qid, qflags = struct.unpack_from("!HH", query)
    qend = _skip_name(query, _HDR.size) + 4
    flags = 0x8000 | (qflags & 0x0100) | 0x0080 | (rcode & 0xF)
    out = bytearray(_HDR.pack(qid, flags, 1, len(answers), 0, 0))
    out += query[_HDR.size : qend]
    for rtype, rdata in answers:
        out += struct.pack("!HHHIH", 0xC000 | _HDR.size, rtype, CLASS_IN, ttl, len(rdata)) + rdata
    return bytes(out)


def _skip_name(data: bytes, off: int) -> int:
    while True:
        if off >= len(data):
            raise DnsError("name runs past the end")
        ln = data[off]
        if ln & 0xC0 == 0xC0:
            return off + 2
        if ln & 0xC0:
            raise DnsError("bad label type")
        off += 1 + ln
        if ln == 0:
            return off


def decode_name(data: bytes, off: int) -> tuple[str, int]:
    """(name, offset after it) following compression pointers (RFC 1035 4.1.4), refusing loops."""
    labels: list[str] = []
    end = None
    hops = 0
    total = 0
    while True:
        if off >= len(data):
            raise DnsError("name runs past the end")
        ln = data[off]
        if ln & 0xC0 == 0xC0:
            if off + 1 >= len(data):
                raise DnsError("truncated pointer")
            if end is None:
                end = off + 2
            off = ((ln & 0x3F) << 8) | data[off + 1]
            hops += 1
            if hops > 64:
                raise DnsError("compression loop")
            continue
        if ln & 0xC0:
            raise DnsError("bad label type")
        off += 1
        if ln == 0:
            break
        if off + ln > len(data):
            raise DnsError("label runs past the end")
        labels.append(data[off : off + ln].decode("ascii", errors="replace"))
        total += ln + 1
        if total > 255:
            raise DnsError("name too long")
        off += ln
    return ".".join(labels), (end if end is not None else off)


def parse_response(data: bytes) -> Response:
    if len(data) < _HDR.size:
        raise DnsError("shorter than a header")
    qid, flags, qd, an, _ns, _ar = _HDR.unpack_from(data)
    off = _HDR.size
    questions = []
    for _ in range(qd):
        name, off = decode_name(data, off)
        if off + 4 > len(data):
            raise DnsError("truncated question")
        qtype, qclass = struct.unpack_from("!HH", data, off)
        off += 4
        questions.append((name.lower(), qtype, qclass))
    answers = []
    for _ in range(an):
        name, off = decode_name(data, off)
        if off + 10 > len(data):
            raise DnsError("truncated answer")
        rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", data, off)
        off += 10
        if off + rdlen > len(data):
            raise DnsError("rdata runs past the end")
        answers.append(Answer(name.lower(), rtype, rclass, ttl, data[off : off + rdlen]))
        off += rdlen
    return Response(qid, flags, flags & 0xF, tuple(questions), tuple(answers))
