"""What the daemon shows outside: the status file (its rows, written on transitions and when due, checked
every second) and the metrics endpoint's snapshot, both read from the running instances, their links and the
engine's counters.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING

from fastvrrp import __version__, _engine
from fastvrrp.daemon import metrics, status
from fastvrrp.daemon.driver import RunningInstance
from fastvrrp.daemon.links import AF, Link

if TYPE_CHECKING:
    from fastvrrp.daemon.control import Operator


class StatusWriter:
    """Writes the status file through `book` (nothing without one): `write()` after transitions, `tick()`
    every second (the book says when a periodic write is due)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        engine: _engine.Engine,
        insts: dict[str, RunningInstance],
        book: status.StatusBook | None,
        operator: Operator | None = None,
    ) -> None:
        self.loop = loop
        self.engine = engine
        self.insts = insts
        self.book = book
        self.operator = operator  # drain and offsets set through the control socket
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
        offsets = self.operator.offsets if self.operator is not None else {}
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
                    drained=core.drained,
                    offset=offsets.get(i.name, 0),
                )
            )
        book.write(rows, __version__)


def metrics_snapshot(
    engine: _engine.Engine,
    insts: dict[str, RunningInstance],
    links: dict[tuple, Link],
    operator: Operator | None = None,
) -> metrics.Snapshot:
    """One row per instance and per receive socket, at scrape time."""
    offsets = operator.offsets if operator is not None else {}
    rows = [
        metrics.instance_row(
            i.name,
            i.io.link.ifname,
            i.io.link.family,
            i.io.cfg.virtual_router_id,
            i.core,
            engine.slot_stats(i.slot),
            i.io.cfg.priority,
            offset=offsets.get(i.name, 0),
        )
        for i in list(insts.values())
    ]
    rx = [
        metrics.RxRow(l.ifname, l.family, engine.rx_stats(l.rx_id)["datagrams"], engine.drops(l.rx_id))
        for l in list(links.values())
    ]
    return metrics.Snapshot(rows, rx, {"instances": len(rows)})
