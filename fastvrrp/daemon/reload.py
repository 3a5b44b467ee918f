"""Reload (SIGHUP): the configuration read again and applied to the running daemon. An instance whose
configuration is unchanged keeps running (its state and adverts, without a gap); a changed one is stopped and
built again, a removed one stops, a new one starts; trackers and sync groups follow the new configuration.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import time
from typing import TYPE_CHECKING, Any

from fastvrrp.config import Config, ConfigError, InstanceConfig, check
from fastvrrp.daemon import virtual_routes
from fastvrrp.daemon.scheduling import Settings
from fastvrrp.daemon.tracking import Tracking

if TYPE_CHECKING:
    from fastvrrp.daemon.service import Daemon

log = logging.getLogger("fastvrrp")
# A full collection after a reload once this many instances were removed or rebuilt since the last one
# (collect_after_reload); the daemon's removed_since_full counts them.
FULL_AFTER_REMOVED = 1000


class Reloader:
    """SIGHUP: apply a new config; unchanged instances keep their state and adverts, without a gap. A SIGHUP
    that arrives while a reload is being applied is not lost: the file is read again once the running reload
    is done (one more reload however many SIGHUPs came in the meantime)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.running = False  # a reload is being applied (the control API waits for it)
        self._again = False

    async def __call__(self) -> None:
        if self.running:
            self._again = True
            return
        self.running = True
        try:
            again = True
            while again:
                self._again = False
                await self._once()
                again = self._again
        finally:
            self.running = False

    async def _once(self) -> None:
        d = self.daemon
        d.systemd.reloading()
        new = None
        try:
            d.scheduling.normal()  # no realtime priority while the file is read (daemon/scheduling.py)
            new = read_config(d.config_path, d.config_id, d.strict_config)
            if new is not None:
                started = await apply_config(d, new, time.monotonic_ns() // 1000)  # the daemon's clock
                d.operator.keep_only(d.insts)  # drains and offsets of instances that still exist
                d.rearm()
                log.info("reloaded %s (%d instances, %d started)", d.config_path, len(d.insts), started)
        finally:
            d.scheduling.apply(Settings.from_globals(d.cfg.global_defs.other))
            d.systemd.reloaded(refused=new is None)  # the new configuration is in charge, or refused


def read_config(path: str, config_id: str | None, strict: bool = False) -> Config | None:
    """The new configuration, or None (its problems logged) if it cannot replace the running one; the
    warnings (adjustments made as keepalived makes them, unsupported features) are logged."""
    t0 = time.perf_counter()
    # With the collector off, check() leaves the generations alone (with it on, it thaws every frozen object
    # to promote the new configuration, and the next full collection walks the whole daemon); the new
    # configuration is frozen directly instead: it lives until the next reload and forms no cycles.
    was_on = gc.isenabled()
    gc.disable()
    try:
        new, problems, unsupported = check(path, config_id, strict=strict)
        gc.freeze()
    finally:
        if was_on:
            gc.enable()
    log.info("reload: configuration read in %.1f ms", (time.perf_counter() - t0) * 1000)
    if new is None:
        log.error(
            "reload refused: the new configuration has %d problem(s); keeping the running one", len(problems)
        )
        for p in problems:
            log.error("%s", p)
        return None
    for note in unsupported:
        log.warning("%s", note)
    return new


async def apply_config(daemon: Daemon, new: Config, now: int) -> int:
    """Make `daemon` run `new`; return how many instances were added (the caller re-arms the timer)."""
    # The sync group notices read the groups' members from the new config from now on; which group each
    # instance belongs to follows in set_sync_groups, once the instances are in.
    t0 = time.perf_counter()
    old = daemon.cfg
    daemon.cfg = daemon.groups.config = new
    await virtual_routes.reload_static(daemon.nl, old, new, lambda: daemon.static_addrs.reload(new))
    wanted = {i.name: i for i in new.instances}
    # Trackers follow the new config: stop the old ones; the new set starts once instances are in.
    had_trackers = bool(daemon.tracking.by_key)  # running trackers may leave cycles: collect them below
    daemon.tracking.stop()
    daemon.tracking = Tracking(new, daemon.runner, daemon.on_effective)
    removed = _remove_changed(daemon, wanted, now)
    daemon.engine.flush()
    await daemon.port.settle()
    started = 0
    for name, icfg in wanted.items():
        if name not in daemon.insts:
            try:
                await daemon.builder.add(icfg, new)
                started += 1
            except ConfigError as e:
                for p in e.problems:
                    log.error("%s", p)
    tracking = daemon.tracking
    tracking.start()
    if daemon.monitor is not None:
        for name_up in list(daemon.monitor.links.values()):
            tracking.interface(*name_up)
    for inst in list(daemon.insts.values()):
        daemon.on_effective(inst.name, tracking.effective(inst.name))
    daemon.set_sync_groups(new)
    daemon.links.close_unused()
    log.info("reload: applied in %.1f ms", (time.perf_counter() - t0) * 1000)
    daemon.removed_since_full += removed
    full = had_trackers or daemon.removed_since_full >= FULL_AFTER_REMOVED
    collect_after_reload(full=full)
    if full:
        daemon.removed_since_full = 0
    return started


def _remove_changed(daemon: Daemon, wanted: dict[str, InstanceConfig], now: int) -> int:
    """Stop and remove every instance the new config changes or drops; keep the others as they run. Returns
    how many were removed."""
    removed = 0
    for name, inst in list(daemon.insts.items()):
        nc = wanted.get(name)
        if nc is not None and _fingerprint(nc) == _fingerprint(inst.io.cfg):
            inst.io.cfg = nc
            continue
        log.info("(%s) %s by reload", name, "changed" if nc is not None else "removed")
        if inst.io.started:
            daemon.driver.shutdown(inst, now)
            daemon.port.later.drain()  # its STOP is reported before its DELETED, as keepalived orders them
        if nc is None:
            daemon.notifier.instance_state(name, inst.io.scripts, "DELETED", inst.core.priority)
        if daemon.status.book is not None:
            daemon.status.book.forget(name)
        daemon.builder.remove(inst)
        removed += 1
    return removed


def _fingerprint(icfg: InstanceConfig) -> Any:
    """What decides whether a reload may keep an instance running: everything but where it was written."""
    return dataclasses.replace(icfg, file="", line=0)


def collect_after_reload(full: bool) -> float:
    """Keep what the reload made out of later gc scans (gc.freeze: a pointer swap). With `full`, first thaw
    everything and collect: a walk of every object of the daemon with the GIL held, during which the advert
    thread cannot send either (16 to 19 ms with 1,000 instances), so it runs only when it may find something:
    running trackers were replaced (their tasks and callbacks may hold cycles), or FULL_AFTER_REMOVED
    instances were removed or rebuilt since the last one. Rebuilt instances themselves no longer leave
    cycles (1,200 rebuilds grew RSS by 44 KiB without any collection); the count only bounds what a future
    cycle could leak (docs/costs.md#collection-after-a-reload). Returns the seconds it held the loop."""
    t0 = time.perf_counter()
    found = 0
    if full:
        gc.unfreeze()
        found = gc.collect()
    gc.freeze()
    held = time.perf_counter() - t0
    log.info(
        "reload: %s collection in %.1f ms (%d unreachable objects)",
        "full" if full else "no",
        held * 1000,
        found,
    )
    return held
