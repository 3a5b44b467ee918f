"""The other top-level blocks: vrrp_sync_group, track_group, garp_group, static_ipaddress / static_routes /
static_rules, linkbeat_interfaces and interface_up_down_delays."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from . import _fast
from .addresses import static_route, static_rule, vaddr
from .blocks import Kw, Schema, bool_kw, entries, ignored, secs_kw, special, walk, words_block_kw
from .lexer import Node
from .model import GarpGroup, Script, SyncGroupConfig, TrackRef
from .route_lines import STATIC_TRACK_GROUP
from .values import Reporter

# --- vrrp_sync_group


@dataclass(slots=True)
class SyncGroupState:
    name: str | None = None
    group: tuple[str, ...] | None = None
    track_interface: tuple[TrackRef, ...] | None = None
    track_script: tuple[TrackRef, ...] | None = None
    track_file: tuple[TrackRef, ...] | None = None
    track_process: tuple[TrackRef, ...] | None = None
    notify_master: Script | None = None
    notify_backup: Script | None = None
    notify_fault: Script | None = None
    notify_stop: Script | None = None
    notify: Script | None = None
    notify_priority_changes: bool | None = None
    sync_group_tracking_weight: bool | None = None
    # (track_* keyword, name, position) -> the line naming it, for the check that the name is defined
    refs: dict[tuple[str, str, int], Node] = field(default_factory=dict)


def _group_track(r: Reporter, n: Node, st: SyncGroupState, kw: Kw) -> None:
    """`NAME [weight W [reverse]]` lines; a later block of the same kind replaces an earlier one."""
    out = []
    for k in entries(r, n):
        weight = r.track_weight(k, kw.lo, kw.hi)
        if weight is None:
            continue
        out.append(TrackRef(k.kw, *weight))  # (a bad weight is kept as None: the group is refused anyway)
        st.refs[(n.kw, k.kw, len(out))] = k
    setattr(st, kw.field, tuple(out))


def _notify(r: Reporter, n: Node, st: SyncGroupState, kw: Kw) -> None:
    """A notify script; a bad one clears an earlier one."""
    setattr(st, kw.field, r.script(n))


def _always(r: Reporter, n: Node, st: Any, kw: Kw) -> None:
    setattr(st, kw.field, True)


SYNC_GROUP = Schema(
    "vrrp_sync_group",
    SyncGroupState,
    {
        "group": words_block_kw("group"),
        "track_interface": special(_group_track, "track_interface", -253, 253, block=True),
        "track_script": special(_group_track, "track_script", -253, 253, block=True),
        "track_file": special(_group_track, "track_file", -254, 254, block=True),
        "track_process": special(_group_track, "track_process", -254, 254, block=True),
        "notify_master": special(_notify, "notify_master"),
        "notify_backup": special(_notify, "notify_backup"),
        "notify_fault": special(_notify, "notify_fault"),
        "notify_stop": special(_notify, "notify_stop"),
        "notify": special(_notify, "notify"),
        "notify_priority_changes": dataclasses.replace(bool_kw("notify_priority_changes"), block=None),
        "sync_group_tracking_weight": special(_always, "sync_group_tracking_weight", block=None),
        "global_tracking": special(ignored, block=None),  # deprecated by keepalived, no effect
    },
    unsupported={"smtp_alert": "SMTP alerts", "track_bfd": "BFD"},
)
_SYNC_GROUP_DEFAULTS = [f.default for f in dataclasses.fields(SyncGroupConfig)]
_build_sync_group = _fast.from_state(SyncGroupConfig, SyncGroupState)


def read_sync_group(r: Any, n: Node, st: Any, kw: Kw) -> None:
    """A top-level `vrrp_sync_group NAME { }` (or vrrp_group) into r.sync_groups."""
    name = r.named(n, "vrrp_sync_group", r.sync_groups)
    s = SyncGroupState(name)
    walk(r, n, SYNC_GROUP, s)
    if not s.group:
        # keepalived 2.2.7 starts the file without the group (words outside `group { }` are unknown keywords)
        r.adjust(n, f"vrrp_sync_group '{name}' has no 'group' members: ignored, as keepalived does")
        return
    if name is not None:
        r.sync_groups[name] = (_build_sync_group(s, _SYNC_GROUP_DEFAULTS), n)
        r.sync_group_refs[name] = s.refs


# --- track_group, garp_group
@dataclass(slots=True)
class TrackGroupState:
    group: tuple[str, ...] = ()


TRACK_GROUP = Schema("track_group", TrackGroupState, {"group": words_block_kw("group")})


def read_track_group(r: Any, n: Node, st: Any, kw: Kw) -> None:
    name = r.named(n, "track_group", r.track_groups)
    s = TrackGroupState()
    walk(r, n, TRACK_GROUP, s)
    if name is not None:
        r.track_groups[name] = s.group
        r.track_group_at[name] = n


@dataclass(slots=True)
class GarpGroupState:
    garp_interval_ms: int | None = None
    gna_interval_ms: int | None = None
    interfaces: list[str] = field(default_factory=list)


def _interface(r: Reporter, n: Node, st: GarpGroupState, kw: Kw) -> None:
    if r.nargs(n, 1):
        st.interfaces.append(n.args[0])


def _interfaces(r: Reporter, n: Node, st: GarpGroupState, kw: Kw) -> None:
    st.interfaces.extend(r.words_block(n))


GARP_GROUP = Schema(
    "garp_group",
    GarpGroupState,
    {
        "garp_interval": dataclasses.replace(secs_kw("garp_interval_ms", 0, 1), block=None),
        "gna_interval": dataclasses.replace(secs_kw("gna_interval_ms", 0, 1), block=None),
        "interface": special(_interface, block=None),
        "interfaces": special(_interfaces, block=True),
    },
)


def read_garp_group(r: Any, n: Node, st: Any, kw: Kw) -> None:
    s = GarpGroupState()
    walk(r, n, GARP_GROUP, s)
    if not s.interfaces:
        r.err(n, "garp_group has no interface")
    r.garp_groups.append(GarpGroup(s.garp_interval_ms, s.gna_interval_ms, tuple(s.interfaces)))


# --- blocks of values: static addresses, routes and rules, linkbeat, up/down delays
def read_static_ipaddress(r: Any, n: Node, st: Any, kw: Kw) -> None:
    """Addresses the daemon adds at start and removes at stop (daemon/static_addresses.py)."""
    for k in entries(r, n):
        a = vaddr(r, k, static=True)
        if a is not None:
            r.static_ipaddress.append(a)
            if a.track_group:
                r.unsupported(k, STATIC_TRACK_GROUP)
                r.static_track_groups.append((a.track_group, k))


def read_static_routes(r: Any, n: Node, st: Any, kw: Kw) -> None:
    for k in entries(r, n):
        x = static_route(r, k)
        if x is not None:
            r.static_routes.append(x)


def read_static_rules(r: Any, n: Node, st: Any, kw: Kw) -> None:
    for k in entries(r, n):
        x = static_rule(r, k)
        if x is not None:
            r.static_rules.append(x)


def read_linkbeat(r: Any, n: Node, st: Any, kw: Kw) -> None:
    for k in entries(r, n):
        if len(k.args) > 1 or (k.args and k.args[0].upper() not in ("MII", "ETHTOOL", "IOCTL")):
            r.err(k, "linkbeat_interfaces entries are: IFNAME [MII|ETHTOOL|IOCTL]")
        r.linkbeat.append(k.kw)


def read_up_down_delays(r: Any, n: Node, st: Any, kw: Kw) -> None:
    for k in entries(r, n):
        if not r.nargs(k, 1, 2):
            continue
        down = r.secs_in(k, k.args[0], 0, 255, "down delay")
        up = r.secs_in(k, k.args[1], 0, 255, "up delay") if len(k.args) > 1 else down
        if down is not None and up is not None:
            r.updown[k.kw] = (down, up)
