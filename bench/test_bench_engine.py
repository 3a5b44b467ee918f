"""Engine benchmarks: batch decode + validate + demux through feed() (backup fast path, nothing goes up) and
run() with 1000 masters due, each beside a pure-Python reference so the ratio prints.

Targets (docs/costs.md#performance-targets): at most 150 ns per v3 advert on the fast path and at least 30x
the reference (tests/refcodec.py decode_ipv4 + a dict demux).
"""

from __future__ import annotations

import heapq
import socket
import sys
from pathlib import Path

import pytest

from fastvrrp import _wire
from fastvrrp._engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import refcodec  # noqa: E402

SRC = socket.inet_aton("192.0.2.2")
GROUP4 = socket.inet_aton("224.0.0.18")
VIP = socket.inet_aton("192.0.2.100")
DOWN_US = 360_937
NVRID = 255


def ip4(msg: bytes, src: bytes = SRC, dst: bytes = GROUP4, ttl: int = 255) -> bytes:
    import struct

    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(msg), 0, 0, ttl, 112, 0, src, dst)
    return hdr[:10] + struct.pack("!H", refcodec.checksum(hdr)) + hdr[12:] + msg


def adverts(n: int) -> list[bytes]:
    """n v3 IPv4 adverts from the master at SRC, one VIP each, spread over VRIDs 1..255."""
    out = []
    for i in range(n):
        vrid = 1 + i % NVRID
        msg = _wire.build_advert(
            version=3,
            family=4,
            vrid=vrid,
            priority=200,
            adver_int_ms=100,
            addresses=[VIP],
            src=SRC,
            dst=GROUP4,
        )
        out.append(ip4(msg))
    return out


def per_item(benchmark, n: int) -> None:
    if benchmark.stats is not None:  # None under --benchmark-disable
        st = benchmark.stats.stats
        benchmark.extra_info["ns_per_item_min"] = round(st.min / n * 1e9, 1)
        benchmark.extra_info["ns_per_item_median"] = round(st.median / n * 1e9, 1)


@pytest.mark.parametrize("n", [1, 32, 256])
def test_feed_backup_fast_path_compiled(benchmark, n):
    eng = Engine(capture=True)
    rx = eng.add_rx_socket(-1, 4, own=[socket.inet_aton("192.0.2.1")])
    for vrid in range(1, NVRID + 1):
        s = eng.add_slot(rx, vrid, 3)
        eng.backup(s, SRC, 200, 100, DOWN_US, DOWN_US)
    pkts = adverts(n)
    assert eng.feed(rx, 0, pkts) == []  # the fast path: nothing goes up
    benchmark.group = f"engine feed {n} v3 adverts"
    benchmark.extra_info["impl"] = "compiled"
    result = benchmark(eng.feed, rx, 1000, pkts)
    assert result == []
    assert sum(eng.drops(rx)) == 0
    per_item(benchmark, n)


class RefSlot:
    __slots__ = ("version", "mode", "master_src", "master_prio", "master_int_ms", "down_us", "deadline_us")

    def __init__(self) -> None:
        self.version = 3
        self.mode = "backup"
        self.master_src = SRC
        self.master_prio = 200
        self.master_int_ms = 100
        self.down_us = DOWN_US
        self.deadline_us = DOWN_US


def ref_feed(demux: dict, own: set, drops: list, now_us: int, packets: list) -> list:
    """The same receive path in plain Python: decode, drop by reason, demux, fast-path match."""
    events = []
    for pkt in packets:
        p = refcodec.decode_ipv4(pkt)
        if not p.valid:
            drops[p.reason_code if hasattr(p, "reason_code") else 1] += 1
            continue
        if p.src in own:
            drops[14] += 1
            continue
        slot = demux.get(p.vrid)
        if slot is None:
            drops[10] += 1
            continue
        if p.version != slot.version:
            drops[11] += 1
            continue
        if (
            slot.mode == "backup"
            and p.src == slot.master_src
            and p.priority == slot.master_prio
            and p.priority
            and p.adver_int_ms == slot.master_int_ms
        ):
            slot.deadline_us = now_us + slot.down_us
            continue
        events.append((2, p.vrid, p))
    return events


@pytest.mark.parametrize("n", [1, 32, 256])
def test_feed_backup_fast_path_reference(benchmark, n):
    demux = {vrid: RefSlot() for vrid in range(1, NVRID + 1)}
    own = {socket.inet_aton("192.0.2.1")}
    drops = [0] * 17
    pkts = adverts(n)
    assert ref_feed(demux, own, drops, 0, pkts) == []
    benchmark.group = f"engine feed {n} v3 adverts"
    benchmark.extra_info["impl"] = "reference"
    result = benchmark(ref_feed, demux, own, drops, 1000, pkts)
    assert result == [] and sum(drops) == 0
    per_item(benchmark, n)


MASTERS = 1000
INTERVAL_US = 1_000_000


def test_run_1000_masters_due_compiled(benchmark):
    eng = Engine(capture=True)
    rxs = [eng.add_rx_socket(-1, 4) for _ in range(4)]
    tx = eng.add_tx_socket(-1, 4)
    msg = _wire.build_advert(
        version=3, family=4, vrid=1, priority=200, adver_int_ms=1000, addresses=[VIP], src=SRC, dst=GROUP4
    )
    for i in range(MASTERS):
        s = eng.add_slot(rxs[i // 250], 1 + i % 250, 3)
        eng.set_adverts(s, tx, [(GROUP4, 2, msg)])
        eng.master(s, INTERVAL_US, INTERVAL_US + i)  # all due within the 0.5 ms window
    clock = [0]

    def setup():
        eng.flush()
        eng.take_sent()
        clock[0] += INTERVAL_US

    def target():
        return eng.run(clock[0])

    benchmark.group = "engine run 1000 masters due"
    benchmark.extra_info["impl"] = "compiled"
    result = benchmark.pedantic(target, setup=setup, rounds=300, iterations=1, warmup_rounds=5)
    assert result == [] and eng.queued() == MASTERS
    per_item(benchmark, MASTERS)


def test_run_1000_masters_due_reference(benchmark):
    """heapq of (deadline, slot) plus a list of prebuilt bytes: what a Python driver would do."""
    msg = b"m" * 12
    heap = [(INTERVAL_US + i, i) for i in range(MASTERS)]
    heapq.heapify(heap)
    queue: list = []
    clock = [0]

    def setup():
        queue.clear()
        clock[0] += INTERVAL_US

    def target():
        limit = clock[0] + 500
        while heap and heap[0][0] <= limit:
            d, s = heap[0]
            queue.append((s, msg))
            heapq.heapreplace(heap, (d + INTERVAL_US, s))
        return []

    benchmark.group = "engine run 1000 masters due"
    benchmark.extra_info["impl"] = "reference"
    benchmark.pedantic(target, setup=setup, rounds=300, iterations=1, warmup_rounds=5)
    assert len(queue) == MASTERS
    per_item(benchmark, MASTERS)
