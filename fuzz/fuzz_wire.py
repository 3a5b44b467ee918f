"""Fuzz the VRRP codec (fastvrrp/_wire.pyx): decode_ipv4 (v2 and v3) and decode_ipv6, every checksum policy,
with and without the TTL rule, differentially against the pure-Python reference codec tests/refcodec.py.

Input layout: byte 0 chooses the call (bit 0: IPv6; bit 1: check the TTL / hop limit; bits 2-3: checksum
policy mod 3; bit 4, IPv6 only: no hop-limit cmsg, -1). IPv4: the rest is the whole IP packet. IPv6: 16 bytes
source, 16 bytes destination, 1 byte hop limit, then the VRRP message.

The documented answer: a Packet, never an exception (bad bytes are a drop reason); and it must be the
reference codec's Packet field for field.
"""

from __future__ import annotations

import sys

from _harness import ROOT, check, instrumented, main

sys.path.insert(0, f"{ROOT}/tests")

with instrumented():
    from fastvrrp import _wire

import refcodec  # noqa: E402  (the oracle: deliberately not instrumented)

FIELDS = _wire.PACKET_FIELDS


def one(data: bytes) -> None:
    if not data:
        return
    mode = data[0]
    check_ttl = bool(mode & 2)
    if mode & 1:
        if len(data) < 34:
            return
        src, dst = data[1:17], data[17:33]
        hop = -1 if mode & 16 else data[33]
        msg = data[34:]
        got = _wire.decode_ipv6(msg, src, dst, hop, check_ttl=check_ttl)
        want = refcodec.decode_ipv6(msg, src, dst, hop, check_ttl=check_ttl)
    else:
        policy = ((mode >> 2) & 3) % 3
        pkt = data[1:]
        got = _wire.decode_ipv4(pkt, check_ttl=check_ttl, policy=policy)
        want = refcodec.decode_ipv4(pkt, check_ttl=check_ttl, policy=policy)
        # The buffer path (memoryview, bytearray) must agree with the bytes fast path.
        again = _wire.decode_ipv4(bytearray(pkt), check_ttl=check_ttl, policy=policy)
        check(again.as_dict() == got.as_dict(), "decode_ipv4(bytearray) differs from decode_ipv4(bytes)")
    g, w = got.as_dict(), want.as_dict()
    for name in FIELDS:
        check(g[name] == w[name], f"{name}: compiled {g[name]!r} != reference {w[name]!r}")
    check(got.valid == (got.reason is None), "valid and reason disagree")
    check(got.reason is None or got.reason in _wire.DROP_REASONS, f"unknown reason {got.reason!r}")
    if got.valid:
        check(len(got.addresses) == got.count and got.msg_len >= 8, "a valid packet with a short body")
    repr(got)
    got.address_texts  # noqa: B018 - must render whatever was decoded


if __name__ == "__main__":
    main(one)
