"""Shared helpers for the codec tests: both implementations, address constants, an IPv4 header builder."""

from __future__ import annotations

import socket
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import refcodec  # noqa: E402

from fastvrrp import _wire  # noqa: E402

IMPLS = [_wire, refcodec]
IMPL_IDS = ["compiled", "reference"]


def a4(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, text)


def a6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


SRC4 = a4("192.0.2.1")
GROUP4 = a4("224.0.0.18")
VIP4 = a4("192.0.2.100")
PEER4 = a4("192.0.2.2")
SRC6 = a6("fe80::1")
GROUP6 = a6("ff02::12")
LL_VIP6 = a6("fe80::100")
VIP6 = a6("2001:db8::100")


def ip4(
    payload: bytes,
    src: bytes = SRC4,
    dst: bytes = GROUP4,
    *,
    ttl: int = 255,
    proto: int = 112,
    frag: int = 0,
    ihl: int = 5,
    total: int | None = None,
    version: int = 4,
    options: bytes = b"",
) -> bytes:
    """An IPv4 header (with a correct header checksum) in front of payload."""
    if total is None:
        total = 20 + len(options) + len(payload)
    head = struct.pack("!BBHHHBBH4s4s", version << 4 | ihl, 0xC0, total, 1, frag, ttl, proto, 0, src, dst)
    head += options
    csum = refcodec.checksum(head)
    return head[:10] + struct.pack("!H", csum) + head[12:] + payload


def v3_kw(**over: object) -> dict[str, object]:
    kw: dict[str, object] = dict(
        version=3, family=4, vrid=51, priority=100, adver_int_ms=1000, addresses=[VIP4], src=SRC4, dst=GROUP4
    )
    kw.update(over)
    return kw
