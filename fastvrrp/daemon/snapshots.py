"""What the daemon shows outside: the status file (its rows, written on transitions and when due, checked
every second), the metrics endpoint's snapshot and the rows of keepalived's dump files, all read from the
running instances, their links and the engine's counters.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from fastvrrp import __version__, _engine
from fastvrrp.daemon import status
from fastvrrp.daemon.driver import RunningInstance, advert_counts
from fastvrrp.daemon.links import AF, Link
from fastvrrp.daemon.tracking import Tracking
from fastvrrp.io import vmac

if TYPE_CHECKING:
    from fastvrrp.daemon import dumps, metrics
    from fastvrrp.daemon.control import Operator

log = logging.getLogger("fastvrrp")


# Transitions write the status file at once, up to STATUS_BURST writes back to back; beyond that at most one
# per STATUS_MIN_GAP_S (the last change is always written): a flapping pair or a mass takeover of thousands
# of instances costs one write (O(instances)) per gap, not one per loop turn (docs/costs.md#per-transition).
STATUS_MIN_GAP_S = 0.2
STATUS_BURST = 5


class StatusWriter:
    """Writes the status file through `book` (nothing without one): `write()` after transitions (at once
    while writes are rare, then at most once per STATUS_MIN_GAP_S: a later change is written when the gap
    has passed), `tick()` every second (the book says when a periodic write is due)."""

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
        self._later: asyncio.TimerHandle | None = None  # a write held back by the minimum gap
        self._written_at = -1e9  # loop time of the last write
        self._credit = float(STATUS_BURST)  # writes allowed at once; one more per STATUS_MIN_GAP_S
        self.writes = 0

    def tick(self) -> None:
        self.write()
        self._timer = self.loop.call_later(1.0, self.tick)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._later is not None:
            self._later.cancel()
            self._later = None

    def _deferred(self) -> None:
        self._later = None
        self.write()

    def write(self, force: bool = False) -> None:
        book = self.book
        if book is None or not (force or book.due()):
            return
        now = self.loop.time()
        if not force:
            if self._later is not None:
                return  # already planned
            credit = min(STATUS_BURST, self._credit + (now - self._written_at) / STATUS_MIN_GAP_S)
            if credit < 1:
                self._later = self.loop.call_later((1 - credit) * STATUS_MIN_GAP_S, self._deferred)
                return
            self._credit = credit - 1
        if self._later is not None:
            self._later.cancel()
            self._later = None
        self._written_at = now
        self.writes += 1
        book.write(self._rows(book), __version__)

    def _rows(self, book: status.StatusBook) -> Iterator[status.InstanceStatus]:
        """The instances' rows, made one at a time while the file is written (status.write_status)."""
        offsets = self.operator.offsets if self.operator is not None else {}
        for i in list(self.insts.values()):
            since, reason = book.since.get(i.name, (time.time(), "starting"))
            core, io = i.core, i.io
            ms = core.master_src
            adverts_rx, adverts_tx = advert_counts(core.stats, self.engine.slot_stats(i.slot))
            yield status.InstanceStatus(
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
                adverts_rx=adverts_rx,
                adverts_tx=adverts_tx,
                drained=core.drained,
                offset=offsets.get(i.name, 0),
            )


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
        operator: Operator | None = None,
        folded: dict[str, int] | None = None,
    ) -> None:
        self.engine = engine
        self.insts = insts
        self.links = links
        self.folded = folded  # DaemonPort.folded (the same dict, counted on)
        self.tracking = tracking
        self.book = book
        self.chunk = chunk
        self.operator = operator  # drain and offsets set through the control socket
        _import_metrics()
        self._vips: dict[str, tuple[Any, tuple, tuple]] = {}  # name -> (its cfg, vips, excluded vips)
        # name -> (cfg, Tracking, tracker count, RowLabels): the rendered labels are made once, not at each
        # scrape (the Renderer makes its per-chunk templates from them).
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
        rx = [self._socket_row(l) for l in list(self.links.values())]
        yield metrics.Snapshot(
            (), rx, tracker_rows(self.tracking()), {"instances": len(self.insts)}, dict(self.folded or {})
        )

    def _socket_row(self, link: Link) -> metrics.RxRow:
        """A link's receive counters and drops, and what its transmit socket sent and had refused."""
        tx = self.engine.tx_stats(link.tx_id)
        rx = self.engine.rx_stats(link.rx_id)
        drops = self.engine.drops(link.rx_id)
        return metrics.RxRow(
            link.ifname, link.family, rx["datagrams"], drops, tx["sent"], tx["errors"], rx["kernel"]
        )

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
        r.drained = int(i.core.drained)
        if self.operator is not None:
            r.priority_offset = self.operator.offsets.get(i.name, 0)
        return r


def _import_metrics() -> None:
    """daemon/metrics.py (and what it imports) is loaded by the runs that serve metrics, not by every run
    (docs/costs.md#imports): the first MetricsSource binds this module's `metrics`."""
    global metrics
    from fastvrrp.daemon import metrics


def _vip_labels(vips: Any, iface: str | None) -> tuple[tuple[str, str], ...]:
    return tuple((metrics.vip_text(str(v.address), v.prefixlen), v.dev or iface or "") for v in vips)


def tracker_rows(tr: Tracking | None) -> list[metrics.TrackerRow]:
    """One row per tracker the configuration uses (interfaces included), from the Tracking's statuses."""
    if tr is None:
        return []
    _import_metrics()
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


def dump_rows(
    engine: _engine.Engine,
    insts: dict[str, RunningInstance],
    book: status.StatusBook | None,
    tracking: Any,
    vmac_prefix: str = "vrrp",
    started: float | None = None,
) -> list[dumps.InstanceDump]:
    """The rows of keepalived's dump files (daemon/dumps.py), read on the loop at the signal."""
    from fastvrrp.daemon import dumps

    now_wall, now_mono = time.time(), time.monotonic_ns() // 1000
    rows = []
    for i in list(insts.values()):
        core, io = i.core, i.io
        cfg, link = io.cfg, io.link
        fam = AF[link.family]
        state = core.state.name
        parent = None
        ifname = link.ifname
        if cfg.use_vmac and cfg.interface:
            parent = cfg.interface
            ifname = vmac.vmac_name(vmac_prefix, cfg.virtual_router_id, cfg.family, cfg.vmac_name)
        deadline = engine.deadline(i.slot)
        eff = tracking.current.get(i.name) if tracking is not None else None
        since = book.since.get(i.name) if book is not None else None
        backup = state == "BACKUP"
        rows.append(
            dumps.InstanceDump(
                cfg=cfg,
                state=state,
                effective_priority=core.priority,
                ifname=ifname,
                parent_ifname=parent,
                src_ip=socket.inet_ntop(fam, core.config.primary_ip),
                master_src=socket.inet_ntop(fam, core.master_src) if backup and core.master_src else None,
                master_priority=(core.master_priority or 0) if backup else 0,
                master_adver_int_ms=core.master_adver_interval_us // 1000,
                last_transition=since[0] if since else (started or now_wall),
                read_timeout=now_wall + (deadline - now_mono) / 1e6 if deadline >= 0 else None,
                master_down_us=core.master_down_interval_us,
                vipset=i.holds_addresses,
                faults=len(eff.faults) if eff is not None else 0,
                fd_in=link.socks.rx.fileno(),
                fd_out=link.socks.tx.fileno(),
                ifindex=i.ifindex,
                counters=dumps.keepalived_counters(core.stats, engine.slot_stats(i.slot), state == "MASTER"),
            )
        )
    return rows


def script_rows(cfg: Any, tracking: Any, kind: str = "script") -> list[dumps.ScriptDump]:
    """Every vrrp_script (kind "script") or track_file (kind "file") an instance tracks, with its latest
    result and who tracks it with what weight."""
    from fastvrrp.daemon import dumps

    configs = cfg.vrrp_scripts if kind == "script" else cfg.track_files
    out = []
    for name, sc in configs.items():
        users = []
        for inst in cfg.instances:
            for ref in inst.track_script if kind == "script" else inst.track_file:
                if ref.name == name:
                    users.append((inst.name, sc.weight if ref.weight is None else ref.weight))
        if not users:
            continue
        up, value = tracking.status.get((kind, name), (None, None)) if tracking is not None else (None, None)
        out.append(dumps.ScriptDump(sc, up, users, value))
    return out


class DumpWriter:
    """keepalived's dump files for a running Daemon (read through its attributes at each signal, so a
    reload's new configuration and trackers are seen): the rows are read at once, so every line is of one
    moment; the text is built on the loop a hundred instances per turn, and the file is written by the
    loop's executor. daemon/dumps.py is imported at the first signal, not by every run
    (docs/costs.md#imports). `directory` None: keepalived's (dumps.DEFAULT_DIR)."""

    def __init__(self, daemon: Any, directory: str | None = None) -> None:
        self.daemon = daemon
        self._directory = directory
        self._baseline: dumps.StatsBaseline | None = None
        self.started = time.time()
        self.written = 0
        self.errors = 0

    @property
    def directory(self) -> str:
        if self._directory is None:
            from fastvrrp.daemon.dumps import DEFAULT_DIR

            self._directory = DEFAULT_DIR
        return self._directory

    @property
    def baseline(self) -> dumps.StatsBaseline:
        """The counters at the last STATS_CLEAR (none before the first)."""
        if self._baseline is None:
            from fastvrrp.daemon.dumps import StatsBaseline

            self._baseline = StatsBaseline()
        return self._baseline

    def path(self, filename: str) -> str:
        return os.path.join(self.directory, filename)

    def _rows(self) -> list[dumps.InstanceDump]:
        d = self.daemon
        gd = d.cfg.global_defs
        return dump_rows(d.engine, d.insts, d.status.book, d.tracking, gd.vmac_prefix, self.started)

    def _since_clear(self, rows: list[dumps.InstanceDump]) -> list[dumps.InstanceDump]:
        self.baseline.forget_except(r.cfg.name for r in rows)
        for r in rows:
            r.counters = self.baseline.since_clear(r.cfg.name, r.counters)
        return rows

    async def data(self) -> None:
        """SIGUSR1: keepalived.data."""
        from fastvrrp.daemon import dumps

        d = self.daemon
        rows = self._rows()
        cfg = d.cfg
        scripts = script_rows(cfg, d.tracking)
        by_name = {s.cfg.name: s.cfg for s in scripts}
        parts = [dumps.data_head(cfg.global_defs, cfg.static_ipaddress)]
        files = script_rows(cfg, d.tracking, "file")
        parts += await _in_chunks(rows, lambda chunk: dumps.topology_text(chunk, by_name, cfg.track_files))
        parts.append(dumps.data_tail(rows, cfg.global_defs, scripts, cfg.sync_groups, files))
        await self._write(dumps.DATA_FILE, "".join(parts))

    async def stats(self, clear: bool = False) -> None:
        """SIGUSR2: keepalived.stats; with `clear` (keepalived's STATS_CLEAR) the counters start again."""
        from fastvrrp.daemon import dumps

        rows = self._rows()
        raw = {r.cfg.name: dict(r.counters) for r in rows}
        rows = self._since_clear(rows)
        if clear:
            self.baseline.clear(raw)
        parts = await _in_chunks(rows, dumps.render_stats)
        await self._write(dumps.STATS_FILE, "".join(parts))

    async def json(self) -> None:
        """The JSON signal: keepalived.json."""
        from fastvrrp.daemon import dumps

        rows = self._since_clear(self._rows())
        scripts = self.daemon.cfg.vrrp_scripts
        parts = await _in_chunks(rows, lambda chunk: dumps.json_entries(chunk, scripts))
        await self._write(dumps.JSON_FILE, "[" + ",".join(p for p in parts if p) + "]\n")

    async def _write(self, filename: str, text: str) -> None:
        from fastvrrp.daemon import dumps

        path = self.path(filename)
        try:
            await self.daemon.loop.run_in_executor(None, dumps.write_atomic, path, text)
        except OSError as exc:
            self.errors += 1
            log.error("cannot write %s: %s", path, exc)
            return
        self.written += 1
        log.info("wrote %s", path)


DUMP_CHUNK = 100  # instances rendered per loop turn: ~2 ms, so the adverts of other instances keep their time


async def _in_chunks(rows: list[dumps.InstanceDump], render: Any) -> list[str]:
    """Render `rows` DUMP_CHUNK at a time, letting the loop run between chunks (the rows were read at once,
    so the text is of one moment however long it takes)."""
    parts = []
    for i in range(0, len(rows), DUMP_CHUNK):
        if i:
            await asyncio.sleep(0)
        parts.append(render(rows[i : i + DUMP_CHUNK]))
    return parts
