"""The Prometheus endpoint: plain integer counters read at scrape time and rendered straight to the text
exposition format (version 0.0.4).

docs/kernel-notes.md#prometheus-client: the per-packet path never calls a metrics client (counters live in the
core's `Stats` and in the engine's C slots). A scrape walks the instances in chunks (`Snapshot`s) and renders
each chunk into per-family line lists (`Renderer`); the process metrics are read from /proc/self
(process_metrics.py). No client library is used: prometheus_client's generate_latest builds a Metric
object and a Sample tuple per series and costs ~45 ms for 8,000 series (docs/costs.md), where the plain
%-templates here render 1,000 instances (~40,000 series) within the 20 ms budget
(bench/test_bench_metrics.py).

Families, labels `iname`, `intf`, `vrid`, `family` (never `instance`: Prometheus's own target label):
fastvrrp_* (ours: docs in README "Metrics, dashboard and alerts") and, unless turned off
(`--no-keepalived-metrics`), the keepalived_* families of mehdy/keepalived-exporter under its names, labels
(`iname`, `intf`, `vrid`, and `ip_address` on the state; `name` on scripts) and values (state 0 INIT,
1 BACKUP, 2 MASTER, 3 FAULT; script status 0 BAD, 1 GOOD; script state 0 idle, 1 running), so dashboards
built on that exporter keep working. Nothing per advert source (unbounded).

The server (metrics_http.py) is a small HTTP/1.1 server in its own daemon threads; the rendering is held
gzip-encoded only, for `cache_s` (1 s), so several scrapers cost one rendering, and a scrape leaves nothing
behind (docs/costs.md#memory).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import platform
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter
from typing import Any

from fastvrrp import __version__
from fastvrrp._engine import DROP_REASONS  # the codec's reasons, then the engine's (rx_overflow)
from fastvrrp.daemon.driver import advert_counts
from fastvrrp.daemon.metrics_http import HttpServer, Packed
from fastvrrp.daemon.process_metrics import fix_malloc_thresholds, process_text, trim_heap

INSTANCE_LABELS = ("iname", "intf", "vrid", "family")

# Adverts the core (not the codec) discarded for one instance, by reason: core.types.Stats attributes.
CORE_DROP_REASONS: tuple[str, ...] = (
    "interval_mismatch",
    "auth_mismatch",
    "address_list_mismatch",
    "vrid_mismatch",
    "version_mismatch",
    "owner_discard",
    "ignored_not_running",
)


@dataclass(slots=True)
class InstanceRow:
    """One VRRP instance at scrape time (plain ints; see instance_row() for where they come from)."""

    name: str
    iface: str
    family: int  # 4 or 6
    vrid: int
    state: int  # core.types.State value: 0 init, 1 backup, 2 master, 3 fault (keepalived's numbers too)
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
    released_master: int = 0
    drops: Sequence[int] = ()  # in CORE_DROP_REASONS order
    vips: Sequence[tuple[str, str]] = ()  # (address as keepalived prints it, interface)
    excluded_vips: Sequence[tuple[str, str]] = ()
    garp_delay_s: int = 0  # garp_master_delay, what keepalived's data dump calls "Gratuitous ARP delay"
    since: float | None = None  # unix time of the last transition
    reason: str = ""  # why it happened
    trackers: Sequence[tuple[str, str, int, bool]] = ()  # (kind, name, weight applied, puts it in FAULT)
    static: RowLabels | None = None  # the rendered labels (made by the Renderer when None)
    drained: int = 0  # 1 while drained by `fastvrrp ctl drain`
    priority_offset: int = 0  # `fastvrrp ctl priority`


@dataclass(slots=True)
class RxRow:
    """One receive socket (interface, family): datagrams read, and drops by reason (index = _wire.Reason)."""

    iface: str
    family: int
    datagrams: int
    drops: Sequence[int] = ()
    tx_sent: int = 0  # datagrams the link's transmit socket sent
    tx_errors: int = 0  # datagrams the kernel refused (ENOBUFS, EAGAIN ...): counted and skipped
    kernel: int = 0  # of the datagrams, those the kernel fast path absorbed (io/kfilter.py)


@dataclass(slots=True)
class TrackerRow:
    """One tracker (vrrp_script, vrrp_check, track_file, vrrp_track_process, an interface)."""

    kind: str  # script, check, file, process, interface
    name: str
    up: bool | None  # None: no result yet
    value: int | None = None  # track_file's value
    runs: int | None = None  # scripts and checks: runs so far
    failures: dict[str, int] = field(default_factory=dict)  # by reason
    running: bool | None = None  # scripts: a run in progress now


@dataclass(slots=True)
class Snapshot:
    instances: Sequence[InstanceRow] = ()
    rx: Sequence[RxRow] = ()
    trackers: Sequence[TrackerRow] = ()
    extra: dict[str, int] = field(default_factory=dict)  # fastvrrp_<key> gauges without labels
    folded: dict[str, int] = field(default_factory=dict)  # deferred work folded, by kind (DaemonPort.folded)


def vip_text(address: str, prefixlen: int) -> str:
    """An address as keepalived's data dump prints it (what the exporter's ip_address label carries): the
    prefix only when it is not a host route."""
    full = 128 if ":" in address else 32
    return address if prefixlen == full else f"{address}/{prefixlen}"


def instance_row(
    name: str,
    iface: str,
    family: int,
    vrid: int,
    core: Any,
    slot_stats: dict[str, int] | None,
    base_priority: int,
) -> InstanceRow:
    """A row from a core VrrpInstance (state, priority, stats) and the engine's slot_stats(slot) dict
    (adverts received and sent as driver.advert_counts defines them)."""
    st = core.stats
    adverts_rx, adverts_tx = advert_counts(st, slot_stats)
    return InstanceRow(
        name,
        iface,
        family,
        vrid,
        int(core.state),
        core.priority,
        base_priority,
        adverts_rx,
        adverts_tx,
        st.became_master,
        st.became_backup,
        st.became_fault,
        st.priority_zero_rx,
        st.priority_zero_tx,
        st.s9_replies,
        st.s9_suppressed,
        st.released_master,
        (
            st.interval_mismatch,
            st.auth_mismatch,
            st.address_list_mismatch,
            st.vrid_mismatch,
            st.version_mismatch,
            st.owner_discard,
            st.ignored_not_running,
        ),
    )


# --- rendering ---------------------------------------------------------------------------------------------


def escape(value: str) -> str:
    """A label value as the text format wants it (backslash, double quote and newline escaped)."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


# (name, type, help, InstanceRow attribute): one series per instance, labels INSTANCE_LABELS. A new
# per-instance number (a drain flag, a priority offset ...) is one row here and an int attribute of
# InstanceRow, filled by instance_row() or snapshots.MetricsSource.row().
_INSTANCE_FAMILIES: tuple[tuple[str, str, str, str], ...] = (
    ("fastvrrp_instance_state", "gauge", "VRRP state: 0 init, 1 backup, 2 master, 3 fault.", "state"),
    ("fastvrrp_instance_priority", "gauge", "Effective priority (after tracking).", "priority"),
    ("fastvrrp_instance_base_priority", "gauge", "Configured priority.", "base_priority"),
    (
        "fastvrrp_instance_drained",
        "gauge",
        "1 while drained by fastvrrp ctl drain (runs at priority 1).",
        "drained",
    ),
    ("fastvrrp_instance_priority_offset", "gauge", "Offset set by fastvrrp ctl priority.", "priority_offset"),
    ("fastvrrp_adverts_received_total", "counter", "VRRP adverts received for the instance.", "adverts_rx"),
    ("fastvrrp_adverts_sent_total", "counter", "VRRP adverts sent by the instance.", "adverts_tx"),
    ("fastvrrp_became_master_total", "counter", "Transitions to MASTER.", "became_master"),
    ("fastvrrp_became_backup_total", "counter", "Transitions to BACKUP.", "became_backup"),
    ("fastvrrp_became_fault_total", "counter", "Transitions to FAULT.", "became_fault"),
    ("fastvrrp_released_master_total", "counter", "Transitions out of MASTER.", "released_master"),
    (
        "fastvrrp_priority_zero_received_total",
        "counter",
        "Adverts with priority 0 received (master resigned).",
        "priority_zero_rx",
    ),
    (
        "fastvrrp_priority_zero_sent_total",
        "counter",
        "Adverts with priority 0 sent (we resigned).",
        "priority_zero_tx",
    ),
    (
        "fastvrrp_s9_replies_total",
        "counter",
        "Adverts sent in reply to a lower priority (RFC 9568 S9).",
        "s9_replies",
    ),
    ("fastvrrp_s9_suppressed_total", "counter", "S9 replies held back by the rate limit.", "s9_suppressed"),
)

# mehdy/keepalived-exporter's per-instance families (labels iname, intf, vrid), from InstanceRow attributes;
# None: fastvrrp counts that error per receive socket before it knows the instance (fastvrrp_rx_drops_total
# has it by reason), so the per-instance value is 0.
_KEEPALIVED_FAMILIES: tuple[tuple[str, str, str | None], ...] = (
    ("keepalived_advertisements_received_total", "Advertisements received", "adverts_rx"),
    ("keepalived_advertisements_sent_total", "Advertisements sent", "adverts_tx"),
    ("keepalived_become_master_total", "Became master", "became_master"),
    ("keepalived_release_master_total", "Released master", "released_master"),
    ("keepalived_packet_length_errors_total", "Packet length errors", None),
    ("keepalived_advertisements_interval_errors_total", "Advertisement interval errors", "#0"),
    ("keepalived_ip_ttl_errors_total", "TTL errors", None),
    ("keepalived_invalid_type_received_total", "Invalid type errors", None),
    ("keepalived_address_list_errors_total", "Address list errors", "#2"),
    ("keepalived_authentication_invalid_total", "Authentication invalid", None),
    ("keepalived_authentication_mismatch_total", "Authentication mismatch", "#1"),
    ("keepalived_authentication_failure_total", "Authentication failure", None),
    ("keepalived_priority_zero_received_total", "Priority zero received", "priority_zero_rx"),
    ("keepalived_priority_zero_sent_total", "Priority zero sent", "priority_zero_tx"),
    ("keepalived_gratuitous_arp_delay_total", "Gratuitous ARP delay", "garp_delay_s"),
)

# Every family in output order: name -> (type, help).
_HEADERS: dict[str, tuple[str, str]] = {}
for _name, _kind, _doc, _ in _INSTANCE_FAMILIES:
    _HEADERS[_name] = (_kind, _doc)
_HEADERS.update(
    {
        "fastvrrp_instance_drops_total": (
            "counter",
            "Adverts the instance discarded for their meaning, by reason (codec drops: fastvrrp_rx_drops).",
        ),
        "fastvrrp_last_transition_timestamp_seconds": ("gauge", "Unix time of the last state transition."),
        "fastvrrp_last_transition_info": ("gauge", "The last state transition: state and reason (value 1)."),
        "fastvrrp_instance_tracker_weight": (
            "gauge",
            "Priority change a tracker applies to the instance now (0 while it puts it in FAULT).",
        ),
        "fastvrrp_instance_tracker_fault": ("gauge", "1 while the tracker puts the instance in FAULT."),
        "fastvrrp_rx_datagrams_total": (
            "counter",
            "Datagrams received on a VRRP receive socket: read by the daemon or absorbed by the kernel.",
        ),
        "fastvrrp_rx_kernel_absorbed_total": (
            "counter",
            "Adverts of a followed master absorbed by the kernel fast path (eBPF): heard, not read.",
        ),
        "fastvrrp_rx_drops_total": (
            "counter",
            "Received datagrams dropped, by reason (codec validity and demux).",
        ),
        "fastvrrp_tx_datagrams_total": ("counter", "Datagrams (adverts) sent by a VRRP transmit socket."),
        "fastvrrp_tx_errors_total": ("counter", "Datagrams a VRRP transmit socket could not send (refused)."),
        "fastvrrp_tracker_state": ("gauge", "Tracker state: 1 up, 0 down, -1 no result yet."),
        "fastvrrp_tracker_value": ("gauge", "The value a track_file holds."),
        "fastvrrp_tracker_runs_total": ("counter", "Runs of a vrrp_script or vrrp_check."),
        "fastvrrp_tracker_failures_total": (
            "counter",
            "Failures by reason: failed runs of scripts and checks, falls to down of the other trackers.",
        ),
        "fastvrrp_deferred_folded_total": (
            "counter",
            "Deferred work folded into the same instance's waiting work (the loop fell behind), by kind.",
        ),
        "fastvrrp_build_info": ("gauge", "fastvrrp's version (value 1)."),
        "keepalived_up": ("gauge", "Status"),
        "keepalived_vrrp_state": ("gauge", "State of vrrp"),
        "keepalived_vrrp_excluded_state": ("gauge", "State of vrrp with excluded VIP"),
    }
)
for _kname, _kdoc, _kattr in _KEEPALIVED_FAMILIES:
    _HEADERS[_kname] = ("counter", _kdoc)
_HEADERS["keepalived_script_status"] = ("gauge", "Tracker Script Status")
_HEADERS["keepalived_script_state"] = ("gauge", "Tracker Script State")


@dataclass(frozen=True, slots=True, eq=False)
class RowLabels:
    """What does not change between scrapes of one instance: its label strings, its VIPs and the names of
    its trackers. MetricsSource keeps one per instance; the Renderer makes its templates from them."""

    labels: str  # iname, intf, vrid, family
    klabels: str  # iname, intf, vrid (keepalived-exporter's)
    vips: tuple[str, ...]  # rendered label sets of keepalived_vrrp_state
    excluded: tuple[str, ...]
    trackers: tuple[str, ...]  # rendered label sets of the per-instance tracker families


def row_labels(r: InstanceRow) -> RowLabels:
    iname, vrid = escape(r.name), r.vrid
    ifc = escape(r.iface)
    vip_sets = tuple(
        f'iname="{iname}",intf="{escape(dev)}",vrid="{vrid}",ip_address="{escape(ip)}"'
        for ip, dev in (r.vips or (("", r.iface),))
    )
    excl = tuple(
        f'iname="{iname}",intf="{escape(dev)}",vrid="{vrid}",ip_address="{escape(ip)}"'
        for ip, dev in r.excluded_vips
    )
    lbl = f'iname="{iname}",intf="{ifc}",vrid="{vrid}",family="{r.family}"'
    trk = tuple(f'{lbl},kind="{kind}",tracker="{escape(name)}"' for kind, name, _, _ in r.trackers)
    return RowLabels(lbl, f'iname="{iname}",intf="{ifc}",vrid="{vrid}"', vip_sets, excl, trk)


def _pct(text: str) -> str:
    return text.replace("%", "%%")


def _joined(name: str, labels: Sequence[str], extra: str = "") -> str:
    """`name{<label set><extra>} %d` for each of `labels` (already %-escaped), one C-level join."""
    if not labels:
        return ""
    return f"{name}{{" + f"{extra}}} %d\n{name}{{".join(labels) + f"{extra}}} %d\n"


def _templates(statics: Sequence[RowLabels], keepalived: bool) -> dict[str, str]:
    """One %-format string per family for a chunk of instances: rendering a chunk is then one C-level
    `template % values` per family instead of one f-string per series. Made again at each scrape (a few
    joins per family and chunk): kept between scrapes they would hold ~3.4 MiB per 1,000 instances."""
    t: dict[str, str] = {}
    labels = [_pct(s.labels) for s in statics]
    for name, _, _, _ in _INSTANCE_FAMILIES:
        t[name] = _joined(name, labels)
    drops = "fastvrrp_instance_drops_total"
    one = "".join(f'{drops}{{%(l)s,reason="{why}"}} %%d\n' for why in CORE_DROP_REASONS)
    t[drops] = "".join([one % {"l": lbl} for lbl in labels])
    trackers = [_pct(x) for s in statics for x in s.trackers]
    t["fastvrrp_instance_tracker_weight"] = _joined("fastvrrp_instance_tracker_weight", trackers)
    t["fastvrrp_instance_tracker_fault"] = _joined("fastvrrp_instance_tracker_fault", trackers)
    if keepalived:
        klabels = [_pct(s.klabels) for s in statics]
        for name, _, _ in _KEEPALIVED_FAMILIES:
            t[name] = _joined(name, klabels)
        t["keepalived_vrrp_state"] = _joined(
            "keepalived_vrrp_state", [_pct(x) for s in statics for x in s.vips]
        )
        t["keepalived_vrrp_excluded_state"] = _joined(
            "keepalived_vrrp_excluded_state", [_pct(x) for s in statics for x in s.excluded]
        )
    return t


class Renderer:
    """Accumulates the text of each family chunk by chunk (`add`), then `finish()` returns the whole text."""

    def __init__(self, keepalived: bool = True) -> None:
        self.keepalived = keepalived
        self.lines: dict[str, list[str]] = {name: [] for name in _HEADERS}
        self.extra: dict[str, int] = {}

    def add(self, snap: Snapshot) -> None:
        if snap.instances:
            self._instances(snap.instances)
        self._rx(snap.rx)
        self._trackers(snap.trackers)
        self.extra.update(snap.extra)
        folded = self.lines["fastvrrp_deferred_folded_total"]
        for kind, n in sorted(snap.folded.items()):
            folded.append(f'fastvrrp_deferred_folded_total{{kind="{kind}"}} {n}\n')

    def _chunk_templates(self, rows: Sequence[InstanceRow]) -> dict[str, str]:
        statics = []
        for r in rows:
            if r.static is None or len(r.static.trackers) != len(r.trackers):
                r.static = row_labels(r)
            statics.append(r.static)
        return _templates(statics, self.keepalived)

    def _instances(self, rows: Sequence[InstanceRow]) -> None:
        t = self._chunk_templates(rows)
        lines = self.lines
        for name, _, _, attr in _INSTANCE_FAMILIES:
            lines[name].append(t[name] % tuple(map(attrgetter(attr), rows)))
        lines["fastvrrp_instance_drops_total"].append(
            t["fastvrrp_instance_drops_total"] % tuple(chain.from_iterable(_drops7(r) for r in rows))
        )
        if any(r.trackers for r in rows):
            applied = [x for r in rows for x in r.trackers]
            lines["fastvrrp_instance_tracker_weight"].append(
                t["fastvrrp_instance_tracker_weight"] % tuple(x[2] for x in applied)
            )
            lines["fastvrrp_instance_tracker_fault"].append(
                t["fastvrrp_instance_tracker_fault"] % tuple(int(x[3]) for x in applied)
            )
        # One string per chunk, as for the other families: the per-instance lines die in this callback, so
        # no small object of the scrape outlives it among what the loop allocates meanwhile (docs/costs.md).
        ts: list[str] = []
        info: list[str] = []
        for r in rows:
            if r.since is not None:
                lbl = r.static.labels  # type: ignore[union-attr]
                ts.append(f"fastvrrp_last_transition_timestamp_seconds{{{lbl}}} {r.since:.3f}\n")
                info.append(
                    f'fastvrrp_last_transition_info{{{lbl},state="{_STATE_NAMES[r.state]}",'
                    f'reason="{escape(r.reason)}"}} 1\n'
                )
        if ts:
            lines["fastvrrp_last_transition_timestamp_seconds"].append("".join(ts))
            lines["fastvrrp_last_transition_info"].append("".join(info))
        if self.keepalived:
            self._keepalived(rows, t)

    def _keepalived(self, rows: Sequence[InstanceRow], t: dict[str, str]) -> None:
        lines = self.lines
        for name, _, attr in _KEEPALIVED_FAMILIES:
            if attr is None:
                values: tuple[int, ...] = (0,) * len(rows)
            elif attr[0] == "#":
                i = int(attr[1:])
                values = tuple(_drops7(r)[i] for r in rows)
            else:
                values = tuple(map(attrgetter(attr), rows))
            lines[name].append(t[name] % values)
        # The exporter writes one series per VIP, labelled with the VIP's interface; an instance without VIPs
        # gets one series with an empty ip_address.
        lines["keepalived_vrrp_state"].append(
            t["keepalived_vrrp_state"] % tuple(r.state for r in rows for _ in r.static.vips)  # type: ignore[union-attr]
        )
        if t["keepalived_vrrp_excluded_state"]:
            lines["keepalived_vrrp_excluded_state"].append(
                t["keepalived_vrrp_excluded_state"] % tuple(r.state for r in rows for _ in r.static.excluded)  # type: ignore[union-attr]
            )

    def _rx(self, rows: Sequence[RxRow]) -> None:
        dg = self.lines["fastvrrp_rx_datagrams_total"]
        kern = self.lines["fastvrrp_rx_kernel_absorbed_total"]
        drops = self.lines["fastvrrp_rx_drops_total"]
        tx = self.lines["fastvrrp_tx_datagrams_total"]
        tx_err = self.lines["fastvrrp_tx_errors_total"]
        for rx in rows:
            lbl = f'intf="{escape(rx.iface)}",family="{rx.family}"'
            dg.append(f"fastvrrp_rx_datagrams_total{{{lbl}}} {rx.datagrams}\n")
            kern.append(f"fastvrrp_rx_kernel_absorbed_total{{{lbl}}} {rx.kernel}\n")
            tx.append(f"fastvrrp_tx_datagrams_total{{{lbl}}} {rx.tx_sent}\n")
            tx_err.append(f"fastvrrp_tx_errors_total{{{lbl}}} {rx.tx_errors}\n")
            for i, n in enumerate(rx.drops):
                if 0 < i < len(DROP_REASONS):  # index 0 is "ok", not a drop
                    drops.append(f'fastvrrp_rx_drops_total{{{lbl},reason="{DROP_REASONS[i]}"}} {n}\n')

    def _trackers(self, rows: Sequence[TrackerRow]) -> None:
        lines = self.lines
        for t in rows:
            lbl = f'kind="{t.kind}",tracker="{escape(t.name)}"'
            lines["fastvrrp_tracker_state"].append(
                f"fastvrrp_tracker_state{{{lbl}}} {-1 if t.up is None else int(t.up)}\n"
            )
            if t.value is not None:
                lines["fastvrrp_tracker_value"].append(f"fastvrrp_tracker_value{{{lbl}}} {t.value}\n")
            if t.runs is not None:
                lines["fastvrrp_tracker_runs_total"].append(
                    f"fastvrrp_tracker_runs_total{{{lbl}}} {t.runs}\n"
                )
            for why, n in sorted(t.failures.items()):
                lines["fastvrrp_tracker_failures_total"].append(
                    f'fastvrrp_tracker_failures_total{{{lbl},reason="{escape(why)}"}} {n}\n'
                )
            if self.keepalived and t.kind == "script":
                name = escape(t.name)
                if t.up is not None:  # the exporter skips a status it does not know (keepalived's INIT)
                    lines["keepalived_script_status"].append(
                        f'keepalived_script_status{{name="{name}"}} {int(t.up)}\n'
                    )
                if t.running is not None:
                    lines["keepalived_script_state"].append(
                        f'keepalived_script_state{{name="{name}"}} {int(t.running)}\n'
                    )

    def finish(self) -> str:
        return "".join(self.family_texts())

    def family_texts(self, piece: int = 1 << 30) -> Iterator[str]:
        """The text in strings of about `piece` characters at most (a family is split between two of its
        chunks' lines when it is longer), so that the caller can encode it in pieces; each family's lines are
        let go once taken (the Renderer is spent afterwards)."""
        lines = self.lines
        lines["fastvrrp_build_info"].append(
            f'fastvrrp_build_info{{version="{escape(__version__)}",python="{platform.python_version()}"}} 1\n'
        )
        if self.keepalived:
            lines["keepalived_up"].append("keepalived_up 1\n")
        extra = [
            (f"fastvrrp_{key}", ("gauge", f"{key.replace('_', ' ')}."), [f"fastvrrp_{key} {value}\n"])
            for key, value in sorted(self.extra.items())
        ]
        group: list[str] = []
        size = 0
        for name, (kind, doc), body in chain(((n, _HEADERS[n], b) for n, b in lines.items()), extra):
            if not body:
                continue
            group.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")
            for text in body:
                if size + len(text) > piece and group:
                    yield "".join(group)
                    group, size = [], 0
                group.append(text)
                size += len(text)
            body.clear()
        if group:
            yield "".join(group)


_NO_DROPS = (0,) * len(CORE_DROP_REASONS)


def _drops7(r: InstanceRow) -> Sequence[int]:
    return r.drops if len(r.drops) == len(CORE_DROP_REASONS) else _NO_DROPS


_STATE_NAMES = ("INIT", "BACKUP", "MASTER", "FAULT")


def render(snap: Snapshot | Iterable[Snapshot], keepalived: bool = True) -> bytes:
    """The exposition text of one snapshot, or of a sequence of partial ones (text format 0.0.4); without
    the process metrics (MetricsServer adds them)."""
    r = Renderer(keepalived)
    for part in [snap] if isinstance(snap, Snapshot) else snap:
        r.add(part)
    return r.finish().encode()


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the text exposition format 0.0.4


ENCODE_PIECE = 128 * 1024  # characters joined and encoded per loop callback (~0.1 ms)

Source = Callable[[], "Snapshot | Iterator[Snapshot]"]


class MetricsServer:
    """Serves /metrics from a thread; the rendering is held (gzip-encoded) for `cache_s`.

    `source()` returns a Snapshot or an iterator of partial Snapshots (chunks of instances). With `loop`,
    each chunk is taken *and rendered* in its own loop callback, so that the loop runs its timers and sockets
    between chunks: a scrape of 1,000 instances is ~20 pieces of well under 1 ms instead of one ~15 ms stall,
    and it does not render in the HTTP thread either (a second thread holding the GIL would delay the loop
    by up to the interpreter's 5 ms switch interval). The HTTP thread only waits (GIL released) for
    `snapshot_timeout_s`, compresses the text (zlib releases the GIL too) and sends the bytes.
    """

    def __init__(
        self,
        source: Source,
        addr: str = "127.0.0.1",
        port: int = 9650,
        *,
        cache_s: float = 1.0,
        loop: asyncio.AbstractEventLoop | None = None,
        snapshot_timeout_s: float = 2.0,
        keepalived: bool = True,
        process: bool = True,
    ) -> None:
        self.source = source
        self.addr = addr
        self.port = port
        self.cache_s = cache_s
        self.loop = loop
        self.snapshot_timeout_s = snapshot_timeout_s
        self.keepalived = keepalived
        self.process = process  # the process_* families (process_metrics.py)
        self._lock = threading.Lock()
        self._body: list[bytes] = []
        self._cached: tuple[float, Packed] | None = None
        self._httpd: HttpServer | None = None
        self._thread: threading.Thread | None = None
        # Plain counters about the endpoint itself.
        self.scrapes = 0
        self.renders = 0
        self.last_render_s = 0.0  # wall time from the first chunk to the last, loop gaps included
        self.last_pieces = 0
        self.last_max_piece_s = 0.0  # the longest single loop callback of the last rendering on the loop
        self.last_trim_s = 0.0  # malloc_trim after the last rendering (in the HTTP thread, GIL released)
        self.max_pieces: collections.deque[float] = collections.deque(maxlen=100)  # ... of the last 100

    def _pieces(self) -> Iterator[None]:
        """The rendering as steps of well under a millisecond each; the result is left in self._body as a
        list of byte strings (the response is written from the list: no 3 MB concatenation)."""
        r = Renderer(self.keepalived)
        got = self.source()
        self.last_pieces = 0
        for part in [got] if isinstance(got, Snapshot) else got:
            r.add(part)
            self.last_pieces += 1
            yield
        body: list[bytes] = []
        for text in r.family_texts(ENCODE_PIECE):  # a few large parts, each joined and encoded in one step
            body.append(text.encode())
            del text
            yield
        if self.process:
            body.append(process_text().encode())
        self._body = body

    def render_now(self, join: bool = True) -> bytes:
        """The whole rendering at once, in the caller's thread (tests, benchmarks, no loop); the text, or
        b"" with `join` False (the parts are left in self._body)."""
        for _ in self._pieces():
            pass
        return b"".join(self._body) if join else b""

    def _render_on_loop(self, loop: asyncio.AbstractEventLoop) -> list[bytes]:
        """Renders on `loop` (in pieces) and waits; the parts are in self._body."""
        fut: concurrent.futures.Future[list[bytes]] = concurrent.futures.Future()
        steps = self._pieces()
        self.last_max_piece_s = 0.0

        def step() -> None:
            t0 = time.perf_counter()
            try:
                next(steps)
            except StopIteration:
                self.max_pieces.append(max(self.last_max_piece_s, time.perf_counter() - t0))
                fut.set_result(self._body)
                return
            except BaseException as exc:  # handed to the HTTP thread, which answers 500
                fut.set_exception(exc)
                return
            finally:
                self.last_max_piece_s = max(self.last_max_piece_s, time.perf_counter() - t0)
            loop.call_soon(step)  # the loop's ready timers and sockets run before the next chunk

        def first() -> None:
            if fut.set_running_or_notify_cancel():
                step()

        loop.call_soon_threadsafe(first)
        try:
            return fut.result(self.snapshot_timeout_s)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise

    def output(self) -> Packed:
        """The exposition text, gzip-encoded (Packed), from the cache if it is younger than cache_s.

        Between scrapes only the gzip bytes are held (~400 KiB for 1,000 instances), and only for cache_s:
        the text (~3.6 MiB) is let go as soon as it is compressed, and the heap it used is given back to
        the kernel (process_metrics.trim_heap): RSS after a scrape is what it was before it
        (docs/costs.md#memory).
        """
        with self._lock:  # one rendering at a time; concurrent scrapers wait for it and share it
            now = time.monotonic()
            self.scrapes += 1
            if self._cached is not None and now - self._cached[0] < self.cache_s:
                return self._cached[1]
            self._cached = None
            t0 = time.perf_counter()
            try:
                if self.loop is None:
                    self.render_now(join=False)
                else:
                    self._render_on_loop(self.loop)
                self.last_render_s = time.perf_counter() - t0
                self.renders += 1
                body, self._body = self._body, []
                packed = Packed(self._drain(body))  # compressed here: zlib lets the loop run meanwhile
            finally:
                self._body = []
                t1 = time.perf_counter()
                trim_heap()
                self.last_trim_s = time.perf_counter() - t1
            if self.cache_s > 0:
                self._cached = (time.monotonic(), packed)
                loop = self.loop
                if loop is not None:  # let the bytes go when they are stale, not at the next scrape
                    try:
                        loop.call_soon_threadsafe(loop.call_later, self.cache_s, self._expire, packed)
                    except RuntimeError:  # the loop is closed (the daemon is stopping)
                        pass
            return packed

    @staticmethod
    def _drain(body: list[bytes]) -> Iterator[bytes]:
        """The parts of `body`, each let go once handed on."""
        body.reverse()
        while body:
            yield body.pop()

    def _expire(self, packed: Packed) -> None:
        cached = self._cached
        if cached is not None and cached[1] is packed:
            self._cached = None

    def respond(
        self, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, str, Sequence[bytes] | Packed]:
        """The answer to one request (metrics_http.handle calls it in the connection's thread)."""
        if path not in ("/", "/metrics"):
            return 404, "text/plain", [b"not found: try /metrics\n"]
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", [b"only GET and HEAD\n"]
        try:
            body = self.output()
        except Exception as exc:
            return 500, "text/plain", [f"snapshot failed: {exc!r}\n".encode()]
        return 200, CONTENT_TYPE, body

    def start(self) -> tuple[str, int]:
        """Bind and serve in a daemon thread; returns the bound (address, port) (port 0 = ephemeral)."""
        fix_malloc_thresholds()  # docs/costs.md#memory: the text of a scrape goes back to the kernel
        self._httpd = HttpServer(self.addr, self.port, self.respond)
        self.port = self._httpd.server_address[1]
        self._httpd.start()
        return self.addr, self.port

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.close()
            self._httpd = None
