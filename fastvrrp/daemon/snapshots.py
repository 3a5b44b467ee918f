"""What the daemon shows outside: the status file (its rows, written on transitions and when due, checked
every second) and the metrics endpoint's snapshot, both read from the running instances, their links and the
engine's counters.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from fastvrrp import __version__, _engine
from fastvrrp.daemon import metrics, status
from fastvrrp.daemon.driver import RunningInstance
from fastvrrp.daemon.links import AF, Link
from fastvrrp.daemon.tracking import Tracking


class StatusWriter:
    """Writes the status file through `book` (nothing without one): `write()` after transitions, `tick()`
    every second (the book says when a periodic write is due)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        engine: _engine.Engine,
        insts: dict[str, RunningInstance],
        book: status.StatusBook | None,
    ) -> None:
        self.loop = loop
        self.engine = engine
        self.insts = insts
        self.book = book
        self._timer: asyncio.TimerHandle | None = None

    def tick(self) -> None:
        self.write()
        self._timer = self.loop.call_later(1.0, self.tick)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def write(self, force: bool = False) -> None:
        book = self.book
        if book is None or not (force or book.due()):
            return
        rows = []
        for i in list(self.insts.values()):
            since, reason = book.since.get(i.name, (time.time(), "starting"))
            core, io = i.core, i.io
            ms = core.master_src
            rows.append(
                status.InstanceStatus(
                    name=i.name,
                    state=core.state.name,
                    since=since,
                    reason=reason,
                    priority=core.priority,
                    base_priority=io.cfg.priority,
                    master=socket.inet_ntop(AF[io.link.family], ms) if ms else None,
                    vips=[f"{v.address}/{v.prefixlen}" for v in io.vips],
                    interface=io.link.ifname,
                    family=io.link.family,
                    vrid=io.cfg.virtual_router_id,
                    vrrp_version=io.cfg.version,
                    adverts_rx=core.stats.adverts_rx + self.engine.slot_stats(i.slot).get("rx_fast", 0),
                    adverts_tx=self.engine.slot_stats(i.slot).get("sent", 0) + core.stats.priority_zero_tx,
                )
            )
        book.write(rows, __version__)


# What a tracker falling to down is counted as, for the trackers that have no runs (scripts and checks count
# each failed run by its own reason).
_DOWN_REASON = {"interface": "link_down", "process": "quorum_lost", "file": "fault_value"}


class MetricsSource:
    """The metrics endpoint's source: called at each rendering, it yields the instances in chunks of `chunk`
    rows, then the receive sockets and the trackers (metrics.MetricsServer renders each chunk in its own loop
    callback). `tracking` is a callable because a reload replaces the Tracking object."""

    def __init__(
        self,
        engine: _engine.Engine,
        insts: dict[str, RunningInstance],
        links: dict[tuple, Link],
        tracking: Callable[[], Tracking | None] = lambda: None,
        book: status.StatusBook | None = None,
        chunk: int = 50,
    ) -> None:
        self.engine = engine
        self.insts = insts
        self.links = links
        self.tracking = tracking
        self.book = book
        self.chunk = chunk
        self._vips: dict[str, tuple[Any, tuple, tuple]] = {}  # name -> (its cfg, vips, excluded vips)
        # name -> (cfg, Tracking, tracker count, RowLabels): the rendered labels stay the same objects from
        # scrape to scrape, so the Renderer's per-chunk templates are found again (metrics.Renderer).
        self._labels: dict[str, tuple[Any, Any, int, metrics.RowLabels]] = {}

    def __call__(self) -> Iterator[metrics.Snapshot]:
        names = list(self.insts)
        for i in range(0, len(names), self.chunk):
            tr = self.tracking()
            applied = tr.applied if tr is not None else {}
            since = self.book.since if self.book is not None else {}
            rows = []
            for name in names[i : i + self.chunk]:
                inst = self.insts.get(name)
                if inst is not None:  # removed by a reload since the scrape began
                    r = self.row(inst, applied.get(name, ()), since.get(name))
                    cached = self._labels.get(name)
                    if (
                        cached is None
                        or cached[0] is not inst.io.cfg
                        or cached[1] is not tr
                        or cached[2] != len(r.trackers)
                    ):
                        cached = self._labels[name] = (
                            inst.io.cfg,
                            tr,
                            len(r.trackers),
                            metrics.row_labels(r),
                        )
                    r.static = cached[3]
                    rows.append(r)
            if len(self._labels) > 2 * len(self.insts) + 100:  # forget the names reloads removed
                self._labels = {k: v for k, v in self._labels.items() if k in self.insts}
                self._vips = {k: v for k, v in self._vips.items() if k in self.insts}
            yield metrics.Snapshot(rows)
        rx = [
            metrics.RxRow(
                l.ifname, l.family, self.engine.rx_stats(l.rx_id)["datagrams"], self.engine.drops(l.rx_id)
            )
            for l in list(self.links.values())
        ]
        yield metrics.Snapshot((), rx, tracker_rows(self.tracking()), {"instances": len(self.insts)})

    def row(self, i: RunningInstance, applied: tuple, since: tuple[float, str] | None) -> metrics.InstanceRow:
        cfg = i.io.cfg
        r = metrics.instance_row(
            i.name,
            i.io.link.ifname,
            i.io.link.family,
            cfg.virtual_router_id,
            i.core,
            self.engine.slot_stats(i.slot),
            cfg.priority,
        )
        cached = self._vips.get(i.name)
        if cached is None or cached[0] is not cfg:
            cached = self._vips[i.name] = (
                cfg,
                _vip_labels(cfg.virtual_ipaddress, cfg.interface),
                _vip_labels(cfg.virtual_ipaddress_excluded, cfg.interface),
            )
        r.vips, r.excluded_vips = cached[1], cached[2]
        r.garp_delay_s = cfg.garp_master_delay_ms // 1000
        if since is not None:
            r.since, r.reason = since
        r.trackers = applied
        return r


def _vip_labels(vips: Any, iface: str | None) -> tuple[tuple[str, str], ...]:
    return tuple((metrics.vip_text(str(v.address), v.prefixlen), v.dev or iface or "") for v in vips)


def tracker_rows(tr: Tracking | None) -> list[metrics.TrackerRow]:
    """One row per tracker the configuration uses (interfaces included), from the Tracking's statuses."""
    if tr is None:
        return []
    rows = []
    for key in sorted(tr.users):
        kind, name = key
        up, value = tr.status.get(key, (None, None))
        obj = tr.by_key.get(key)
        row = metrics.TrackerRow(kind, name, up, value if kind == "file" else None)
        if kind in ("script", "check") and obj is not None:
            row.runs = obj.runs
            row.failures = dict(obj.failures)
            if kind == "script":
                row.running = obj.running
        elif tr.downs.get(key):
            row.failures = {_DOWN_REASON.get(kind, "down"): tr.downs[key]}
        rows.append(row)
    return rows
