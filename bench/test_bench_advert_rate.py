"""The sustainable advert rate of one process (issue 11 item 1; docs/costs.md#sustainable-advert-rate).

The engine alone, as the daemon drives it (sleep to the earliest deadline, run(), flush()), sends the adverts
of N master instances at 10 ms through one raw socket on a veth whose peer is in another namespace (the
kernel's delivery is charged to the sender, as on a real segment; there is no bridge and no listener, so a
real segment costs more). For each N, a window of WINDOW_S seconds: the share of N / A sent, the worst
lateness of a fire, and the CPU of this process. The sustainable rate is the largest N / A whose worst gap
(interval + lateness) stays below the backup's Master_Down_Interval (36.1 ms at priority 100).

Run on an otherwise quiet machine:
    .venv/bin/python -m pytest -q bench/test_bench_advert_rate.py \
        --benchmark-only
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from bench.conftest import print_table
from fastvrrp import _wire
from fastvrrp._engine import Engine
from fastvrrp.io import sockets
from fastvrrp.io.nsexec import call_in_netns
from fastvrrp.lab.testbed import master_down_ms

pytestmark = [pytest.mark.netns]

INTERVAL_US = 10_000
WINDOW_S = float(os.environ.get("FASTVRRP_RATE_WINDOW", "3"))
COUNTS = [int(x) for x in os.environ.get("FASTVRRP_RATE_COUNTS", "500,1000,1500,2000,3000,4000").split(",")]
ROWS: list[str] = []


def _now() -> int:
    return time.monotonic_ns() // 1000


def _drive(count: int, tx_sock: socket.socket) -> dict[str, float]:
    eng = Engine(max_slots=4096, batch=64)
    tx = eng.add_tx_socket(tx_sock.fileno(), 4)
    rxs = []
    for _ in range((count + 254) // 255):
        rx = eng.add_rx_socket(-1, 4)  # no receive socket: the slots only need a (socket, VRID) each
        eng.close_rx(rx)
        rxs.append(rx)
    src, group = socket.inet_aton("192.0.2.1"), socket.inet_aton("224.0.0.18")
    start = _now() + 20_000
    slots = []
    for i in range(count):
        vrid = 1 + i % 255
        msg = _wire.build_advert(
            version=3, family=4, vrid=vrid, priority=200, adver_int_ms=10, addresses=[src], src=src, dst=group
        )
        s = eng.add_slot(rxs[i // 255], vrid, 3)
        eng.set_adverts(s, tx, [(group, 0, msg)])
        eng.master(s, INTERVAL_US, start + (i * INTERVAL_US) // count)  # phases spread over the interval
        slots.append(s)
    while _now() < start:  # the window opens with the first deadline
        time.sleep((start - _now()) / 1e6)
    cpu0, t0 = time.process_time(), time.monotonic()
    end = t0 + WINDOW_S
    while time.monotonic() < end:
        wait = (eng.next_deadline() - _now()) / 1e6
        if wait > 0:
            time.sleep(wait)
        eng.run(_now())
        eng.flush()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    st = [eng.slot_stats(s) for s in slots]
    lates = sorted(x["max_late_us"] for x in st)
    sent = eng.tx_stats(tx)["sent"]
    return {
        "share": sent / (count * wall * 1e6 / INTERVAL_US),
        "rate": sent / wall,
        "max_late_ms": lates[-1] / 1000,
        "p50_late_ms": lates[len(lates) // 2] / 1000,
        "cores": cpu / wall,
        "us_per_advert": cpu / sent * 1e6 if sent else 0.0,
        "errors": eng.tx_stats(tx)["errors"],
    }


@pytest.mark.parametrize("count", COUNTS)
def test_sustainable_advert_rate(lab, benchmark, count):
    a, b = lab.ns("a"), lab.ns("b")
    lab.veth(a, "ethA", b, "ethB")
    lab.addr(a, "ethA", "192.0.2.1/24")
    lab.addr(b, "ethB", "192.0.2.2/24")
    tx_sock = call_in_netns(a, lambda: sockets.open_tx("ethA", socket.if_nametoindex("ethA"), socket.AF_INET))
    try:
        r = benchmark.pedantic(_drive, args=(count, tx_sock), rounds=1, iterations=1)
    finally:
        tx_sock.close()
    mdi = master_down_ms(100, INTERVAL_US / 1000)
    gap = INTERVAL_US / 1000 + r["max_late_ms"]
    ok = gap < mdi and r["share"] >= 0.99
    benchmark.extra_info.update({k: round(v, 3) for k, v in r.items()})
    ROWS.append(
        f"{count:5d} x 10 ms  {r['rate']:9.0f}/s  {100 * r['share']:5.1f} %  "
        f"late p50 {r['p50_late_ms']:5.2f} ms "
        f"max {r['max_late_ms']:6.2f} ms  worst gap {gap:6.1f} ms (MDI {mdi:.1f})  {r['cores']:.2f} core  "
        f"{r['us_per_advert']:.2f} us/advert  {'sustained' if ok else 'NOT sustained'}"
    )
    assert r["rate"] > 0


@pytest.fixture(scope="module", autouse=True)
def _table(request):
    yield
    if ROWS:
        print_table(request, ["", "sustainable advert rate (one process, engine alone, veth):", *ROWS])
