"""The Prometheus endpoint: exact exposition text, no _created series, a real HTTP scrape, the cache."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request

import pytest
import uvloop

from fastvrrp._wire import DROP_REASONS
from fastvrrp.core.instance import VrrpInstance
from fastvrrp.core.types import InstanceParams
from fastvrrp.daemon import metrics
from fastvrrp.lab.namespaces import wait_for

ROW = metrics.InstanceRow(
    name="VI_1",
    iface="eth0",
    family=4,
    vrid=51,
    state=2,
    priority=90,
    base_priority=100,
    adverts_rx=3,
    adverts_tx=7,
    became_master=1,
    became_backup=2,
    became_fault=0,
    priority_zero_rx=1,
    priority_zero_tx=0,
    s9_replies=4,
    s9_suppressed=5,
)
DROPS = [0] * len(DROP_REASONS)
DROPS[DROP_REASONS.index("ttl")] = 2
DROPS[DROP_REASONS.index("checksum")] = 6


def _inst(name: str, kind: str, value: str, doc: str) -> str:
    labels = '{family="4",iface="eth0",instance="VI_1",vrid="51"}'
    suffix = "_total" if kind == "counter" else ""
    return (
        f"# HELP fastvrrp_{name}{suffix} {doc}\n# TYPE fastvrrp_{name}{suffix} {kind}\n"
        f"fastvrrp_{name}{suffix}{labels} {value}\n"
    )


def test_exposition_text_exact():
    snap = metrics.Snapshot([ROW], [metrics.RxRow("eth0", 4, 12, DROPS)], {"instances": 1})
    expected = (
        _inst("instance_state", "gauge", "2.0", "VRRP state: 0 init, 1 backup, 2 master, 3 fault.")
        + _inst("instance_priority", "gauge", "90.0", "Effective priority (after tracking).")
        + _inst("instance_base_priority", "gauge", "100.0", "Configured priority.")
        + _inst(
            "instance_drained", "gauge", "0.0", "1 while drained by fastvrrp ctl drain (runs at priority 1)."
        )
        + _inst("instance_priority_offset", "gauge", "0.0", "Offset set by fastvrrp ctl priority.")
        + _inst("adverts_received", "counter", "3.0", "VRRP adverts received and accepted for the instance.")
        + _inst("adverts_sent", "counter", "7.0", "VRRP adverts sent by the instance.")
        + _inst("became_master", "counter", "1.0", "Transitions to MASTER.")
        + _inst("became_backup", "counter", "2.0", "Transitions to BACKUP.")
        + _inst("became_fault", "counter", "0.0", "Transitions to FAULT.")
        + _inst(
            "priority_zero_received", "counter", "1.0", "Adverts with priority 0 received (master resigned)."
        )
        + _inst("priority_zero_sent", "counter", "0.0", "Adverts with priority 0 sent (we resigned).")
        + _inst("s9_replies", "counter", "4.0", "Adverts sent in reply to a lower priority (RFC 9568 S9).")
        + _inst("s9_suppressed", "counter", "5.0", "S9 replies held back by the rate limit.")
        + "# HELP fastvrrp_rx_datagrams_total Datagrams read from a VRRP receive socket.\n"
        "# TYPE fastvrrp_rx_datagrams_total counter\n"
        'fastvrrp_rx_datagrams_total{family="4",iface="eth0"} 12.0\n'
        "# HELP fastvrrp_rx_drops_total Received datagrams dropped, by reason (codec validity and demux).\n"
        "# TYPE fastvrrp_rx_drops_total counter\n"
        + "".join(
            f'fastvrrp_rx_drops_total{{family="4",iface="eth0",reason="{r}"}} '
            f"{ {'ttl': '2.0', 'checksum': '6.0'}.get(r, '0.0') }\n"
            for r in DROP_REASONS[1:]
        )
        + "# HELP fastvrrp_instances instances.\n# TYPE fastvrrp_instances gauge\nfastvrrp_instances 1.0\n"
    )
    assert metrics.render(snap).decode() == expected
    assert "_created" not in expected


def test_no_created_series_and_no_ok_reason():
    text = metrics.render(metrics.Snapshot([ROW] * 3, [metrics.RxRow("eth0", 6, 1, DROPS)])).decode()
    assert "_created" not in text
    assert 'reason="ok"' not in text
    assert text.count("fastvrrp_adverts_sent_total{") == 3


def test_instance_row_from_a_core_instance_and_engine_slot_stats():
    core = VrrpInstance(InstanceParams(name="VI_1", vrid=7, priority=255, primary_ip=bytes([192, 0, 2, 1])))
    core.start(0)  # an address owner goes MASTER at once (RFC 5798 6.4.1)
    core.shutdown(100)  # S10: resigns with a priority-0 advert
    core.stats.adverts_rx = 5
    row = metrics.instance_row("VI_1", "eth0", 4, 7, core, {"sent": 10, "rx_fast": 20}, 255)
    assert row.state == int(core.state)
    assert row.became_master == 1 and row.priority_zero_tx == 1
    assert row.adverts_rx == 25  # core 5 + fast path 20
    assert row.adverts_tx == 11  # engine 10 + the priority-0 advert sent outside the slot


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def test_scrape_over_http_with_cache():
    calls = []

    def snapshot():
        calls.append(1)
        row = metrics.InstanceRow("VI_1", "eth0", 4, 51, 1, 100, 100, adverts_rx=len(calls))
        return metrics.Snapshot([row], [])

    srv = metrics.MetricsServer(snapshot, "127.0.0.1", 0, cache_s=0.3)
    host, port = srv.start()
    try:
        assert port > 0
        status, ctype, body = _get(f"http://{host}:{port}/metrics")
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
        assert (
            b'fastvrrp_adverts_received_total{family="4",iface="eth0",instance="VI_1",vrid="51"} 1.0' in body
        )
        assert _get(f"http://{host}:{port}/metrics")[2] == body  # within cache_s: the same bytes
        assert len(calls) == 1 and srv.scrapes == 2 and srv.renders == 1
        wait_for(lambda: b"} 2.0" in _get(f"http://{host}:{port}/metrics")[2], 5, 0.05, what="a new scrape")
        assert _get(f"http://{host}:{port}/nope")[0] == 404
    finally:
        srv.close()


def test_snapshot_taken_on_the_event_loop():
    """With loop=, the snapshot runs on the loop thread (where the counters change), not the HTTP thread."""
    import threading

    async def main():
        loop = asyncio.get_running_loop()
        where = []

        def snapshot():
            where.append(threading.get_ident())
            return metrics.Snapshot([ROW], [])

        srv = metrics.MetricsServer(snapshot, "127.0.0.1", 0, loop=loop)
        host, port = srv.start()
        try:
            status, _, body = await loop.run_in_executor(None, _get, f"http://{host}:{port}/metrics")
        finally:
            srv.close()
        return status, body, where

    status, body, where = uvloop.run(main())
    assert status == 200 and b"fastvrrp_instance_state{" in body
    assert where == [threading.get_ident()]


def test_snapshot_failure_is_a_500_not_a_dead_server():
    def snapshot():
        raise RuntimeError("boom")

    srv = metrics.MetricsServer(snapshot, "127.0.0.1", 0)
    host, port = srv.start()
    try:
        status, _, body = _get(f"http://{host}:{port}/metrics")
        assert status == 500 and b"boom" in body
    finally:
        srv.close()


@pytest.mark.parametrize("n", [1000])
def test_scrape_time_for_1000_instances(n):
    rows = [
        metrics.InstanceRow(
            f"VI_{i}", f"eth{i % 8}", 4 if i % 2 else 6, i % 255 + 1, 2, 100, 100, i, i, 1, 1, 0, 0, 0, 0, 0
        )
        for i in range(n)
    ]
    rx = [metrics.RxRow(f"eth{i}", f, 1000, list(range(len(DROP_REASONS)))) for i in range(8) for f in (4, 6)]
    snap = metrics.Snapshot(rows, rx)
    srv = metrics.MetricsServer(lambda: snap, "127.0.0.1", 0, cache_s=0)
    host, port = srv.start()
    try:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            status, _, body = _get(f"http://{host}:{port}/metrics")
            times.append(time.perf_counter() - t0)
            assert status == 200
    finally:
        srv.close()
    series = sum(1 for line in body.splitlines() if not line.startswith(b"#"))
    assert series == n * 14 + 16 + 16 * 16
    print(f"\n{n} instances: {series} series, {len(body) / 1024:.0f} KiB, scrape {min(times) * 1000:.1f} ms "
          f"(render {srv.last_render_s * 1000:.1f} ms)")  # fmt: skip
    assert min(times) < 2.0  # orders of magnitude: ~50 ms expected on the 2-core VM
