"""Codec micro-benchmarks, each beside the pure-Python reference codec (bench/conftest.py prints the ratios).

Run: .venv/bin/python -m pytest bench/test_bench_wire.py --benchmark-only
"""

from __future__ import annotations

import socket
import struct
import sys
from pathlib import Path

import pytest

from fastvrrp import _wire

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import refcodec  # noqa: E402

IMPLS = {"compiled": _wire, "reference": refcodec}
SRC4, GROUP4 = socket.inet_aton("192.0.2.1"), socket.inet_aton("224.0.0.18")
SRC6, GROUP6 = socket.inet_pton(socket.AF_INET6, "fe80::1"), socket.inet_pton(socket.AF_INET6, "ff02::12")
VIPS4 = [socket.inet_aton(f"192.0.2.{100 + i}") for i in range(4)]
VIPS6 = [socket.inet_pton(socket.AF_INET6, "fe80::100")] + [
    socket.inet_pton(socket.AF_INET6, f"2001:db8::{100 + i}") for i in range(3)
]
# the target (docs/costs.md#performance-targets) for one advert render with its checksum
RENDER_BUDGET_NS = 250


def _ip4(msg: bytes) -> bytes:
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(msg), 0, 0, 255, 112, 0, SRC4, GROUP4)
    return head + msg


def _kw(version: int, family: int) -> dict:
    if family == 6:
        return dict(version=3, family=6, vrid=51, priority=100, adver_int_ms=1000, addresses=VIPS6, src=SRC6,
                    dst=GROUP6)  # fmt: skip
    extra = dict(auth_type=1, auth_data=b"secret") if version == 2 else {}
    return dict(version=version, family=4, vrid=51, priority=100, adver_int_ms=1000, addresses=VIPS4,
                src=SRC4, dst=GROUP4, **extra)  # fmt: skip


def _tag(benchmark, group: str, impl: str) -> None:
    benchmark.group = group
    benchmark.extra_info["impl"] = impl


@pytest.mark.parametrize("impl", list(IMPLS))
def test_parse_v3_ipv4(benchmark, impl):
    _tag(benchmark, "parse v3 IPv4 (4 VIPs)", impl)
    pkt = _ip4(_wire.build_advert(**_kw(3, 4)))
    p = benchmark(IMPLS[impl].decode_ipv4, pkt)
    assert p.valid


@pytest.mark.parametrize("impl", list(IMPLS))
def test_parse_v3_ipv6(benchmark, impl):
    _tag(benchmark, "parse v3 IPv6 (4 VIPs)", impl)
    msg = _wire.build_advert(**_kw(3, 6))
    p = benchmark(IMPLS[impl].decode_ipv6, msg, SRC6, GROUP6, 255)
    assert p.valid


@pytest.mark.parametrize("impl", list(IMPLS))
def test_parse_v2(benchmark, impl):
    _tag(benchmark, "parse v2 IPv4 PASS (4 VIPs)", impl)
    pkt = _ip4(_wire.build_advert(**_kw(2, 4)))
    p = benchmark(IMPLS[impl].decode_ipv4, pkt)
    assert p.valid


@pytest.mark.parametrize("impl", list(IMPLS))
def test_render_v3_ipv4(benchmark, impl):
    _tag(benchmark, "render v3 IPv4 advert + checksum", impl)
    t = IMPLS[impl].AdvertTemplate(**_kw(3, 4))
    out = benchmark(t.render, 200, 50)
    assert out == refcodec.build_advert(**{**_kw(3, 4), "priority": 200, "adver_int_ms": 50})
    if impl == "compiled" and benchmark.stats is not None:  # None under --benchmark-disable
        assert benchmark.stats.stats.min * 1e9 <= RENDER_BUDGET_NS


@pytest.mark.parametrize("impl", list(IMPLS))
def test_render_v3_ipv6(benchmark, impl):
    _tag(benchmark, "render v3 IPv6 advert + checksum", impl)
    t = IMPLS[impl].AdvertTemplate(**_kw(3, 6))
    out = benchmark(t.render, 200, 50)
    assert out == refcodec.build_advert(**{**_kw(3, 6), "priority": 200, "adver_int_ms": 50})


@pytest.mark.parametrize("impl", list(IMPLS))
def test_render_into_v3_ipv4(benchmark, impl):
    _tag(benchmark, "render_into v3 IPv4 (no allocation)", impl)
    t = IMPLS[impl].AdvertTemplate(**_kw(3, 4))
    buf = bytearray(64)
    assert benchmark(t.render_into, buf, 200, 50) == 24


@pytest.mark.parametrize("impl", list(IMPLS))
def test_build_advert_v3_ipv4(benchmark, impl):
    _tag(benchmark, "build_advert v3 IPv4 from scratch", impl)
    kw = _kw(3, 4)
    assert benchmark(lambda: IMPLS[impl].build_advert(**kw)) == refcodec.build_advert(**kw)


@pytest.mark.parametrize("impl", list(IMPLS))
def test_garp(benchmark, impl):
    _tag(benchmark, "GARP frame", impl)
    mac = _wire.vmac(51, 4)
    assert len(benchmark(IMPLS[impl].garp_frame, mac, VIPS4[0])) == 42


@pytest.mark.parametrize("impl", list(IMPLS))
def test_unsolicited_na(benchmark, impl):
    _tag(benchmark, "unsolicited NA frame", impl)
    mac = _wire.vmac(51, 6)
    assert len(benchmark(IMPLS[impl].unsolicited_na_frame, mac, VIPS6[1])) == 86


@pytest.mark.parametrize("impl", list(IMPLS))
def test_checksum_1k(benchmark, impl):
    _tag(benchmark, "checksum 1 KiB", impl)
    data = bytes(range(256)) * 4
    assert benchmark(IMPLS[impl].checksum, data) == refcodec.checksum(data)
