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
from fastvrrp.daemon import metrics, metrics_http
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


def test_exposition_text_exact():
    row = metrics.InstanceRow(**{f: getattr(ROW, f) for f in ROW.__slots__ if f != "static"})
    row.released_master, row.drops = 1, (1, 2, 3, 4, 5, 6, 7)
    row.vips, row.excluded_vips, row.garp_delay_s = (
        (("192.0.2.1", "eth0"), ("198.51.100.0/24", "eth1")),
        (),
        5,
    )
    row.since, row.reason = 1700000000.25, "master down timer expired"
    row.trackers = (("interface", "eth0", 0, False), ("script", 'chk "x"', -20, False))
    tracker = metrics.TrackerRow("script", 'chk "x"', False, runs=9, failures={"exit": 4}, running=True)
    socket_row = metrics.RxRow("eth0", 4, 12, DROPS, tx_sent=40, tx_errors=2)
    folded = {"report": 3, "announce": 0, "lower_priority": 12}
    snap = metrics.Snapshot([row], [socket_row], [tracker], {"instances": 1}, folded)
    text = metrics.render(snap).decode()
    lbl = 'iname="VI_1",intf="eth0",vrid="51",family="4"'
    klbl = 'iname="VI_1",intf="eth0",vrid="51"'
    for line in (
        "# HELP fastvrrp_instance_state VRRP state: 0 init, 1 backup, 2 master, 3 fault.",
        "# TYPE fastvrrp_instance_state gauge",
        f"fastvrrp_instance_state{{{lbl}}} 2",
        f"fastvrrp_instance_priority{{{lbl}}} 90",
        f"fastvrrp_instance_base_priority{{{lbl}}} 100",
        "# TYPE fastvrrp_adverts_received_total counter",
        f"fastvrrp_adverts_received_total{{{lbl}}} 3",
        f"fastvrrp_adverts_sent_total{{{lbl}}} 7",
        f"fastvrrp_became_master_total{{{lbl}}} 1",
        f"fastvrrp_became_backup_total{{{lbl}}} 2",
        f"fastvrrp_released_master_total{{{lbl}}} 1",
        f"fastvrrp_s9_replies_total{{{lbl}}} 4",
        f"fastvrrp_s9_suppressed_total{{{lbl}}} 5",
        f'fastvrrp_instance_drops_total{{{lbl},reason="interval_mismatch"}} 1',
        f'fastvrrp_instance_drops_total{{{lbl},reason="address_list_mismatch"}} 3',
        f'fastvrrp_instance_drops_total{{{lbl},reason="ignored_not_running"}} 7',
        f"fastvrrp_last_transition_timestamp_seconds{{{lbl}}} 1700000000.250",
        f'fastvrrp_last_transition_info{{{lbl},state="MASTER",reason="master down timer expired"}} 1',
        f'fastvrrp_instance_tracker_weight{{{lbl},kind="script",tracker="chk \\"x\\""}} -20',
        f'fastvrrp_instance_tracker_fault{{{lbl},kind="interface",tracker="eth0"}} 0',
        'fastvrrp_rx_datagrams_total{intf="eth0",family="4"} 12',
        'fastvrrp_rx_drops_total{intf="eth0",family="4",reason="ttl"} 2',
        'fastvrrp_rx_drops_total{intf="eth0",family="4",reason="checksum"} 6',
        "# TYPE fastvrrp_tx_datagrams_total counter",
        'fastvrrp_tx_datagrams_total{intf="eth0",family="4"} 40',
        'fastvrrp_tx_errors_total{intf="eth0",family="4"} 2',
        'fastvrrp_tracker_state{kind="script",tracker="chk \\"x\\""} 0',
        'fastvrrp_tracker_runs_total{kind="script",tracker="chk \\"x\\""} 9',
        'fastvrrp_tracker_failures_total{kind="script",tracker="chk \\"x\\"",reason="exit"} 4',
        "fastvrrp_instances 1",
        "# TYPE fastvrrp_deferred_folded_total counter",
        'fastvrrp_deferred_folded_total{kind="announce"} 0',
        'fastvrrp_deferred_folded_total{kind="lower_priority"} 12',
        'fastvrrp_deferred_folded_total{kind="report"} 3',
        # mehdy/keepalived-exporter's names, labels and values
        "keepalived_up 1",
        'keepalived_vrrp_state{iname="VI_1",intf="eth0",vrid="51",ip_address="192.0.2.1"} 2',
        'keepalived_vrrp_state{iname="VI_1",intf="eth1",vrid="51",ip_address="198.51.100.0/24"} 2',
        f"keepalived_advertisements_received_total{{{klbl}}} 3",
        f"keepalived_advertisements_sent_total{{{klbl}}} 7",
        f"keepalived_become_master_total{{{klbl}}} 1",
        f"keepalived_release_master_total{{{klbl}}} 1",
        f"keepalived_advertisements_interval_errors_total{{{klbl}}} 1",
        f"keepalived_address_list_errors_total{{{klbl}}} 3",
        f"keepalived_authentication_mismatch_total{{{klbl}}} 2",
        f"keepalived_packet_length_errors_total{{{klbl}}} 0",
        f"keepalived_priority_zero_received_total{{{klbl}}} 1",
        f"keepalived_priority_zero_sent_total{{{klbl}}} 0",
        f"keepalived_gratuitous_arp_delay_total{{{klbl}}} 5",
        'keepalived_script_status{name="chk \\"x\\""} 0',
        'keepalived_script_state{name="chk \\"x\\""} 1',
    ):
        assert line + "\n" in text, line
    assert 'instance="' not in text and "_created" not in text
    assert text.count("fastvrrp_instance_drops_total{") == 7
    assert text.count("fastvrrp_rx_drops_total{") == len(DROP_REASONS) - 1
    assert "keepalived_vrrp_excluded_state" not in text  # no excluded VIPs: no family
    assert text.count('fastvrrp_build_info{version="') == 1
    # every family is announced once, right before its series
    for name in {ln.split("{")[0].split(" ")[0] for ln in text.splitlines() if not ln.startswith("#")}:
        assert text.count(f"# TYPE {name} ") == 1, name
    # off: no keepalived_* family at all
    assert "keepalived_" not in metrics.render(snap, keepalived=False).decode()


def test_instance_without_vips_and_unknown_script():
    row = metrics.InstanceRow("VI_2", "eth1", 6, 9, 1, 100, 100, excluded_vips=(("2001:db8::1", "eth1"),))
    tracker = metrics.TrackerRow("script", "s", None, runs=0)
    text = metrics.render(metrics.Snapshot([row], [], [tracker])).decode()
    assert 'keepalived_vrrp_state{iname="VI_2",intf="eth1",vrid="9",ip_address=""} 1\n' in text
    assert (
        'keepalived_vrrp_excluded_state{iname="VI_2",intf="eth1",vrid="9",ip_address="2001:db8::1"} 1\n'
        in text
    )
    assert "keepalived_script_status" not in text  # the exporter skips a status it does not know
    assert 'fastvrrp_tracker_state{kind="script",tracker="s"} -1\n' in text
    assert "fastvrrp_last_transition" not in text  # no transition known yet


def test_promtool_check_metrics_finds_nothing(promtool_bin, own_loopback):
    """The whole endpoint output (VRRP families of both namings, trackers, process metrics) passes promtool's
    linter: names, types, HELP, units, counters ending in _total."""
    import subprocess

    row = metrics.InstanceRow("VI_1", "eth0", 4, 51, 2, 90, 100, drops=(0,) * 7, since=1.0, reason="x")
    row.vips, row.excluded_vips = (("192.0.2.1", "eth0"),), (("192.0.2.9", "eth0"),)
    row.trackers = (("interface", "eth0", 0, False),)
    trackers = [
        metrics.TrackerRow("script", "chk", True, runs=3, failures={"exit": 1}, running=False),
        metrics.TrackerRow("file", "f", False, value=3, failures={"fault_value": 1}),
    ]
    snap = metrics.Snapshot([row], [metrics.RxRow("eth0", 4, 12, DROPS)], trackers, {"instances": 1})
    srv = metrics.MetricsServer(lambda: snap, "127.0.0.1", 0)
    body = srv.render_now()
    assert b"process_cpu_seconds_total" in body
    out = subprocess.run([promtool_bin, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), (out.stdout, out.stderr)


def test_only_the_gzip_body_is_held_between_scrapes():
    """A rendering leaves its text nowhere: the server keeps the gzip bytes (Packed) for cache_s, whose plain
    form is the text render_now makes."""
    rows = [metrics.InstanceRow(f"VI_{i}", "eth0", 4, i + 1, 2, 100, 100, adverts_rx=i) for i in range(300)]
    srv = metrics.MetricsServer(lambda: iter([metrics.Snapshot(rows[:100]), metrics.Snapshot(rows[100:])]))
    srv.process = False
    packed = srv.output()
    assert isinstance(packed, metrics_http.Packed) and srv._body == [] and srv.output() is packed
    text = b"".join(packed.plain())
    assert text == srv.render_now() and packed.size == len(text) and len(packed.gz) < len(text) / 5
    assert text.count(b"fastvrrp_instance_drops_total{") == 300 * len(metrics.CORE_DROP_REASONS)


def test_vip_text_as_keepalived_prints_it():
    assert metrics.vip_text("192.0.2.1", 32) == "192.0.2.1"
    assert metrics.vip_text("192.0.2.1", 24) == "192.0.2.1/24"
    assert metrics.vip_text("2001:db8::1", 128) == "2001:db8::1"
    assert metrics.vip_text("2001:db8::1", 64) == "2001:db8::1/64"


def test_chunks_render_like_one_snapshot():
    rows = [metrics.InstanceRow(f"VI_{i}", "eth0", 4, i + 1, 2, 100, 100, adverts_rx=i) for i in range(7)]
    whole = metrics.render(metrics.Snapshot(rows)).decode()
    copies = [metrics.InstanceRow(f"VI_{i}", "eth0", 4, i + 1, 2, 100, 100, adverts_rx=i) for i in range(7)]
    parts = metrics.render([metrics.Snapshot(copies[:3]), metrics.Snapshot(copies[3:])]).decode()
    assert parts == whole
    # a percent sign in a name is not a format directive
    odd = metrics.InstanceRow("VI_%d", "eth0", 4, 1, 2, 100, 100)
    assert 'iname="VI_%d"' in metrics.render(metrics.Snapshot([odd])).decode()


def test_no_created_series_and_no_ok_reason():
    text = metrics.render(metrics.Snapshot([ROW] * 3, [metrics.RxRow("eth0", 6, 1, DROPS)])).decode()
    assert "_created" not in text
    assert 'reason="ok"' not in text
    assert text.count("fastvrrp_adverts_sent_total{") == 3
    assert text.count("keepalived_vrrp_state{") == 3


def test_instance_row_from_a_core_instance_and_engine_slot_stats():
    core = VrrpInstance(InstanceParams(name="VI_1", vrid=7, priority=255, primary_ip=bytes([192, 0, 2, 1])))
    core.start(0)  # an address owner goes MASTER at once (RFC 5798 6.4.1)
    core.shutdown(100)  # S10: resigns with a priority-0 advert
    core.stats.adverts_rx = 5
    row = metrics.instance_row("VI_1", "eth0", 4, 7, core, {"sent": 10, "rx_fast": 20}, 255)
    assert row.state == int(core.state)
    assert row.became_master == 1 and row.priority_zero_tx == 1
    assert row.released_master == 1  # MASTER -> INIT (keepalived's release_master)
    assert row.adverts_rx == 25  # core 5 + fast path 20
    assert row.adverts_tx == 11  # engine 10 + the priority-0 advert sent outside the slot


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def test_scrape_over_http_with_cache(own_loopback):
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
        assert b'fastvrrp_adverts_received_total{iname="VI_1",intf="eth0",vrid="51",family="4"} 1\n' in body
        assert _get(f"http://{host}:{port}/metrics")[2] == body  # within cache_s: the same bytes
        assert len(calls) == 1 and srv.scrapes == 2 and srv.renders == 1
        wait_for(lambda: b"} 2\n" in _get(f"http://{host}:{port}/metrics")[2], 5, 0.05, what="a new scrape")
        assert _get(f"http://{host}:{port}/nope")[0] == 404
    finally:
        srv.close()


def test_snapshot_taken_on_the_event_loop(own_loopback):
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


def test_snapshot_failure_is_a_500_not_a_dead_server(own_loopback):
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
def test_scrape_time_for_1000_instances(n, own_loopback):
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
    series = sum(1 for line in body.splitlines() if line.startswith((b"fastvrrp_", b"keepalived_")))
    # per instance: 15 fastvrrp families, 7 drop reasons, 15 keepalived counters, 1 keepalived_vrrp_state;
    # per socket: datagrams, kernel absorbed, 16 drop reasons, tx datagrams and errors; build_info and
    # keepalived_up
    assert series == n * 38 + 16 * 2 + 16 * 16 + 16 * 2 + 2
    assert b"process_cpu_seconds_total " in body and b"process_resident_memory_bytes " in body
    print(f"\n{n} instances: {series} series, {len(body) / 1024:.0f} KiB, scrape {min(times) * 1000:.1f} ms "
          f"(render {srv.last_render_s * 1000:.1f} ms)")  # fmt: skip
    assert min(times) < 2.0  # orders of magnitude: ~50 ms expected on the 2-core VM
