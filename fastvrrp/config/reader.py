"""From the statement tree to `Config`: the top-level blocks, then the checks across blocks.

Every problem is collected (never only the first) as Problem(file, line, message), located at the
statement the message is about. Where keepalived merely warns about something that cannot work as
written (it then "ignores" or "resets" a value), we report an error: a config must mean what it says.

Each block is read against its schema (blocks.py) by the module of that block: global_defs.py,
instance.py, trackers.py, check_block.py, groups.py. The instances are checked once everything is read
(instance_rules.py), since global_defs and the trackers they name may come after them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

from fastvrrp.health.spec import CheckSpec

from .blocks import Schema, read_statements, special
from .check_block import read_vrrp_check
from .global_defs import TOP_LEVEL_GLOBALS, GlobalState, global_at_top, global_defs, read_global_defs
from .groups import (
    read_garp_group,
    read_linkbeat,
    read_static_ipaddress,
    read_static_routes,
    read_static_rules,
    read_sync_group,
    read_track_group,
    read_up_down_delays,
)
from .instance import InstanceState, read_instance
from .instance_rules import TrackerTables, finish_instance, unweighted
from .lexer import Node
from .model import (
    Config,
    GarpGroup,
    GlobalDefs,
    InstanceConfig,
    Problem,
    Route,
    Rule,
    SyncGroupConfig,
    TrackFile,
    TrackProcess,
    VirtualAddress,
    VrrpScript,
)
from .schema import TOP_UNSUPPORTED
from .trackers import TRACK_FILE_DEFINITION, TRACK_PROCESS_DEFINITION, VRRP_SCRIPT_DEFINITION
from .values import Reporter


def read_instance_once(r: Any, n: Node, st: Any, kw: Any) -> None:
    """A vrrp_instance, unless one of its name came before: keepalived 2.2.7 then skips the whole block
    unread ("vrrp instance VI_1 already defined")."""
    if len(n.args) == 1:
        first = r.instance_at.setdefault(n.args[0], n)
        if first is not n:
            r.adjust(
                n,
                f"vrrp_instance '{n.args[0]}' is already defined at {first.file}:{first.line}: this "
                "block is ignored, as keepalived does",
            )
            return
    read_instance(r, n, st, kw)


TOP = Schema(
    None,
    None,
    {
        "global_defs": special(read_global_defs, block=None),
        "vrrp_instance": special(read_instance_once, block=None),
        "vrrp_script": special(VRRP_SCRIPT_DEFINITION.read, block=None),
        "vrrp_check": special(read_vrrp_check, block=None),
        "vrrp_sync_group": special(read_sync_group, block=None),
        "vrrp_group": special(read_sync_group, block=None),
        "track_file": special(TRACK_FILE_DEFINITION.read, block=None),
        "vrrp_track_file": special(TRACK_FILE_DEFINITION.read, block=None),
        "vrrp_track_process": special(TRACK_PROCESS_DEFINITION.read, block=None),
        "garp_group": special(read_garp_group, block=None),
        "static_ipaddress": special(read_static_ipaddress, block=None),
        "static_routes": special(read_static_routes, block=None),
        "static_rules": special(read_static_rules, block=None),
        "track_group": special(read_track_group, block=None),
        "linkbeat_interfaces": special(read_linkbeat, block=None),
        "interface_up_down_delays": special(read_up_down_delays, block=None),
        **{k: special(global_at_top) for k in TOP_LEVEL_GLOBALS},
    },
    unsupported={**TOP_UNSUPPORTED, "net_namespace_ipvs": "LVS/IPVS"},
)


def instance_base(gd: GlobalDefs) -> list[Any]:
    """The InstanceConfig field values of an instance that sets none of its own: the dataclass defaults, and
    for the fields global_defs provides defaults for, those (an instance's own values replace them)."""
    names = [f.name for f in dataclasses.fields(InstanceConfig)]
    f = [x.default for x in dataclasses.fields(InstanceConfig)]
    lower_delay = gd.vrrp_garp_lower_prio_delay_ms
    lower_repeat = gd.vrrp_garp_lower_prio_repeat
    for field, value in (
        ("garp_master_delay_ms", gd.vrrp_garp_master_delay_ms),
        ("garp_master_repeat", gd.vrrp_garp_master_repeat),
        ("garp_lower_prio_delay_ms", gd.vrrp_garp_master_delay_ms if lower_delay is None else lower_delay),
        ("garp_lower_prio_repeat", gd.vrrp_garp_master_repeat if lower_repeat is None else lower_repeat),
        ("garp_master_refresh_ms", gd.vrrp_garp_master_refresh_ms),
        ("garp_master_refresh_repeat", gd.vrrp_garp_master_refresh_repeat),
        ("down_timer_adverts", gd.vrrp_down_timer_adverts),
        ("higher_prio_send_advert", gd.vrrp_higher_prio_send_advert),
        ("skip_check_adv_addr", gd.vrrp_skip_check_adv_addr),
        ("check_unicast_src", gd.vrrp_check_unicast_src),
    ):
        f[names.index(field)] = value
    return f


class Reader(Reporter):
    """What the top-level blocks define, then `finish()`: the checks across blocks and the Config."""

    def __init__(self) -> None:
        super().__init__()
        self.globals = GlobalState()
        self.instances: list[InstanceState] = []
        self.instance_at: dict[str, Node] = {}  # name -> its first block
        self.scripts: dict[str, VrrpScript] = {}
        self.checks: dict[str, tuple[CheckSpec, Node]] = {}  # vrrp_check: (check, its block)
        self.track_files: dict[str, TrackFile] = {}
        self.track_processes: dict[str, TrackProcess] = {}
        self.sync_groups: dict[str, tuple[SyncGroupConfig, Node]] = {}
        self.sync_group_refs: dict[str, dict[tuple[str, str, int], Node]] = {}  # see SyncGroupState.refs
        self.garp_groups: list[GarpGroup] = []
        self.static_ipaddress: list[VirtualAddress] = []
        self.static_routes: list[Route] = []
        self.static_rules: list[Rule] = []
        self.track_groups: dict[str, tuple[str, ...]] = {}
        self.track_group_at: dict[str, Node] = {}
        self.linkbeat: list[str] = []
        self.updown: dict[str, tuple[int, int]] = {}
        self.static_track_groups: list[
            tuple[str, Node]
        ] = []  # (track_group named, the static_ipaddress line)

    def read(self, tree: Iterable[Node]) -> None:
        read_statements(self, tree, TOP, self)

    # --- the checks across blocks ---------------------------------------------------------------------------
    def finish(self, files: tuple[str, ...]) -> Config:
        # track_script names a vrrp_script or a vrrp_check; one name may not be both (docs/health-checks.md).
        for cname, (_chk, cnode) in self.checks.items():
            if cname in self.scripts:
                self.err(cnode, f"vrrp_check '{cname}': a vrrp_script has the same name")
        script_like = {**{k: v[0] for k, v in self.checks.items()}, **self.scripts}
        trackers: TrackerTables = (
            ("track_script", script_like, "vrrp_script"),
            ("track_file", self.track_files, "track_file"),
            ("track_process", self.track_processes, "vrrp_track_process"),
        )
        gd = global_defs(self.globals)
        instances, names = self._instances(gd, trackers)
        self._check_vrids(instances)
        instances = self._sync_groups(instances, trackers)
        self._track_groups(names)
        return Config(
            global_defs=gd,
            instances=tuple(instances),
            vrrp_scripts=MappingProxyType(dict(self.scripts)),
            vrrp_checks=MappingProxyType({k: v[0] for k, v in self.checks.items()}),
            track_files=MappingProxyType(dict(self.track_files)),
            track_processes=MappingProxyType(dict(self.track_processes)),
            sync_groups=MappingProxyType({k: v[0] for k, v in self.sync_groups.items()}),
            garp_groups=tuple(self.garp_groups),
            static_ipaddress=tuple(self.static_ipaddress),
            static_routes=tuple(self.static_routes),
            static_rules=tuple(self.static_rules),
            track_groups=MappingProxyType(dict(self.track_groups)),
            linkbeat_interfaces=tuple(self.linkbeat),
            interface_up_down_delays=MappingProxyType(dict(self.updown)),
            unsupported=self.unsupported_notes(),
            files=files,
        )

    def _instances(
        self, gd: GlobalDefs, trackers: TrackerTables
    ) -> tuple[list[InstanceConfig], dict[str, Node]]:
        """The good instances, each name once; (them, name -> its block)."""
        instances = []
        names: dict[str, Node] = {}
        base = instance_base(gd)
        for st in self.instances:
            n = st.node
            inst = finish_instance(self, st, gd, base, trackers)
            if inst is None:
                continue
            names[inst.name] = n
            instances.append(inst)
        return instances, names

    def _track_groups(self, names: dict[str, Node]) -> None:
        """track_group members are instances; static addresses name defined track groups."""
        for name, members in self.track_groups.items():
            for m in members:
                if m not in names:
                    self.err(self.track_group_at[name], f"track_group '{name}': no vrrp_instance '{m}'")
        for tg, k in self.static_track_groups:
            if tg not in self.track_groups:
                self.err(k, f"no track_group '{tg}'")

    def _check_vrids(self, instances: list[InstanceConfig]) -> None:
        """One VRID per (interface, family) (RFC 5798 5.2.3), unless unicast peer sets do not overlap."""
        seen: dict[tuple, InstanceConfig] = {}
        for inst in instances:
            key = (inst.interface, inst.family, inst.virtual_router_id, inst.mcast_dst_ip)
            other = seen.get(key)
            if other is None:
                seen[key] = inst
                continue
            if (
                inst.unicast_peers
                and other.unicast_peers
                and not ({p.address for p in inst.unicast_peers} & {p.address for p in other.unicast_peers})
            ):
                continue
            self.problems.append(
                Problem(
                    inst.file,
                    inst.line,
                    f"vrrp_instance {inst.name}: VRID {inst.virtual_router_id} is already used by "
                    f"{other.name} ({other.file}:{other.line}) on {inst.interface} for IPv{inst.family}",
                )
            )

    def _sync_groups(self, instances: list[InstanceConfig], trackers: TrackerTables) -> list[InstanceConfig]:
        """Members exist and are in one group; tracked names are defined; member weights are ignored."""
        member_of = self._sync_group_members({i.name for i in instances}, trackers)
        if not member_of:
            return instances
        out = []
        for inst in instances:
            mg = member_of.get(inst.name)
            if mg is None:
                out.append(inst)
                continue
            changes: dict[str, Any] = {"sync_group": mg}
            if not self.sync_groups[mg][0].sync_group_tracking_weight:
                changes.update(self._member_weights(inst, mg, trackers))
            out.append(dataclasses.replace(inst, **changes))
        return out

    def _member_weights(self, inst: InstanceConfig, group: str, trackers: TrackerTables) -> dict[str, Any]:
        """keepalived ignores the tracking weights of sync group members (keepalived.conf(5)), the way
        instance_rules.unweighted says; each one is an adjustment. The fields that change."""
        changes: dict[str, Any] = {}
        for kind, table in (("track_interface", None), *((k, t) for k, t, _w in trackers)):
            refs = getattr(inst, kind)
            kept = []
            for ref in refs:
                w = (
                    ref.weight
                    if ref.weight is not None or table is None
                    else getattr(table[ref.name], "weight", 0)
                )
                done = unweighted(kind, ref, table, owner=False) if w else (ref, "")
                if done is None:
                    msg = (
                        f"vrrp_instance {inst.name}: {kind} '{ref.name}' has weight {w} but the instance is "
                        f"in sync group {group}, where weights are ignored (use weight 0 or "
                        "sync_group_tracking_weight)"
                    )
                    self.problems.append(Problem(inst.file, inst.line, msg))
                    kept.append(ref)
                    continue
                if done[0] is not ref:
                    # keepalived 2.2.7: "(VI_1) ignoring tracked script chk with weights due to SYNC group"
                    msg = (
                        f"vrrp_instance {inst.name}: {kind} '{ref.name}' has weight {w}, which sync group "
                        f"{group} ignores (no sync_group_tracking_weight): {done[1]}, as keepalived does"
                    )
                    self.adjustments.append(Problem(inst.file, inst.line, msg))
                if done[0] is not None:
                    kept.append(done[0])
            if len(kept) != len(refs) or any(a is not b for a, b in zip(kept, refs, strict=False)):
                changes[kind] = tuple(kept)
        return changes

    def _sync_group_members(self, names: set[str], trackers: TrackerTables) -> dict[str, str]:
        """instance name -> its sync group; reports unknown and doubled members, undefined trackers."""
        tables = {kind: table for kind, table, _what in trackers}
        member_of: dict[str, str] = {}
        for gname, (sg, node) in self.sync_groups.items():
            for m in sg.group:
                if m not in names:
                    self.err(node, f"vrrp_sync_group {gname}: no vrrp_instance '{m}'")
                elif m in member_of:
                    self.err(
                        node,
                        f"vrrp_sync_group {gname}: vrrp_instance '{m}' is already in sync group "
                        f"{member_of[m]}",
                    )
                else:
                    member_of[m] = gname
            for (kind, ref_name, _i), k in self.sync_group_refs.get(gname, {}).items():
                table = tables.get(kind)
                if table is not None and ref_name not in table:
                    self.err(k, f"vrrp_sync_group {gname}: {kind} '{ref_name}' is not defined")
        return member_of
