"""The daemon's Port: what the driver asks of the outside world. Address changes go to netlink (with the
no_accept drop and the virtual routes around them), announcements to the interface's frame sender,
transitions to the log, the notify scripts and FIFOs, the sync group notices and the status file.
Every call returns at once; address changes run as tasks that `settle()` waits for.

Nothing here walks every instance on a transition (docs/costs.md#per-transition). The address changes of
instances without no_accept or virtual routes (the common case) are gathered for one loop turn and handed to
the netlink worker as one pre-encoded batch: a mass takeover of a thousand instances is a few send()s. The
VIPs held are indexed by (interface index, address), so an address event costs one lookup; an event that
may be the echo of our own change still in flight (IPv6 events carry no sender) is not answered at once:
the instance's VIPs are checked again once its changes are done.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import os
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from fastvrrp import _engine
from fastvrrp.core.types import State, StateChanged
from fastvrrp.daemon import notify, status, virtual_routes
from fastvrrp.daemon.driver import RunningInstance
from fastvrrp.daemon.no_accept import NoAccept
from fastvrrp.io import announce as announce_io
from fastvrrp.io import netlink

log = logging.getLogger("fastvrrp")


class Later:
    """Work that must not delay the adverts: run from the loop's ready queue after the current turn (whose
    end flushes the engine's adverts), in order, at most `budget_s` per loop callback, so a thousand
    transitions' reports interleave with the timers and sockets instead of holding the loop for their
    whole length (docs/costs.md#per-transition)."""

    __slots__ = ("loop", "budget_s", "items", "_handle", "errors")

    def __init__(self, loop: asyncio.AbstractEventLoop, budget_s: float = 0.002) -> None:
        self.loop = loop
        self.budget_s = budget_s
        self.items: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]] = collections.deque()
        self._handle: asyncio.Handle | None = None
        self.errors = 0

    def add(self, fn: Callable[..., None], *args: Any) -> None:
        self.items.append((fn, args))
        if self._handle is None:
            self._handle = self.loop.call_soon(self._run)

    def _run(self) -> None:
        self._handle = None
        end = time.perf_counter() + self.budget_s
        items = self.items
        while items:
            fn, args = items.popleft()
            try:
                fn(*args)
            except Exception:  # one report failing must not lose the others
                self.errors += 1
                log.exception("internal error in %s", getattr(fn, "__name__", fn))
            if items and time.perf_counter() > end:
                self._handle = self.loop.call_soon(self._run)
                return

    def drain(self) -> None:
        """Everything now (stop, reload)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.budget_s, budget = float("inf"), self.budget_s
        try:
            self._run()
        finally:
            self.budget_s = budget


# Deferred work that can outrun the loop (docs/costs.md#under-sustained-churn): a peer flapping every
# instance, or a starved loop, makes transitions and lower-priority bursts faster than `Later` runs them.
# Each instance keeps at most this many transition reports waiting; a later transition is folded into the
# last one waiting (its end state, reason and time, and a count), so the backlog is bounded by the instance
# count, not by the length of the storm, and the last report always names the state the instance is in.
REPORTS_WAITING = 3


class _Report:
    """A transition report waiting in `Later` (mutable: a later transition of its instance folds into it)."""

    __slots__ = ("change", "priority", "wall", "folded")

    def __init__(self, change: StateChanged, priority: int, wall: float) -> None:
        self.change = change
        self.priority = priority
        self.wall = wall
        self.folded = 0


class DaemonPort:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        engine: _engine.Engine,
        nl: netlink.NetlinkWorker,
        insts: dict[str, RunningInstance],
        notifier: notify.Notifier,
        group_changed: Callable[[str], None],
        book: status.StatusBook | None,
        write_status: Callable[[], None],
        no_accept: NoAccept,
    ) -> None:
        self.loop = loop
        self.engine = engine
        self.nl = nl
        self.insts = insts
        self.notifier = notifier
        self.group_changed = group_changed  # a member changed state (sync group notices)
        self.book = book
        self.write_status = write_status
        self.no_accept = no_accept
        self._tasks: set[asyncio.Task] = set()  # address changes in flight (stop waits for them)
        # The VIPs of the instances holding them (or about to): (ifindex, address) -> instances.
        self.held: dict[tuple[int, str], list[RunningInstance]] = {}
        self._holders: dict[RunningInstance, None] = {}  # the instances in `held` (ordered set)
        self._want: dict[RunningInstance, bool] = {}  # batched changes not handed to the worker yet
        self._flush: asyncio.Handle | None = None
        self._busy: dict[RunningInstance, int] = {}  # address changes in the worker, per instance
        self._recheck: set[RunningInstance] = set()  # removal seen while busy: re-add once idle if MASTER
        self._status_soon = False  # a status write is already asked for this loop turn
        self.later = Later(loop)  # what the adverts go before: reports and announcements
        # GARP / NA pacing (vrrp_garp_interval, garp_group): one Pacer per interface or garp_group, and for
        # each with frames waiting, the timer of its next drain and when it is for (time.monotonic() in ms),
        # or None: a drain is already in `later`.
        self.pacers: dict[object, announce_io.Pacer] = {}
        self._pacing: dict[object, tuple[asyncio.TimerHandle, float] | None] = {}
        self.batches = 0  # batches handed to the worker
        self.put_back = 0  # VIPs put back after someone else removed them
        # What waits in `later`, per instance: (reports waiting, the last of them); the announcement frames
        # waiting (announcer epoch, frames); the lower-priority report waiting ([priority, ours, count]).
        self._reports: dict[RunningInstance, tuple[int, _Report]] = {}
        self._frames: dict[RunningInstance, tuple[int, list[bytes]]] = {}
        self._lower: dict[RunningInstance, list[int]] = {}
        self.folded = {"report": 0, "announce": 0, "lower_priority": 0}  # folded into work already waiting

    # --- the driver's calls ------------------------------------------------------------------------------

    def addresses(self, inst: RunningInstance, add: bool) -> None:
        if not inst.io.vips:
            return
        self._index(inst, add)
        if inst.io.no_accept or inst.io.routes:  # nftables / pyroute2 around the change: one task each
            self._spawn(self._change_addresses(inst, add))
            return
        self._want.pop(inst, None)  # the last wish wins; an add-then-remove in one turn is just a removal
        self._want[inst] = add
        if self._flush is None:
            self._flush = self.loop.call_soon(self._flush_addresses)

    def announce(self, inst: RunningInstance, frames: list[bytes]) -> None:
        # Sent after the loop turn's adverts (the engine is flushed first, at the end of the turn), so the
        # takeover advert goes before the gratuitous ARPs (RFC 5798 6.4.2 order) and a mass takeover sends
        # every instance's advert before anyone's ARPs. With an interval on the interface, the frames join
        # its Pacer's queue, drained by the loop's timer one frame per interval across all instances.
        # Frames of the same mastership (announcer epoch) still waiting say what these would: the new ones
        # are folded into them (a master hearing lower priorities faster than it can send, case 2 of
        # docs/costs.md#under-sustained-churn); those of an earlier mastership are stale and replaced.
        epoch = inst.announcer.epoch
        pace = inst.io.pace
        if pace is None or not (pace[1] or pace[2]):
            waiting = self._frames.get(inst)
            if waiting is not None and waiting[0] == epoch:
                self.folded["announce"] += 1
                return
            self._frames[inst] = (epoch, frames)
            if waiting is None:
                self.later.add(self._announce_now, inst)
            return
        key, arp_ms, na_ms = pace
        pacer = self.pacers.get(key)
        if pacer is None:
            pacer = self.pacers[key] = announce_io.Pacer(arp_ms, na_ms)
        elif pacer.gaps_ms != (arp_ms, na_ms):
            pacer.set_gaps(arp_ms, na_ms)  # a reload changed the interval
        if pacer.waiting(inst, epoch):
            self.folded["announce"] += 1
            return
        pacer.push(inst, epoch, frames)
        if key in self._pacing:
            timer = self._pacing[key]
            dl = pacer.deadline()
            if timer is None or dl is None or dl >= timer[1]:
                return  # the drain already asked for comes soon enough
            timer[0].cancel()  # frames that may go sooner (a family without an interval, or an idle one)
        self._pacing[key] = None
        self.later.add(self._drain, key)

    def _alive(self, inst: RunningInstance, epoch: int) -> bool:
        a = inst.announcer
        return a.active and a.epoch == epoch and self.insts.get(inst.name) is inst

    def _drain(self, key: object) -> None:
        """Send what the Pacer of `key` has due (after any advert queued since the turn's end), then arm the
        loop's timer for its next frame. The clock is time.monotonic(), not the loop's: uvloop's time() is in
        milliseconds, cached per loop iteration, and its timers may fire up to a millisecond early, which
        would shorten the interval. A timer that fired early finds nothing due and is armed again."""
        self._pacing.pop(key, None)
        pacer = self.pacers[key]
        out = pacer.due(time.monotonic() * 1000, self._alive)
        if out:
            self.engine.flush()
            for inst, frame in out:
                inst.io.sender.send((frame,))
            pacer.restamp(time.monotonic() * 1000)  # the interval counts from after the send
        dl = pacer.deadline()
        if dl is not None:
            wait_ms = max(0.0, dl - time.monotonic() * 1000)
            timer = self.loop.call_later(math.ceil(wait_ms) / 1000, self._drain_later, key)
            self._pacing[key] = (timer, dl)

    def _drain_later(self, key: object) -> None:
        self._pacing[key] = None
        self.later.add(self._drain, key)

    def _announce_now(self, inst: RunningInstance) -> None:
        epoch, frames = self._frames.pop(inst, (-1, []))
        a = inst.announcer
        if a.active and a.epoch == epoch:  # still master, the same time: a backup must not announce (6.4.2)
            self.engine.flush()  # no-op unless an advert was queued since the turn's end
            inst.io.sender.send(frames)

    def transition(self, inst: RunningInstance, change: StateChanged) -> None:
        """Reported (log, notify scripts and FIFOs, sync group notices, status) after the turn's adverts,
        stamped with when it was decided (the driver's reading of the daemon's monotonic clock, as wall time):
        under churn the report may run tens of ms after the decision (docs/kernel-notes.md#decision-time)."""
        wall = time.time()
        if inst.changed_us > 0:
            wall -= (time.monotonic_ns() // 1000 - inst.changed_us) / 1e6
        waiting = self._reports.get(inst)
        if waiting is not None and waiting[0] >= REPORTS_WAITING:
            last = waiting[1]
            last.change = StateChanged(last.change.old, change.new, change.reason)
            last.priority, last.wall = inst.core.priority, wall
            last.folded += 1
            self.folded["report"] += 1
            return
        rec = _Report(change, inst.core.priority, wall)
        self._reports[inst] = (1 if waiting is None else waiting[0] + 1, rec)
        self.later.add(self._report, inst, rec)

    def _report(self, inst: RunningInstance, rec: _Report) -> None:
        waiting = self._reports.get(inst)
        if waiting is not None:
            if waiting[0] > 1:
                self._reports[inst] = (waiting[0] - 1, waiting[1])
            else:
                del self._reports[inst]
        change, priority, wall = rec.change, rec.priority, rec.wall
        if change.new is State.INIT:
            log.info("(%s) Stopped", inst.name)
            word = "STOP"
        else:
            log.info("(%s) Entering %s STATE", inst.name, change.new.name)
            word = change.new.name
        if rec.folded:
            log.warning(
                "(%s) %d more transition(s) folded into this report: the daemon fell behind a storm of them",
                inst.name,
                rec.folded,
            )
        if log.isEnabledFor(logging.DEBUG):
            decided = datetime.fromtimestamp(wall).isoformat(" ", "microseconds")
            log.debug(
                "(%s) %s -> %s: %s, decided %s",
                inst.name,
                change.old.name,
                change.new.name,
                change.reason,
                decided,
            )
        self.notifier.instance_state(inst.name, inst.io.scripts, word, priority)
        self.group_changed(inst.name)
        if self.book is not None:
            self.book.transition(inst.name, change.reason, wall)
        if not self._status_soon:  # the status file and systemd's STATUS=, once per batch of transitions
            self._status_soon = True
            self.loop.call_soon(self._write_status)

    def _write_status(self) -> None:
        self._status_soon = False
        self.write_status()

    def lower_priority(self, inst: RunningInstance, priority: int) -> None:
        waiting = self._lower.get(inst)
        if waiting is not None:  # one report per instance waits; later ones update it
            waiting[0], waiting[1] = priority, inst.core.priority
            waiting[2] += 1
            self.folded["lower_priority"] += 1
            return
        self._lower[inst] = [priority, inst.core.priority, 0]
        self.later.add(self._report_lower, inst)

    def _report_lower(self, inst: RunningInstance) -> None:
        priority, ours, folded = self._lower.pop(inst, (0, 0, 0))
        if folded:
            log.info("(%s) received lower priority (%d) advert (%d more since the last report)", inst.name,
                     priority, folded)  # fmt: skip
        else:
            log.info("(%s) received lower priority (%d) advert", inst.name, priority)
        self.notifier.instance_event(inst.name, inst.io.scripts, "MASTER_RX_LOWER_PRI", ours)

    # --- addresses taken away behind our back (the link monitor) --------------------------------------------

    def on_addr(self, ifindex: int, family: int, address: str, prefixlen: int, added: bool) -> None:
        """A VIP removed while its instance is MASTER goes back (one dictionary lookup per event)."""
        if added:
            return
        for inst in self.held.get((ifindex, address), ()):
            if not (inst.holds_addresses and inst.core.state is State.MASTER):
                continue
            if inst in self._busy or inst in self._want:
                self._recheck.add(inst)  # maybe our own removal coming back: look again once idle
                return
            log.warning("(%s) %s/%d was removed while MASTER: putting it back", inst.name, address, prefixlen)
            self.put_back += 1
            self.addresses(inst, True)
            return

    def on_resync(self) -> None:
        """Address events were lost: every master adds its VIPs again."""
        for inst in list(self._holders):
            if inst.holds_addresses and inst.core.state is State.MASTER:
                self.addresses(inst, True)

    def _index(self, inst: RunningInstance, add: bool) -> None:
        if add == (inst in self._holders):
            return
        if add:
            self._holders[inst] = None
            for spec in inst.io.vips:
                self.held.setdefault((spec.ifindex, spec.address), []).append(inst)
            return
        del self._holders[inst]
        for spec in inst.io.vips:
            key = (spec.ifindex, spec.address)
            users = self.held.get(key)
            if users is not None and inst in users:
                users.remove(inst)
                if not users:
                    del self.held[key]

    # --- address changes ---------------------------------------------------------------------------------

    async def settle(self) -> None:
        """Report what is still to report, and wait until no address change is in flight."""
        self.later.drain()
        if self._want:
            self._flush_addresses()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            if self._want:
                self._flush_addresses()

    def _flush_addresses(self) -> None:
        """Hand every change gathered this turn to the netlink worker as one batch."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if not self._want:
            return
        ops = list(self._want.items())
        self._want.clear()
        for inst, _add in ops:
            self._busy[inst] = self._busy.get(inst, 0) + 1
        self.batches += 1
        self._spawn(self._apply_batch(ops))

    async def _apply_batch(self, ops: list[tuple[RunningInstance, bool]]) -> None:
        try:
            results = await self.nl.fast_apply([(inst.io.add_batch, add) for inst, add in ops])
        except Exception:
            log.exception("netlink: changing the addresses of %d instance(s) failed", len(ops))
            results = []
        for (inst, add), res in zip(ops, results, strict=False):
            verb = "add" if add else "remove"
            for spec, err in res.failed:
                log.error("(%s) cannot %s %s: %s", inst.name, verb, spec.text(), os.strerror(err))
        for inst, _add in ops:
            n = self._busy.get(inst, 0) - 1
            if n > 0:
                self._busy[inst] = n
                continue
            self._busy.pop(inst, None)
            if inst in self._recheck and inst not in self._want:
                self._recheck.discard(inst)
                if (
                    inst.holds_addresses
                    and inst.core.state is State.MASTER
                    and self.insts.get(inst.name) is inst
                ):
                    self.addresses(inst, True)  # reconcile: EEXIST for what is there, the rest goes back

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _change_addresses(self, inst: RunningInstance, add: bool) -> None:
        self._busy[inst] = self._busy.get(inst, 0) + 1
        try:
            await self._change_addresses_now(inst, add)
        finally:
            n = self._busy.pop(inst, 1) - 1
            if n > 0:
                self._busy[inst] = n
            elif inst in self._recheck:
                self._recheck.discard(inst)
                if (
                    inst.holds_addresses
                    and inst.core.state is State.MASTER
                    and self.insts.get(inst.name) is inst
                ):
                    self._spawn(self._change_addresses(inst, True))

    async def _change_addresses_now(self, inst: RunningInstance, add: bool) -> None:
        verb = "add" if add else "remove"
        await self._before_address_change(inst, add)
        try:
            if add:
                res = await self.nl.fast_add(inst.io.add_batch)
            else:
                res = await self.nl.fast_remove(inst.io.add_batch)
        except Exception:
            log.exception("(%s) netlink %s failed", inst.name, verb)
            return
        finally:
            await self._after_address_change(inst, add)
        for spec, err in res.failed:
            log.error("(%s) cannot %s %s: %s", inst.name, verb, spec.text(), os.strerror(err))

    async def _before_address_change(self, inst: RunningInstance, add: bool) -> None:
        # no_accept: the drop is in place before the address exists (RFC 5798 6.4.3); routes and rules may
        # use a VIP as their source, so they go before the addresses do.
        try:
            if add and inst.io.no_accept:
                await self.no_accept.drop(inst)
            if not add and inst.io.routes:
                await virtual_routes.apply(self.nl, inst, False)
        except Exception:
            log.exception("(%s) preparing the address change failed", inst.name)

    async def _after_address_change(self, inst: RunningInstance, add: bool) -> None:
        try:
            if add and inst.io.routes:
                await virtual_routes.apply(self.nl, inst, True)
            if not add and inst.io.no_accept:
                await self.no_accept.undrop(inst)
        except Exception:
            log.exception("(%s) completing the address change failed", inst.name)
