"""Capture files: read classic pcap and pcapng as tcpdump writes them, write classic pcap, peel link layers.

Reading is a generator of `Record`s. Damage (bad magic, a truncated header or record, an impossible length)
raises `PcapError` naming the file and the byte offset, *after* every intact record before it was yielded, so
a caller can print what it has and then report the damage.

Link layers understood by `network_layer()`: Ethernet (1) with 802.1Q/802.1ad tags, Linux cooked captures
SLL (113) and SLL2 (276) as `tcpdump -i any` writes them, and raw IP (101, 228, 229).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
LINKTYPE_NAMES = {
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_RAW: "raw IP",
    LINKTYPE_LINUX_SLL: "Linux cooked (SLL)",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6",
    LINKTYPE_LINUX_SLL2: "Linux cooked v2 (SLL2)",
}

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_QINQ = 0x9100

# Classic pcap magic numbers as read little-endian (the writer's native order decides the bytes on disk).
_MAGIC_US = 0xA1B2C3D4
_MAGIC_NS = 0xA1B23C4D
# pcapng: Section Header Block type, and the byte-order magic inside it.
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D

# No sane capture record is bigger than this; a bigger length means the file is damaged, and trusting it
# would make us read (and allocate) garbage.
MAX_RECORD = 256 * 1024


class PcapError(Exception):
    """A damaged or unsupported capture file; `str()` is the operator's message: 'FILE: offset N: what'."""

    def __init__(self, path: str, offset: int, what: str) -> None:
        super().__init__(f"{path}: offset {offset}: {what}")
        self.path = path
        self.offset = offset
        self.what = what


@dataclass(frozen=True, slots=True)
class Record:
    """One captured frame."""

    index: int  # 1-based frame number in the file, as Wireshark counts
    offset: int  # byte offset of the record header in the file
    t_ns: int  # capture time, nanoseconds since the epoch (UTC)
    linktype: int
    data: bytes  # the captured bytes (may be shorter than orig_len: snaplen)
    orig_len: int  # the length of the frame on the wire
    ts_digits: int  # the file's timestamp precision in decimal digits (6 = µs, 9 = ns)

    @property
    def truncated(self) -> bool:
        return len(self.data) < self.orig_len


def read_file(path: str) -> Iterator[Record]:
    """Yield every record of a classic pcap or pcapng file; raise PcapError at the first damage."""
    with open(path, "rb") as f:
        yield from read_stream(f, path)


def read_stream(f: BinaryIO, name: str = "<stream>") -> Iterator[Record]:
    head = f.read(4)
    if len(head) < 4:
        raise PcapError(name, 0, f"file too short for a capture header ({len(head)} bytes)")
    magic_le = struct.unpack("<I", head)[0]
    if magic_le in (_MAGIC_US, _MAGIC_NS):
        yield from _read_classic(f, name, head, "<")
    elif struct.unpack(">I", head)[0] in (_MAGIC_US, _MAGIC_NS):
        yield from _read_classic(f, name, head, ">")
    elif magic_le == _PCAPNG_SHB:
        yield from _read_pcapng(f, name, head)
    else:
        raise PcapError(name, 0, f"not a pcap or pcapng file (magic {head.hex()})")


def _read_classic(f: BinaryIO, name: str, head: bytes, bo: str) -> Iterator[Record]:
    rest = f.read(20)
    if len(rest) < 20:
        raise PcapError(name, 4, f"truncated pcap file header ({4 + len(rest)} of 24 bytes)")
    magic = struct.unpack(bo + "I", head)[0]
    major, minor, _zone, _sigfigs, snaplen, network = struct.unpack(bo + "HHiIII", rest)
    if major != 2:
        raise PcapError(name, 4, f"unsupported pcap version {major}.{minor}")
    # The top bits of the link-type field carry FCS information (pcap spec, LinkType and additional info).
    linktype = network & 0x0FFFFFFF
    nano = magic == _MAGIC_NS
    digits = 9 if nano else 6
    frac_mul = 1 if nano else 1000
    rec_hdr = struct.Struct(bo + "IIII")
    offset = 24
    index = 0
    limit = max(MAX_RECORD, snaplen if snaplen < 16 * MAX_RECORD else 0)
    while True:
        hdr = f.read(16)
        if not hdr:
            return
        if len(hdr) < 16:
            raise PcapError(name, offset, f"truncated record header ({len(hdr)} of 16 bytes)")
        sec, frac, incl, orig = rec_hdr.unpack(hdr)
        if incl > limit:
            raise PcapError(name, offset, f"impossible record length {incl} (damaged file)")
        if frac >= (1_000_000_000 if nano else 1_000_000):
            raise PcapError(name, offset, f"impossible timestamp fraction {frac} (damaged file)")
        data = f.read(incl)
        if len(data) < incl:
            raise PcapError(name, offset, f"truncated record: {len(data)} of {incl} bytes present")
        index += 1
        yield Record(
            index, offset, sec * 1_000_000_000 + frac * frac_mul, linktype, data, max(orig, incl), digits
        )
        offset += 16 + incl


@dataclass(slots=True)
class _Iface:
    linktype: int
    ts_num: int  # t_ns = ts * ts_num // ts_den
    ts_den: int
    digits: int
    ts_offset_s: int


def _tsresol(value: int) -> tuple[int, int, int]:
    """pcapng if_tsresol -> (numerator, denominator, decimal digits) converting ticks to ns."""
    exp = value & 0x7F
    if value & 0x80:  # a negative power of two
        return 1_000_000_000, 1 << exp, max(0, round(exp * 0.30103))
    if exp <= 9:
        return 10 ** (9 - exp), 1, exp
    return 1, 10 ** (exp - 9), 9


def _read_pcapng(f: BinaryIO, name: str, head: bytes) -> Iterator[Record]:
    offset = 0
    index = 0
    bo = "<"
    ifaces: list[_Iface] = []
    first = True
    while True:
        blk_head = head if first else f.read(4)
        first = False
        if not blk_head:
            return
        more = f.read(8 - len(blk_head)) if len(blk_head) < 8 else b""
        hdr = blk_head + more
        if len(hdr) < 8:
            raise PcapError(name, offset, f"truncated pcapng block header ({len(hdr)} of 8 bytes)")
        btype_le = struct.unpack("<I", hdr[:4])[0]
        if btype_le == _PCAPNG_SHB:
            # The byte order of a section is set by its SHB's byte-order magic (pcapng 4.1).
            bom = f.read(4)
            if len(bom) < 4:
                raise PcapError(name, offset + 8, "truncated section header block")
            if struct.unpack("<I", bom)[0] == _PCAPNG_BOM:
                bo = "<"
            elif struct.unpack(">I", bom)[0] == _PCAPNG_BOM:
                bo = ">"
            else:
                raise PcapError(name, offset + 8, f"bad pcapng byte-order magic {bom.hex()}")
            total = struct.unpack(bo + "I", hdr[4:8])[0]
            if total < 28 or total % 4 or total > MAX_RECORD:
                raise PcapError(name, offset, f"impossible section header length {total}")
            body = f.read(total - 12)
            if len(body) < total - 12:
                raise PcapError(
                    name, offset, f"truncated section header block ({12 + len(body)} of {total} bytes)"
                )
            ifaces = []
            offset += total
            continue
        btype, total = struct.unpack(bo + "II", hdr)
        if total < 12 or total % 4 or total > MAX_RECORD + 64 * 1024:
            raise PcapError(name, offset, f"impossible pcapng block length {total} (damaged file)")
        body = f.read(total - 8)
        if len(body) < total - 8:
            raise PcapError(name, offset, f"truncated pcapng block: {8 + len(body)} of {total} bytes present")
        if struct.unpack(bo + "I", body[-4:])[0] != total:
            raise PcapError(
                name, offset, "pcapng block length trailer does not match its header (damaged file)"
            )
        body = body[:-4]
        if btype == 1:  # Interface Description Block
            if len(body) < 8:
                raise PcapError(name, offset, "interface description block too short")
            linktype = struct.unpack(bo + "H", body[:2])[0]
            num, den, digits = 1000, 1, 6  # default resolution: microseconds (pcapng 4.2)
            ts_offset = 0
            for code, val in _options(body[8:], bo):
                if code == 9 and val:
                    num, den, digits = _tsresol(val[0])
                elif code == 14 and len(val) == 8:
                    ts_offset = struct.unpack(bo + "q", val)[0]
            ifaces.append(_Iface(linktype, num, den, digits, ts_offset))
        elif btype in (6, 2):  # Enhanced Packet Block; obsolete Packet Block
            if len(body) < 20:
                raise PcapError(name, offset, "packet block too short")
            if btype == 6:
                if_id, ts_hi, ts_lo, caplen, origlen = struct.unpack(bo + "IIIII", body[:20])
            else:
                if_id, _drops, ts_hi, ts_lo, caplen, origlen = struct.unpack(bo + "HHIIII", body[:20])
            if if_id >= len(ifaces):
                raise PcapError(name, offset, f"packet refers to undeclared interface {if_id}")
            if 20 + caplen > len(body):
                raise PcapError(name, offset, f"packet length {caplen} overruns its block")
            iface = ifaces[if_id]
            ticks = (ts_hi << 32) | ts_lo
            t_ns = ticks * iface.ts_num // iface.ts_den + iface.ts_offset_s * 1_000_000_000
            index += 1
            data = body[20 : 20 + caplen]
            yield Record(index, offset, t_ns, iface.linktype, data, max(origlen, caplen), iface.digits)
        elif btype == 3:  # Simple Packet Block: interface 0, no timestamp
            if not ifaces or len(body) < 4:
                raise PcapError(name, offset, "simple packet block without an interface")
            origlen = struct.unpack(bo + "I", body[:4])[0]
            data = body[4 : 4 + min(origlen, len(body) - 4)]
            index += 1
            yield Record(
                index, offset, 0, ifaces[0].linktype, data, max(origlen, len(data)), ifaces[0].digits
            )
        # Other blocks (name resolution, statistics, custom ...) say nothing about packets: skip them.
        offset += total


def _options(buf: bytes, bo: str) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos + 4 <= len(buf):
        code, length = struct.unpack(bo + "HH", buf[pos : pos + 4])
        if code == 0:
            return
        yield code, buf[pos + 4 : pos + 4 + length]
        pos += 4 + ((length + 3) & ~3)


class PcapWriter:
    """Write a classic pcap file (nanosecond magic by default) in this machine's byte order."""

    def __init__(
        self, f: BinaryIO, linktype: int = LINKTYPE_ETHERNET, snaplen: int = 262144, nano: bool = True
    ):
        self._f = f
        self._nano = nano
        magic = _MAGIC_NS if nano else _MAGIC_US
        f.write(struct.pack("=IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))

    def write(self, t_ns: int, data: bytes, orig_len: int | None = None) -> None:
        sec, frac = divmod(t_ns, 1_000_000_000)
        if not self._nano:
            frac //= 1000
        n = len(data)
        self._f.write(struct.pack("=IIII", sec, frac, n, n if orig_len is None else orig_len))
        self._f.write(data)

    def flush(self) -> None:
        self._f.flush()


# --- link layers ------------------------------------------------------------------------------------------


def link_payload(linktype: int, frame: bytes) -> tuple[int, bytes] | None:
    """(ethertype, payload) of a frame, VLAN tags removed; None if the link type or frame is not known."""
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            return None
        etype = int.from_bytes(frame[12:14], "big")
        pos = 14
        # 802.1Q / 802.1ad tags: 2 bytes TCI, then the next ethertype.
        while etype in (ETH_P_8021Q, ETH_P_8021AD, ETH_P_QINQ):
            if len(frame) < pos + 4:
                return None
            etype = int.from_bytes(frame[pos + 2 : pos + 4], "big")
            pos += 4
        if etype < 0x0600:  # an 802.3 length field: LLC/SNAP, never VRRP on Linux
            return None
        return etype, frame[pos:]
    if linktype == LINKTYPE_LINUX_SLL:
        # pkttype(2) hatype(2) halen(2) addr(8) protocol(2)
        if len(frame) < 16:
            return None
        return _cooked_vlan(int.from_bytes(frame[14:16], "big"), frame[16:])
    if linktype == LINKTYPE_LINUX_SLL2:
        # protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8)
        if len(frame) < 20:
            return None
        return _cooked_vlan(int.from_bytes(frame[0:2], "big"), frame[20:])
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if not frame:
            return None
        version = frame[0] >> 4
        if version == 4 and linktype != LINKTYPE_IPV6:
            return ETH_P_IP, frame
        if version == 6 and linktype != LINKTYPE_IPV4:
            return ETH_P_IPV6, frame
        return None
    return None


def _cooked_vlan(etype: int, payload: bytes) -> tuple[int, bytes] | None:
    # A cooked capture keeps a VLAN tag in the payload when the NIC did not strip it.
    while etype in (ETH_P_8021Q, ETH_P_8021AD, ETH_P_QINQ):
        if len(payload) < 4:
            return None
        etype = int.from_bytes(payload[2:4], "big")
        payload = payload[4:]
    return etype, payload
