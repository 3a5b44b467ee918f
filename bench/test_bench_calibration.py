"""The gate's unit of machine speed (bench/gate.py): a fixed pure-Python workload, the reference codec
decoding 2,000 v3 adverts. Benchmarks without a reference partner are divided by its best round under
FASTVRRP_BENCH_GATE=1, so their baseline does not depend on how fast or busy the machine is."""

from __future__ import annotations

import socket
import struct
import sys
from pathlib import Path

from bench.gate import CALIBRATION
from fastvrrp import _wire

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import refcodec  # noqa: E402

BATCH = 2000  # about 10 ms a round: long enough for the CPU clock (bench/conftest.py CPU_TIMED)


def test_calibration(benchmark):
    benchmark.group = CALIBRATION
    benchmark.extra_info["impl"] = CALIBRATION
    src, dst = socket.inet_aton("192.0.2.1"), socket.inet_aton("224.0.0.18")
    vips = [socket.inet_aton(f"192.0.2.{100 + i}") for i in range(4)]
    msg = _wire.build_advert(
        version=3, family=4, vrid=51, priority=100, adver_int_ms=1000, addresses=vips, src=src, dst=dst
    )
    pkt = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(msg), 0, 0, 255, 112, 0, src, dst) + msg
    pkts = [pkt] * BATCH

    def decode_all() -> bool:
        return all(refcodec.decode_ipv4(p).valid for p in pkts)

    assert benchmark.pedantic(decode_all, rounds=30, iterations=1, warmup_rounds=2)
