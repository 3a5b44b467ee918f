"""Tracking: runs the trackers a configuration references and turns their results into each instance's
effective priority and FAULT, through the pure math of fastvrrp.core.priority.

Trackers know nothing of VRRP; the core knows nothing of trackers. This class sits between them: it starts one
tracker per referenced vrrp_script / vrrp_check / track_file / vrrp_track_process (shared by every instance
that references it), receives interface states from the daemon's link monitor, keeps the latest status of
each (kind, name), and calls `on_effective(instance_name, Effective)` for every instance whose effective
priority, FAULT or waiting flag changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastvrrp.core.priority import (
    Effective,
    Ref,
    contribution,
    effective_priority,
    resolve_refs,
    tracked_from,
)
from fastvrrp.health.runner import ScriptRunner
from fastvrrp.health.status import TrackerStatus
from fastvrrp.health.trackers import FileTracker, ProcessMonitor, ProcessTracker, ScriptTracker

log = logging.getLogger("fastvrrp")


class Tracking:
    def __init__(
        self, config: Any, runner: ScriptRunner, on_effective: Callable[[str, Effective], None]
    ) -> None:
        self.config = config
        self.runner = runner
        self.on_effective = on_effective
        self.refs: dict[str, list[Ref]] = {}  # instance name -> its trackers
        self.bases: dict[str, int] = {}
        self.users: dict[tuple[str, str], list[str]] = {}  # (kind, name) -> instance names
        self.status: dict[tuple[str, str], tuple[bool | None, int | None]] = {}
        self.current: dict[str, Effective] = {}
        # For the metrics: what each tracker does to each instance now, (kind, name, weight applied, FAULT),
        # and how often each tracker fell to down.
        self.applied: dict[str, tuple[tuple[str, str, int, bool], ...]] = {}
        self.downs: dict[tuple[str, str], int] = {}
        self.by_key: dict[tuple[str, str], Any] = {}  # (kind, name) -> the running tracker (not interfaces)
        self._trackers: list[Any] = []
        self._procs: ProcessMonitor | None = None
        for inst in config.instances:
            refs, warnings = resolve_refs(inst, config)
            for w in warnings:
                log.warning("(%s) %s", inst.name, w)
            self.refs[inst.name] = refs
            self.bases[inst.name] = inst.priority
            for r in refs:
                self.users.setdefault((r.kind, r.name), []).append(inst.name)

    # --- life cycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start one tracker per referenced script, check, file and process (call inside the loop)."""
        cfg = self.config
        wanted = set(self.users)
        checks = getattr(cfg, "vrrp_checks", None) or {}
        procs = []
        for kind, name in sorted(wanted):
            cb = self._callback(kind)
            t: Any = None
            if kind == "script" and name in cfg.vrrp_scripts:
                t = ScriptTracker.from_config(cfg.vrrp_scripts[name], self.runner, cb)
            elif kind == "check" and name in checks:
                from fastvrrp.health.checks import CheckTracker  # with its imports: by the runs that use it

                t = CheckTracker(checks[name], cb)
            elif kind == "file" and name in cfg.track_files:
                t = FileTracker.from_config(cfg.track_files[name], cb)
            elif kind == "process" and name in cfg.track_processes:
                procs.append(ProcessTracker.from_config(cfg.track_processes[name], cb))
                self.by_key[(kind, name)] = procs[-1]
            if t is not None:
                self._trackers.append(t)
                self.by_key[(kind, name)] = t
        for t in self._trackers:
            t.start()
        if procs:
            self._procs = ProcessMonitor(procs)
            self._procs.start()
        for name in self.refs:
            self._recompute(name, initial=True)

    def stop(self) -> None:
        for t in self._trackers:
            t.stop()
        self._trackers.clear()
        self.by_key.clear()
        if self._procs is not None:
            self._procs.stop()
            self._procs = None

    # --- inputs --------------------------------------------------------------------------------------------

    def interface(self, ifname: str, up: bool) -> None:
        """A link state from the daemon's monitor (the instance's own interface and track_interface)."""
        self._update("interface", ifname, TrackerStatus(up, reason="link up" if up else "link down"))

    def _callback(self, kind: str) -> Callable[[str, TrackerStatus], None]:
        return lambda name, st: self._update(kind, name, st)

    def _update(self, kind: str, name: str, st: TrackerStatus) -> None:
        key = (kind, name)
        new = (st.up, st.value)
        old = self.status.get(key)
        if old == new:
            return
        if st.up is False and (old is None or old[0] is not False):
            self.downs[key] = self.downs.get(key, 0) + 1
        self.status[key] = new
        if kind != "interface":
            log.info("%s %s: %s (%s)", _WORD[kind], name, _state_word(st), st.reason)
        for inst in self.users.get(key, ()):
            self._recompute(inst)

    def _recompute(self, inst: str, initial: bool = False) -> None:
        tracked = tracked_from(self.refs[inst], self.status)
        self.applied[inst] = tuple(
            (t.kind, t.name, c or 0, c is None) for t in tracked for c in (contribution(t),)
        )
        eff = effective_priority(self.bases[inst], tracked)
        old = self.current.get(inst)
        if old is not None and (old.priority, old.fault, old.waiting) == (
            eff.priority,
            eff.fault,
            eff.waiting,
        ):
            return
        self.current[inst] = eff
        if not initial or eff.fault or eff.priority != self.bases[inst] or eff.waiting:
            self.on_effective(inst, eff)

    def effective(self, inst: str) -> Effective:
        return self.current[inst]


_WORD = {"script": "VRRP_Script", "check": "VRRP_Check", "file": "Track_File", "process": "Track_Process"}


def _state_word(st: TrackerStatus) -> str:
    if st.value is not None:
        return f"value {st.value}"
    return {True: "succeeded", False: "failed", None: "unknown"}[st.up]
