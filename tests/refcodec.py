"""A small pure-Python reference codec with the Python API of fastvrrp._wire.

It is a test oracle, never a runtime fallback: written the plain way (struct, bytes concatenation, a 16-bit
word loop for RFC 1071) so that the compiled codec can be checked against something built differently. The
validation order and the "fields not reached read zero" rule follow the _wire.pyx module docstring.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass, fields

DROP_REASONS = (
    "ok", "length", "ip", "ttl", "version", "type", "checksum", "vrid", "adver_int", "auth",
    "no_instance", "version_mismatch", "auth_mismatch", "interval_mismatch", "own", "peer", "family",
)  # fmt: skip
(R_OK, R_LENGTH, R_IP, R_TTL, R_VERSION, R_TYPE, R_CHECKSUM, R_VRID, R_ADVER_INT, R_AUTH) = range(10)
CS_NONE, CS_PSEUDO, CS_MESSAGE = 0, 1, 2
CSP_ACCEPT_BOTH, CSP_PSEUDO_ONLY, CSP_MESSAGE_ONLY = 0, 1, 2
PROTO_VRRP = 112


def checksum(data: bytes, initial: int = 0) -> int:
    """RFC 1071: one's complement of the one's complement sum of 16-bit big-endian words."""
    if not 0 <= initial <= 0xFFFFFFFFFFFF:
        raise ValueError("initial must be a partial sum below 2**48")
    data = bytes(data)
    if len(data) % 2:
        data += b"\0"
    total = initial + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo4(src: bytes, dst: bytes, length: int) -> bytes:
    return src + dst + struct.pack("!BBH", 0, PROTO_VRRP, length)


def _pseudo6(src: bytes, dst: bytes, length: int) -> bytes:
    return src + dst + struct.pack("!I3xB", length, PROTO_VRRP)


@dataclass
class Packet:
    family: int = 0
    version: int = 0
    type: int = 0
    vrid: int = 0
    priority: int = 0
    count: int = 0
    adver_int_ms: int = 0
    auth_type: int = 0
    auth_data: bytes = b""
    ttl: int = 0
    checksum: int = 0
    checksum_form: str | None = None
    src: bytes = b""
    dst: bytes = b""
    addresses: tuple[bytes, ...] = ()
    msg_len: int = 0
    valid: bool = False
    reason: str | None = None

    @property
    def src_text(self) -> str:
        return _ntop(self.family, self.src)

    @property
    def dst_text(self) -> str:
        return _ntop(self.family, self.dst)

    @property
    def address_texts(self) -> tuple[str, ...]:
        return tuple(_ntop(self.family, a) for a in self.addresses)

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _ntop(family: int, b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if family == 4 else socket.AF_INET6, b)


def _done(p: Packet, reason: int) -> Packet:
    p.valid = reason == R_OK
    p.reason = None if reason == R_OK else DROP_REASONS[reason]
    return p


def _vrrp(p: Packet, msg: bytes, check_ttl: bool, policy: int) -> Packet:
    if len(msg) < 8:
        return _done(p, R_LENGTH)
    b0, p.vrid, p.priority, p.count, w, p.checksum = struct.unpack("!BBBBHH", msg[:8])
    p.version, p.type = b0 >> 4, b0 & 0xF
    if p.version == 3:
        p.adver_int_ms = (w & 0x0FFF) * 10
    elif p.version == 2:
        p.auth_type, p.adver_int_ms = w >> 8, (w & 0xFF) * 1000
    if check_ttl and p.ttl != 255:
        return _done(p, R_TTL)
    if p.version not in ((2, 3) if p.family == 4 else (3,)):
        return _done(p, R_VERSION)
    if p.type != 1:
        return _done(p, R_TYPE)
    alen = 4 if p.family == 4 else 16
    need = 8 + p.count * alen + (8 if p.version == 2 else 0)
    if len(msg) < need:
        return _done(p, R_LENGTH)
    msg = msg[:need]
    p.msg_len = need
    p.addresses = tuple(msg[8 + i * alen : 8 + (i + 1) * alen] for i in range(p.count))
    if p.version == 2:
        p.auth_data = msg[-8:]
    msg_ok = checksum(msg) == 0
    if p.family == 6:
        pseudo_ok = checksum(_pseudo6(p.src, p.dst, need) + msg) == 0
    else:
        pseudo_ok = checksum(_pseudo4(p.src, p.dst, need) + msg) == 0
    if p.version == 2:
        forms = [("message", msg_ok)]
    elif p.family == 6:
        forms = [("pseudo", pseudo_ok)]
    else:
        forms = {
            CSP_ACCEPT_BOTH: [("pseudo", pseudo_ok), ("message", msg_ok)],
            CSP_PSEUDO_ONLY: [("pseudo", pseudo_ok)],
            CSP_MESSAGE_ONLY: [("message", msg_ok)],
        }[policy]
    p.checksum_form = next((name for name, ok in forms if ok), None)
    if p.checksum_form is None:
        return _done(p, R_CHECKSUM)
    if p.vrid == 0:
        return _done(p, R_VRID)
    if p.adver_int_ms == 0:
        return _done(p, R_ADVER_INT)
    if p.version == 2 and p.auth_type not in (0, 1, 2):
        return _done(p, R_AUTH)
    return _done(p, R_OK)


def decode_ipv4(packet: bytes, check_ttl: bool = True, policy: int = CSP_ACCEPT_BOTH) -> Packet:
    if policy not in (CSP_ACCEPT_BOTH, CSP_PSEUDO_ONLY, CSP_MESSAGE_ONLY):
        raise ValueError(f"unknown checksum policy {policy}")
    packet = bytes(memoryview(packet))
    p = Packet(family=4, src=bytes(4), dst=bytes(4))
    if len(packet) < 20:
        return _done(p, R_LENGTH)
    vihl, _tos, total, _ident, frag, ttl, proto, _sum, src, dst = struct.unpack("!BBHHHBBH4s4s", packet[:20])
    ihl = (vihl & 0xF) * 4
    if vihl >> 4 != 4 or ihl < 20 or not ihl <= total <= len(packet):
        return _done(p, R_IP)
    if frag & 0x2000 or frag & 0x1FFF:  # more fragments, or an offset
        return _done(p, R_IP)
    if proto != PROTO_VRRP:
        return _done(p, R_IP)
    p.ttl, p.src, p.dst = ttl, src, dst
    return _vrrp(p, packet[ihl:total], check_ttl, policy)


def decode_ipv6(msg: bytes, src: bytes, dst: bytes, hoplimit: int, check_ttl: bool = True) -> Packet:
    src, dst = bytes(src), bytes(dst)
    if len(src) != 16 or len(dst) != 16:
        raise ValueError("src and dst must be 16 packed bytes")
    known = 0 <= hoplimit <= 255
    p = Packet(family=6, src=src, dst=dst, ttl=hoplimit if known else 0)
    return _vrrp(p, bytes(memoryview(msg)), check_ttl and known, CSP_PSEUDO_ONLY)


def build_advert(
    *,
    version: int,
    family: int,
    vrid: int,
    priority: int,
    adver_int_ms: int,
    addresses: Iterable[bytes],
    src: bytes,
    dst: bytes,
    auth_type: int = 0,
    auth_data: bytes = b"",
    checksum_form: int = CS_PSEUDO,
) -> bytes:
    if version not in (2, 3) or family not in (4, 6) or (version, family) == (2, 6):
        raise ValueError("version/family")
    if not (0 <= vrid <= 255 and 0 <= priority <= 255):
        raise ValueError("vrid/priority")
    if checksum_form not in (CS_PSEUDO, CS_MESSAGE):
        raise ValueError("checksum_form")
    alen = 4 if family == 4 else 16
    addrs = [bytes(a) for a in addresses]
    src, dst, auth_data = bytes(src), bytes(dst), bytes(auth_data)
    if len(addrs) > 255 or any(len(a) != alen for a in addrs) or len(src) != alen or len(dst) != alen:
        raise ValueError("addresses")
    unit = 10 if version == 3 else 1000
    top = 4095 if version == 3 else 255
    if adver_int_ms < 0 or adver_int_ms % unit or adver_int_ms // unit > top:
        raise ValueError("adver_int_ms")
    if version == 3:
        if auth_type or auth_data:
            raise ValueError("v3 has no auth")
        word = adver_int_ms // unit
    else:
        if not 0 <= auth_type <= 255 or len(auth_data) > 8:
            raise ValueError("auth")
        word = auth_type << 8 | adver_int_ms // unit
    body = b"".join(addrs) + (auth_data.ljust(8, b"\0") if version == 2 else b"")
    head = struct.pack("!BBBBH", version << 4 | 1, vrid, priority, len(addrs), word)
    msg = head + b"\0\0" + body
    if version == 3 and family == 6:
        pseudo = _pseudo6(src, dst, len(msg))
    elif version == 3 and checksum_form == CS_PSEUDO:
        pseudo = _pseudo4(src, dst, len(msg))
    else:
        pseudo = b""
    return head + struct.pack("!H", checksum(pseudo + msg)) + body


class AdvertTemplate:
    """Reference template: rebuilds from scratch (no incremental update), which is the point of comparing."""

    def __init__(self, **kw: object) -> None:
        self._kw = dict(kw)
        self.message = build_advert(**kw)  # type: ignore[arg-type]
        self.size = len(self.message)

    def render(self, priority: int, adver_int_ms: int) -> bytes:
        return build_advert(**{**self._kw, "priority": priority, "adver_int_ms": adver_int_ms})  # type: ignore[arg-type]

    def render_into(self, buf: bytearray, priority: int, adver_int_ms: int) -> int:
        msg = self.render(priority, adver_int_ms)
        memoryview(buf)[: len(msg)] = msg
        return len(msg)


def vmac(vrid: int, family: int = 4) -> bytes:
    if not 0 <= vrid <= 255 or family not in (4, 6):
        raise ValueError("vrid/family")
    return bytes([0x00, 0x00, 0x5E, 0x00, 0x01 if family == 4 else 0x02, vrid])


def garp_frame(vmac: bytes, vip: bytes) -> bytes:
    if len(vmac) != 6 or len(vip) != 4:
        raise ValueError("vmac/vip")
    eth = b"\xff" * 6 + vmac + struct.pack("!H", 0x0806)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, vmac, vip, b"\xff" * 6, vip)
    return eth + arp


def unsolicited_na_frame(vmac: bytes, vip: bytes, router: bool = True) -> bytes:
    if len(vmac) != 6 or len(vip) != 16:
        raise ValueError("vmac/vip")
    all_nodes = socket.inet_pton(socket.AF_INET6, "ff02::1")
    flags = (0x80000000 if router else 0) | 0x20000000  # R, O (RFC 4861 4.4)
    body = struct.pack("!I", flags) + vip + struct.pack("!BB6s", 2, 1, vmac)
    pseudo = vip + all_nodes + struct.pack("!I3xB", 4 + len(body), 58)
    csum = checksum(pseudo + struct.pack("!BBH", 136, 0, 0) + body)
    icmp = struct.pack("!BBH", 136, 0, csum) + body
    ip6 = struct.pack("!IHBB", 6 << 28, len(icmp), 58, 255) + vip + all_nodes
    eth = b"\x33\x33\x00\x00\x00\x01" + vmac + struct.pack("!H", 0x86DD)
    return eth + ip6 + icmp
