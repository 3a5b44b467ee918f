"""The Prometheus endpoint: one custom collector over plain integer counters, read at scrape time.

VRRP-NOTES 7: the per-packet path never calls the client (counters live in the core's `Stats` and in the
engine's C slots); a scrape asks for a snapshot of rows, turns them into metric families and renders them.
Counters here carry no `_created` series (they would double output and scrape time). The server is a WSGI
server in its own daemon thread on a dedicated address, and serves the rendered bytes from a cache for
`cache_s` (1 s), so several scrapers cost one rendering.

Labels: instance, iface, family, vrid; the state is a gauge (0 init, 1 backup, 2 master, 3 fault), never a
label; nothing per VIP or per advert source (both unbounded).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, ThreadingWSGIServer, generate_latest

from fastvrrp._wire import DROP_REASONS

INSTANCE_LABELS = ("instance", "iface", "family", "vrid")
RX_LABELS = ("iface", "family")


@dataclass(slots=True)
class InstanceRow:
    """One VRRP instance at scrape time (plain ints; see instance_row() for where they come from)."""

    name: str
    iface: str
    family: int  # 4 or 6
    vrid: int
    state: int  # core.types.State value: 0 init, 1 backup, 2 master, 3 fault
    priority: int  # effective
    base_priority: int  # configured
    adverts_rx: int = 0  # core + engine fast path
    adverts_tx: int = 0  # engine sends (periodic and immediate) + priority-0 resignations
    became_master: int = 0
    became_backup: int = 0
    became_fault: int = 0
    priority_zero_rx: int = 0
    priority_zero_tx: int = 0
    s9_replies: int = 0  # RFC 9568 S9: a master answering a lower-priority advert
    s9_suppressed: int = 0
    drained: int = 0  # 1 while drained by `fastvrrp ctl drain`
    priority_offset: int = 0  # `fastvrrp ctl priority`


@dataclass(slots=True)
class RxRow:
    """One receive socket (interface, family): datagrams read, and drops by reason (index = _wire.Reason)."""

    iface: str
    family: int
    datagrams: int
    drops: Sequence[int] = ()


@dataclass(slots=True)
class Snapshot:
    instances: Sequence[InstanceRow] = ()
    rx: Sequence[RxRow] = ()
    extra: dict[str, int] = field(default_factory=dict)  # fastvrrp_<key> gauges without labels


def instance_row(
    name: str,
    iface: str,
    family: int,
    vrid: int,
    core: Any,
    slot_stats: dict[str, int] | None,
    base_priority: int,
    offset: int = 0,
) -> InstanceRow:
    """A row from a core VrrpInstance (state, priority, stats) and the engine's slot_stats(slot) dict.

    The engine counts every advert it queues for the slot (`sent`: periodic and send_now); the core's
    priority-0 resignation goes out by send_raw, outside the slot, so it is added. Received adverts are the
    ones the core saw plus the ones the fast path absorbed (`rx_fast`).
    """
    st = core.stats
    ss = slot_stats or {}
    return InstanceRow(
        name=name,
        iface=iface,
        family=family,
        vrid=vrid,
        state=int(core.state),
        priority=core.priority,
        base_priority=base_priority,
        adverts_rx=st.adverts_rx + ss.get("rx_fast", 0),
        adverts_tx=ss.get("sent", 0) + st.priority_zero_tx,
        became_master=st.became_master,
        became_backup=st.became_backup,
        became_fault=st.became_fault,
        priority_zero_rx=st.priority_zero_rx,
        priority_zero_tx=st.priority_zero_tx,
        s9_replies=st.s9_replies,
        s9_suppressed=st.s9_suppressed,
        drained=int(getattr(core, "drained", False)),
        priority_offset=offset,
    )


# (metric name without prefix, type, help, InstanceRow attribute)
_INSTANCE_METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("instance_state", "gauge", "VRRP state: 0 init, 1 backup, 2 master, 3 fault.", "state"),
    ("instance_priority", "gauge", "Effective priority (after tracking).", "priority"),
    ("instance_base_priority", "gauge", "Configured priority.", "base_priority"),
    ("instance_drained", "gauge", "1 while drained by fastvrrp ctl drain (runs at priority 1).", "drained"),
    ("instance_priority_offset", "gauge", "Offset set by fastvrrp ctl priority.", "priority_offset"),
    ("adverts_received", "counter", "VRRP adverts received and accepted for the instance.", "adverts_rx"),
    ("adverts_sent", "counter", "VRRP adverts sent by the instance.", "adverts_tx"),
    ("became_master", "counter", "Transitions to MASTER.", "became_master"),
    ("became_backup", "counter", "Transitions to BACKUP.", "became_backup"),
    ("became_fault", "counter", "Transitions to FAULT.", "became_fault"),
    (
        "priority_zero_received",
        "counter",
        "Adverts with priority 0 received (master resigned).",
        "priority_zero_rx",
    ),
    ("priority_zero_sent", "counter", "Adverts with priority 0 sent (we resigned).", "priority_zero_tx"),
    ("s9_replies", "counter", "Adverts sent in reply to a lower priority (RFC 9568 S9).", "s9_replies"),
    ("s9_suppressed", "counter", "S9 replies held back by the rate limit.", "s9_suppressed"),
)


def families(snap: Snapshot) -> list[Metric]:
    """The metric families of one snapshot (what the collector yields)."""
    out: list[Metric] = []
    rows = snap.instances
    labels = [(r.name, r.iface, str(r.family), str(r.vrid)) for r in rows]
    for short, kind, doc, attr in _INSTANCE_METRICS:
        fam: GaugeMetricFamily | CounterMetricFamily
        if kind == "gauge":
            fam = GaugeMetricFamily("fastvrrp_" + short, doc, labels=INSTANCE_LABELS)
        else:
            fam = CounterMetricFamily("fastvrrp_" + short, doc, labels=INSTANCE_LABELS)
        for lv, r in zip(labels, rows, strict=True):
            fam.add_metric(lv, getattr(r, attr))
        out.append(fam)
    dg = CounterMetricFamily(
        "fastvrrp_rx_datagrams", "Datagrams read from a VRRP receive socket.", labels=RX_LABELS
    )
    drops = CounterMetricFamily(
        "fastvrrp_rx_drops",
        "Received datagrams dropped, by reason (codec validity and demux).",
        labels=(*RX_LABELS, "reason"),
    )
    for rx in snap.rx:
        fam_label = str(rx.family)
        dg.add_metric((rx.iface, fam_label), rx.datagrams)
        for i, n in enumerate(rx.drops):
            if i == 0 or i >= len(DROP_REASONS):
                continue  # index 0 is "ok", not a drop
            drops.add_metric((rx.iface, fam_label, DROP_REASONS[i]), n)
    out += [dg, drops]
    for key, value in sorted(snap.extra.items()):
        g = GaugeMetricFamily("fastvrrp_" + key, key.replace("_", " ") + ".")
        g.add_metric((), value)
        out.append(g)
    return out


class VrrpCollector:
    """The one collector: `snapshot()` returns a Snapshot; called at each (uncached) scrape."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from families(self.snapshot())

    def describe(self) -> list[Metric]:
        return []  # registering must not call snapshot() (it may need the loop)


def render(snap: Snapshot) -> bytes:
    """The exposition text of one snapshot (text format 0.0.4)."""
    return generate_latest(VrrpCollector(lambda: snap))  # type: ignore[arg-type]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


class MetricsServer:
    """Serves /metrics from a thread; the rendered bytes are cached for `cache_s`.

    With `loop`, snapshot() runs on that event loop (call_soon_threadsafe) so it reads the engine and the
    instances where they change; the HTTP thread waits for it up to `snapshot_timeout_s`, then renders.
    """

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        addr: str = "127.0.0.1",
        port: int = 9650,
        *,
        cache_s: float = 1.0,
        loop: asyncio.AbstractEventLoop | None = None,
        snapshot_timeout_s: float = 2.0,
    ) -> None:
        self.collector = VrrpCollector(self._snapshot)
        self._user_snapshot = snapshot
        self.addr = addr
        self.port = port
        self.cache_s = cache_s
        self.loop = loop
        self.snapshot_timeout_s = snapshot_timeout_s
        self._lock = threading.Lock()
        self._cached: tuple[float, bytes] | None = None
        self._httpd: Any = None
        self._thread: threading.Thread | None = None
        # Plain counters about the endpoint itself.
        self.scrapes = 0
        self.renders = 0
        self.last_render_s = 0.0

    def _snapshot(self) -> Snapshot:
        if self.loop is None:
            return self._user_snapshot()
        fut: concurrent.futures.Future[Snapshot] = concurrent.futures.Future()

        def on_loop() -> None:
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(self._user_snapshot())
                except BaseException as exc:  # handed to the HTTP thread, which answers 500
                    fut.set_exception(exc)

        self.loop.call_soon_threadsafe(on_loop)
        return fut.result(self.snapshot_timeout_s)

    def output(self) -> bytes:
        """The exposition bytes, from the cache if it is younger than cache_s."""
        with self._lock:  # one rendering at a time; concurrent scrapers wait for it and share it
            now = time.monotonic()
            self.scrapes += 1
            if self._cached is not None and now - self._cached[0] < self.cache_s:
                return self._cached[1]
            t0 = time.perf_counter()
            body = generate_latest(self.collector)  # type: ignore[arg-type]
            self.last_render_s = time.perf_counter() - t0
            self.renders += 1
            self._cached = (time.monotonic(), body)
            return body

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path not in ("/", "/metrics"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics\n"]
        try:
            body = self.output()
        except Exception as exc:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [f"snapshot failed: {exc!r}\n".encode()]
        start_response(
            "200 OK", [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4), ("Content-Length", str(len(body)))]
        )
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def start(self) -> tuple[str, int]:
        """Bind and serve in a daemon thread; returns the bound (address, port) (port 0 = ephemeral)."""
        server_cls: type[ThreadingWSGIServer] = ThreadingWSGIServer
        if ":" in self.addr:

            class _V6(ThreadingWSGIServer):
                address_family = socket.AF_INET6

            server_cls = _V6
        self._httpd = make_server(self.addr, self.port, self._app, server_cls, handler_class=_Quiet)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="fastvrrp-metrics", daemon=True
        )
        self._thread.start()
        return self.addr, self.port

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
