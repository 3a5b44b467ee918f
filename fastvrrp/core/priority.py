"""The effective-priority math of keepalived's tracking, pure (no I/O, no clock).

It is part of the core because every rule below is a VRRP rule (the owner's 255, the 1..254 range, FAULT);
the trackers in fastvrrp/health only say up, down or a value. `resolve_refs` reads the configuration objects
it is given by attribute, so the core does not import fastvrrp.config.

Rules (keepalived.conf(5), "VRRP script(s)", "Track files", "VRRP track processes", vrrp_instance
track_interface / track_script / track_file / track_process, vrrp_sync_group):

- weight 0: the tracker being down puts the instance in FAULT; with `reverse`, being *up* does.
- weight > 0: while the tracker is up, +weight (reverse: -weight). Down adds nothing.
- weight < 0: while the tracker is down, +weight, i.e. lowers it (reverse: -weight, raises it). Up adds
  nothing.
- A tracker with no result yet (a script before its first run, keepalived's INIT) adds nothing; if its
  weight is 0 the instance waits (`waiting`): keepalived keeps it out of BACKUP/MASTER until every unweighted
  script has reported once.
- track_file: weight 0: a non-zero value is FAULT (reverse: a zero value is). Otherwise value * weight
  (negated with reverse), capped at 253; a result of -254 or less is FAULT. That holds for an address
  owner too.
- The sum is added to the configured priority and clamped to 1..254. An address owner (priority 255)
  keeps 255 whatever the weights say, but its unweighted trackers can still put it in FAULT.
- An operator's offset (`fastvrrp ctl priority NAME DELTA`) is added to the tracked priority (after the
  trackers' clamp) and the result is clamped to 1..254 again: the priority on the wire moves by DELTA unless
  it reaches a bound. An owner keeps 255; the offset never causes or clears a FAULT.
- Sync groups: a group's track_* apply to every member. Without `sync_group_tracking_weight` a member may
  not use weights: keepalived 2.2 drops weighted track_script entries from the member ("ignoring tracked
  script with weights due to SYNC group") and makes every other weight 0 (a failure is then FAULT, and
  the group follows its member into FAULT).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

PRIO_OWNER = 255
PRIO_MIN = 1
PRIO_MAX = 254
FILE_FAULT = -254  # a track_file contribution at or below this is FAULT
FILE_CAP = 253

KINDS = ("interface", "script", "file", "process", "check")


@dataclass(frozen=True, slots=True)
class Tracked:
    """One tracker as seen by one instance: its weight for that instance and its current status."""

    kind: str  # one of KINDS; "check" is a vrrp_check used from track_script
    name: str
    weight: int = 0
    reverse: bool = False
    up: bool | None = None  # None: no result yet
    value: int | None = None  # track_file value (kind "file")


@dataclass(frozen=True, slots=True)
class Effective:
    priority: int  # what the instance advertises (1..254; 255 for an owner)
    fault: bool  # at least one tracker puts it in FAULT
    waiting: bool  # an unweighted tracker has no result yet
    total: int  # base + contributions, before clamping
    faults: tuple[str, ...] = ()  # "kind:name" of the trackers causing FAULT
    waiting_on: tuple[str, ...] = ()


def contribution(t: Tracked) -> int | None:
    """The priority change this tracker makes now, or None if it puts the instance in FAULT."""
    mult = -1 if t.reverse else 1
    if t.kind == "file":
        value = t.value or 0
        if t.weight == 0:
            failing = (value != 0) == (mult == 1)
            return None if failing else 0
        c = value * t.weight * mult
        if c <= FILE_FAULT:
            return None
        return min(c, FILE_CAP)
    if t.up is None:
        return 0
    if t.weight == 0:
        return None if t.up != (mult == 1) else 0
    if t.up:
        return t.weight * mult if t.weight > 0 else 0
    return t.weight * mult if t.weight < 0 else 0


def effective_priority(base: int, tracked: Iterable[Tracked], owner: bool | None = None) -> Effective:
    """Fold the trackers into the priority the instance should run with. `owner` defaults to base == 255."""
    if owner is None:
        owner = base == PRIO_OWNER
    total = base
    faults: list[str] = []
    waiting: list[str] = []
    for t in tracked:
        if t.kind != "file" and t.up is None and t.weight == 0:
            waiting.append(f"{t.kind}:{t.name}")
            continue
        c = contribution(t)
        if c is None:
            faults.append(f"{t.kind}:{t.name}")
        else:
            total += c
    if owner:
        prio = PRIO_OWNER  # keepalived: an address owner's priority is never changed by tracking
    else:
        prio = max(PRIO_MIN, min(PRIO_MAX, total))
    return Effective(prio, bool(faults), bool(waiting), total, tuple(faults), tuple(waiting))


def with_offset(eff: Effective, offset: int, owner: bool) -> Effective:
    """`eff` with an operator's offset applied (module docstring); `total` keeps the trackers' sum."""
    if offset == 0 or owner:
        return eff
    return replace(eff, priority=max(PRIO_MIN, min(PRIO_MAX, eff.priority + offset)))


@dataclass(frozen=True, slots=True)
class Ref:
    """A resolved tracking reference: which tracker, with which weight and direction."""

    kind: str
    name: str
    weight: int
    reverse: bool


def sync_member_refs(refs: Sequence[Ref], tracking_weight: bool) -> tuple[list[Ref], list[str]]:
    """keepalived's rule for a sync-group member without `sync_group_tracking_weight`: weighted scripts are
    dropped, every other weight becomes 0. Returns the refs to use and one warning per change."""
    if tracking_weight:
        return list(refs), []
    out: list[Ref] = []
    warnings: list[str] = []
    for r in refs:
        if r.weight == 0:
            out.append(r)
        elif r.kind in ("script", "check"):
            warnings.append(f"ignoring tracked {r.kind} {r.name} with weight {r.weight} due to sync group")
        else:
            warnings.append(f"weight {r.weight} of tracked {r.kind} {r.name} set to 0 due to sync group")
            out.append(Ref(r.kind, r.name, 0, r.reverse))
    return out, warnings


def resolve_refs(instance, config) -> tuple[list[Ref], list[str]]:  # type: ignore[no-untyped-def]
    """Every tracker an instance follows (its own, its sync group's, its interface), with the weights that
    apply. `instance` is a fastvrrp.config.model.InstanceConfig, `config` the Config holding it.

    A ref without a weight takes the tracker's default weight and reverse (vrrp_script / track_file /
    vrrp_track_process; interfaces: 0). The instance's own interface is tracked with weight 0 unless
    `dont_track_primary`. A name given twice keeps its first entry (keepalived ignores the duplicate).
    """
    defaults = {
        "script": {n: (s.weight, s.reverse) for n, s in config.vrrp_scripts.items()},
        "file": {n: (f.weight, f.reverse) for n, f in config.track_files.items()},
        "process": {n: (p.weight, p.reverse) for n, p in config.track_processes.items()},
    }
    checks = getattr(config, "vrrp_checks", None) or {}
    refs: list[Ref] = []
    seen: set[tuple[str, str]] = set()

    def add(kind: str, ref) -> None:  # type: ignore[no-untyped-def]
        k = kind
        if kind == "script" and ref.name not in defaults["script"] and ref.name in checks:
            k = "check"
        if (k, ref.name) in seen:
            return
        seen.add((k, ref.name))
        if ref.weight is None:
            if k == "interface":
                w, rev = 0, ref.reverse
            elif k == "check":
                c = checks[ref.name]
                w, rev = getattr(c, "weight", 0), getattr(c, "reverse", False)
            else:
                w, rev = defaults[k].get(ref.name, (0, False))
        else:
            w, rev = ref.weight, ref.reverse
        refs.append(Ref(k, ref.name, w, rev))

    sources = [instance]
    group = config.sync_groups.get(instance.sync_group) if instance.sync_group else None
    if group is not None:
        sources.append(group)
    for src in sources:
        for r in src.track_interface:
            add("interface", r)
        for r in src.track_script:
            add("script", r)
        for r in src.track_file:
            add("file", r)
        for r in src.track_process:
            add("process", r)
    if (
        instance.interface
        and not instance.dont_track_primary
        and ("interface", instance.interface) not in seen
    ):
        refs.append(Ref("interface", instance.interface, 0, False))
    warnings: list[str] = []
    if group is not None:
        refs, warnings = sync_member_refs(refs, group.sync_group_tracking_weight)
    return refs, warnings


def tracked_from(
    refs: Iterable[Ref], status: dict[tuple[str, str], tuple[bool | None, int | None]]
) -> list[Tracked]:
    """Join resolved refs with the latest statuses, keyed by (kind, name): (up, value)."""
    out = []
    for r in refs:
        up, value = status.get((r.kind, r.name), (None, None))
        out.append(Tracked(r.kind, r.name, r.weight, r.reverse, up, value))
    return out
