"""Where the metrics come from: the tracking's per-instance weights and falls (daemon/tracking.py and
snapshots.tracker_rows, on a configuration read by fastvrrp.config), and the rendering on the event loop
in pieces between which the loop runs its other callbacks."""

from __future__ import annotations

import asyncio
import urllib.request

import uvloop

from fastvrrp.config import load
from fastvrrp.daemon import metrics
from fastvrrp.daemon.snapshots import tracker_rows
from fastvrrp.daemon.tracking import Tracking
from fastvrrp.health.runner import ScriptRunner
from fastvrrp.health.status import TrackerStatus

CONF = """
vrrp_script chk {
    script /bin/true
    weight -30
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    priority 100
    track_interface {
        eth1 weight 10
    }
    track_script {
        chk
    }
    virtual_ipaddress {
        192.0.2.1/24
    }
}
"""


def test_tracking_keeps_weights_applied_and_falls(tmp_path):
    path = tmp_path / "keepalived.conf"
    path.write_text(CONF)
    tr = Tracking(load(str(path)), ScriptRunner(), lambda name, eff: None)
    tr.interface("eth0", True)
    tr.interface("eth1", True)
    applied = {(k, n): (w, f) for k, n, w, f in tr.applied["VI_1"]}
    assert applied == {
        ("interface", "eth1"): (10, False),
        ("script", "chk"): (0, False),
        ("interface", "eth0"): (0, False),
    }
    tr._callback("script")("chk", TrackerStatus(False, reason="exit 1"))  # as a ScriptTracker reports
    tr.interface("eth0", False)
    tr.interface("eth0", False)  # the same state again is not another fall
    tr.interface("eth0", True)
    tr.interface("eth0", False)
    applied = {(k, n): (w, f) for k, n, w, f in tr.applied["VI_1"]}
    assert applied[("script", "chk")] == (-30, False)
    assert applied[("interface", "eth0")] == (0, True)  # weight 0: down means FAULT
    rows = {(r.kind, r.name): r for r in tracker_rows(tr)}
    assert rows[("interface", "eth0")].up is False
    assert rows[("interface", "eth0")].failures == {"link_down": 2}
    assert rows[("interface", "eth1")].up is True and rows[("interface", "eth1")].failures == {}
    assert rows[("script", "chk")].up is False  # not started: no runs or failure counts of its own
    text = metrics.render(metrics.Snapshot((), (), list(rows.values()))).decode()
    assert 'fastvrrp_tracker_failures_total{kind="interface",tracker="eth0",reason="link_down"} 2\n' in text
    assert 'keepalived_script_status{name="chk"} 0\n' in text


def test_rendering_on_the_loop_lets_other_callbacks_run_between_chunks(own_loopback):
    async def main():
        loop = asyncio.get_running_loop()
        order: list[str] = []

        def source():
            for i in range(3):
                order.append(f"chunk {i}")
                loop.call_soon(order.append, f"other after chunk {i}")  # e.g. an advert timer due now
                yield metrics.Snapshot([metrics.InstanceRow(f"VI_{i}", "eth0", 4, i + 1, 2, 100, 100)])

        srv = metrics.MetricsServer(source, "127.0.0.1", 0, loop=loop, cache_s=0)
        host, port = srv.start()
        try:
            body = await loop.run_in_executor(
                None, lambda: urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read()
            )
        finally:
            srv.close()
        return order, body, srv

    order, body, srv = uvloop.run(main())
    assert order[:6] == [
        "chunk 0",
        "other after chunk 0",
        "chunk 1",
        "other after chunk 1",
        "chunk 2",
        "other after chunk 2",
    ]
    assert body.count(b"fastvrrp_instance_state{") == 3
    assert srv.last_pieces == 3 and len(srv.max_pieces) == 1
