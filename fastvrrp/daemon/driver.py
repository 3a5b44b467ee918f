"""The glue between the compiled engine and the sans-I/O core, with no I/O of its own.

`Driver` hands what the engine cannot settle to the core (`VrrpInstance`), applies the actions the core
returns (adverts through the engine, everything else through a `Port`), and hands the timing back to the
engine. The daemon supplies a Port that talks to netlink and AF_PACKET sockets; the simulation tests supply
one that records, and run the same Driver on capture-mode engines under a virtual clock - with the fast path
on and off, which must give the same transitions and the same packets.

The fast path (docs/DESIGN.md#the-fast-path): while an instance is MASTER the engine sends its pre-rendered
adverts itself; while it is BACKUP and follows a master, the engine pushes the Master_Down deadline for every
advert repeating the master's (source, priority, interval) and hands up only changes. The core's own deadline
goes stale while the engine owns the timing, so after each core call the driver pushes the core's deadline to
the engine only if the call changed it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastvrrp import _engine, _wire
from fastvrrp.core.instance import VrrpInstance
from fastvrrp.core.syncgroup import FAULT_ON, TO_BACKUP, TO_MASTER, Directive, SyncGroup, SyncMember
from fastvrrp.core.types import (
    Action,
    AddAddresses,
    Advert,
    Announce,
    HeardLowerPriority,
    RemoveAddresses,
    SendAdvert,
    State,
    StateChanged,
)
from fastvrrp.io.announce import AnnounceSchedule


def advert_counts(stats: Any, slot_stats: Any) -> tuple[int, int]:
    """An instance's adverts (received, sent): the core judges the received adverts the engine does not
    absorb (`rx_fast`), and the engine counts every advert it queues for the slot (`sent`) but not the
    core's priority-0 resignation, which goes out by send_raw outside the slot."""
    ss = slot_stats or {}
    return stats.adverts_rx + ss.get("rx_fast", 0), ss.get("sent", 0) + stats.priority_zero_tx


_FIRED = -2  # "the deadline changed": after a fire the engine slot holds no deadline
CLOCK_EVERY = 32  # handle(): events between two reads of the clock, when a clock is given


@dataclass(eq=False, slots=True)
class RunningInstance:
    """A running instance as the driver sees it."""

    name: str
    core: VrrpInstance
    slot: int
    tx_id: int
    ifindex: int
    adver_int_ms: int
    dests: list[bytes]  # the multicast group, or each unicast peer
    templates: list[_wire.AdvertTemplate]  # one per destination
    announcer: AnnounceSchedule
    io: Any = None  # what the Port keeps per instance (netlink batches, frame sender ...)
    rendered: tuple[int, int] = (-1, -1)
    follow: tuple[bytes, int, int] | None = None  # (src, priority, interval) the backup fast path matches
    holds_addresses: bool = False
    last_change: StateChanged | None = None
    # The clock reading (us) its last transition was decided on: for a timer, the reading the engine's run
    # fired it with, taken before that run read the sockets. The Port reports transitions later (after the
    # turn's adverts), so this, not the report's time, says when it happened.
    changed_us: int = 0
    # keepalived garp_lower_prio_repeat / garp_lower_prio_delay: a master hearing a lower priority (the core's
    # HeardLowerPriority, on the S9 rate limit) sends that many GARP/NA at once and again after the delay.
    garp_lower_prio_repeat: int = 0  # 0: no burst
    garp_lower_prio_delay_ms: int = 0  # 0: no second set
    report_lower_prio: bool = True  # hand HeardLowerPriority to the Port (notify_master_rx_lower_pri)
    # fastvrrp advert_copies / advert_copy_delay (docs/rfc-checklist.md#advert-copies): every advert of this
    # instance goes out that many times, the copies that far apart; the engine sends them.
    advert_copies: int = 1
    advert_copy_delay_ms: int = 0


class Port(Protocol):
    """The I/O the driver asks for; every call returns at once (the work may finish later)."""

    def addresses(self, inst: RunningInstance, add: bool) -> None: ...
    def announce(self, inst: RunningInstance, frames: list[bytes]) -> None: ...
    def transition(self, inst: RunningInstance, change: StateChanged) -> None: ...
    def lower_priority(self, inst: RunningInstance, priority: int) -> None: ...


def make_templates(
    *,
    version: int,
    family: int,
    vrid: int,
    priority: int,
    adver_int_ms: int,
    addresses: Iterable[bytes],
    src: bytes,
    dests: Iterable[bytes],
    auth_type: int = 0,
    auth_data: bytes = b"",
    checksum_form: int = _wire.CS_PSEUDO,
) -> list[_wire.AdvertTemplate]:
    """One template per destination: a v3 IPv4 pseudo-header covers the destination
    (docs/rfc-checklist.md#unicast-checksum)."""
    addrs = list(addresses)
    return [
        _wire.AdvertTemplate(
            version=version,
            family=family,
            vrid=vrid,
            priority=priority,
            adver_int_ms=adver_int_ms,
            addresses=addrs,
            src=src,
            dst=d,
            auth_type=auth_type,
            auth_data=auth_data,
            checksum_form=checksum_form,
        )
        for d in dests
    ]


@dataclass(eq=False)
class Driver:
    engine: _engine.Engine
    port: Port
    insts: dict[int, RunningInstance] = field(default_factory=dict)  # by engine slot
    groups: dict[str, SyncGroup] = field(default_factory=dict)  # sync group of each member, by member name
    # Pending announcement deadlines (ms) by slot: only instances with GARP/NA still to send. A master whose
    # bursts are done costs nothing per wake-up, whatever the number of instances.
    announcing: dict[int, int] = field(default_factory=dict)
    # The second garp_lower_prio_repeat set still to send (ms) by slot.
    lower_prio_second: dict[int, int] = field(default_factory=dict)

    # --- instances ---------------------------------------------------------------------------------------

    def add(self, inst: RunningInstance) -> None:
        self.insts[inst.slot] = inst
        if inst.advert_copies > 1:
            self.engine.set_copies(inst.slot, inst.advert_copies, inst.advert_copy_delay_ms * 1000)

    def remove(self, inst: RunningInstance) -> None:
        self.engine.remove_slot(inst.slot)
        del self.insts[inst.slot]
        self.announcing.pop(inst.slot, None)
        self.lower_prio_second.pop(inst.slot, None)

    def start(self, inst: RunningInstance, now_us: int) -> None:
        self._call(inst, now_us, inst.core.start)

    def shutdown(self, inst: RunningInstance, now_us: int) -> None:
        """S10 for a master (priority 0, addresses removed), S5 for a backup; the slot goes quiet."""
        self._apply(inst, inst.core.shutdown(now_us), now_us)
        inst.announcer.stop()
        self._note_announce(inst)
        self.lower_prio_second.pop(inst.slot, None)
        self.engine.timer(inst.slot, -1)

    def set_fault(self, inst: RunningInstance, faulty: bool, now_us: int) -> None:
        group = self.groups.get(inst.name)
        if group is not None:  # the whole group goes to FAULT and comes back together
            for d in group.on_fault(inst.name, faulty):
                self._direct(d, now_us)
            return
        self._call(inst, now_us, lambda t: inst.core.set_fault(faulty, t))

    def set_priority(self, inst: RunningInstance, effective: int, now_us: int) -> None:
        self._call(inst, now_us, lambda t: inst.core.set_priority(effective, t))

    def set_drain(self, inst: RunningInstance, drained: bool, now_us: int) -> None:
        """Operator drain (core.instance): a master resigns with priority 0 and waits as a backup at 1."""
        self._call(inst, now_us, lambda t: inst.core.set_drained(drained, t))

    def _call(self, inst: RunningInstance, now_us: int, fn: Any) -> None:
        before = inst.core.next_deadline_us
        self._apply(inst, fn(now_us), now_us)
        self._sync(inst, before, now_us)

    # --- events ------------------------------------------------------------------------------------------

    def handle(self, events: list, now_us: int, clock: Callable[[], int] | None = None) -> None:
        """Events from engine.run() / receive(): due deadlines, and adverts the fast path did not take.
        `clock` (the daemon's; none in simulations) re-reads the time every CLOCK_EVERY events: an advert
        handled late in a long list counts as heard when it is handled, not when the list began."""
        turn_us = now_us  # what run() compared the deadlines with, before it read the sockets
        for n, ev in enumerate(events):
            if clock is not None and n and not n % CLOCK_EVERY:
                now_us = max(now_us, clock())
            inst = self.insts.get(ev[1])
            if inst is None:
                continue
            core = inst.core
            before = core.next_deadline_us
            if ev[0] == _engine.EV_TIMER:
                # The engine fires up to 0.5 ms early (uvloop's 1 ms timers): the core must see the deadline
                # as reached, and re-arms from it as the engine's master fast path does. After a fire the
                # engine slot holds no deadline: always re-arm it.
                actions = core.on_timer(max(now_us, ev[2]))
                before = _FIRED
                pkt = None
                decided_us = turn_us
            else:
                pkt = ev[2]
                adv = Advert(
                    src=pkt.src,
                    vrid=pkt.vrid,
                    priority=pkt.priority,
                    adver_int_ms=pkt.adver_int_ms,
                    version=pkt.version,
                    addresses=pkt.addresses,
                    auth_type=pkt.auth_type,
                )
                actions = core.on_advert(adv, now_us)
                decided_us = now_us
            self._apply(inst, actions, now_us, decided_us)
            self._sync(inst, before, now_us, pkt)

    def tick(self, now_us: int, clock: Callable[[], int] | None = None) -> None:
        """The loop timer fired: due engine deadlines (the engine first reads what waits in the sockets when a
        non-master deadline is due), then due announcements."""
        events = self.engine.run(now_us)
        if events:
            self.handle(events, now_us, clock)
        now_ms = now_us // 1000  # the announcement schedule (io/announce.py) works in ms
        due = [slot for slot, dl in self.announcing.items() if dl <= now_ms]
        for slot in due:
            inst = self.insts[slot]
            frames = inst.announcer.poll(now_ms)
            if frames:
                self.port.announce(inst, frames)
            self._note_announce(inst)
        if self.lower_prio_second:
            for slot in [s for s, dl in self.lower_prio_second.items() if dl <= now_ms]:
                del self.lower_prio_second[slot]
                self._lower_prio_burst(self.insts[slot], now_ms)

    def next_deadline(self, horizon_us: int = 2**63 - 1) -> int:
        """The earliest deadline in microseconds (engine slots and announcements), -1 if none; past
        horizon_us it may be early (Engine.next_deadline)."""
        nd = self.engine.next_deadline(horizon_us)
        if self.announcing:
            dl = min(self.announcing.values()) * 1000
            if nd < 0 or dl < nd:
                nd = dl
        if self.lower_prio_second:
            dl = min(self.lower_prio_second.values()) * 1000
            if nd < 0 or dl < nd:
                nd = dl
        return nd

    def _lower_prio_burst(self, inst: RunningInstance, now_ms: int) -> None:
        """garp_lower_prio_repeat GARP/NA per VIP while still master (the schedule is inactive otherwise)."""
        frames = inst.announcer.burst(now_ms, inst.garp_lower_prio_repeat)
        if frames:
            self.port.announce(inst, frames)
        self._note_announce(inst)

    def _note_announce(self, inst: RunningInstance) -> None:
        a = inst.announcer
        dl = a.next_deadline_ms if a.active else None
        if dl is None:
            self.announcing.pop(inst.slot, None)
        else:
            self.announcing[inst.slot] = dl

    # --- applying the core's actions ---------------------------------------------------------------------

    def _render(self, inst: RunningInstance, priority: int) -> list[tuple[bytes, int, bytes]]:
        interval = inst.adver_int_ms
        return [
            (d, inst.ifindex, t.render(priority, interval))
            for d, t in zip(inst.dests, inst.templates, strict=True)
        ]

    def _ensure_rendered(self, inst: RunningInstance) -> None:
        key = (inst.core.priority, inst.adver_int_ms)
        if inst.rendered != key:
            self.engine.set_adverts(inst.slot, inst.tx_id, self._render(inst, inst.core.priority))
            inst.rendered = key

    def _apply(
        self, inst: RunningInstance, actions: Iterable[Action], now_us: int, decided_us: int = -1
    ) -> None:
        for a in actions:
            if isinstance(a, SendAdvert):
                if a.priority == inst.core.priority:
                    self._ensure_rendered(inst)
                    self.engine.send_now(inst.slot, now_us)  # now_us: its copies follow (advert_copies)
                else:  # priority 0 (resigning): a one-off rendering
                    for dest, ifindex, msg in self._render(inst, a.priority):
                        self.engine.send_raw(inst.tx_id, dest, ifindex, msg)
            elif isinstance(a, Announce):
                frames = inst.announcer.became_master(now_us // 1000)
                if frames:
                    self.port.announce(inst, frames)
                self._note_announce(inst)
            elif isinstance(a, AddAddresses):
                inst.holds_addresses = True
                self.port.addresses(inst, True)
            elif isinstance(a, RemoveAddresses):
                inst.announcer.stop()
                self._note_announce(inst)
                self.lower_prio_second.pop(inst.slot, None)
                if inst.holds_addresses:
                    self.port.addresses(inst, False)
                inst.holds_addresses = False
            elif isinstance(a, HeardLowerPriority):
                if inst.garp_lower_prio_repeat > 0 and inst.announcer.active:
                    # keepalived: refresh the segment's ARP caches at once, and a second set after the delay
                    # (the first pending second set stands: the S9 rate limit must not push it out forever).
                    now_ms = now_us // 1000
                    self._lower_prio_burst(inst, now_ms)
                    if inst.garp_lower_prio_delay_ms > 0:
                        self.lower_prio_second.setdefault(inst.slot, now_ms + inst.garp_lower_prio_delay_ms)
                if inst.report_lower_prio:
                    self.port.lower_priority(inst, a.priority)
            elif isinstance(a, StateChanged):
                if a.old is State.MASTER and inst.advert_copies > 1:
                    self.engine.cancel_copies(inst.slot)  # no copy of a master's advert after it steps down
                inst.follow = None
                inst.last_change = a
                inst.changed_us = now_us if decided_us < 0 else decided_us
                self.port.transition(inst, a)
                if self.groups:
                    self._group_changed(inst, a, now_us)

    def _sync(self, inst: RunningInstance, before_us: int | None, now_us: int, pkt: Any = None) -> None:
        """Hand the instance's timing to the engine after a core call (see the module docstring). Core and
        engine both keep microseconds, so deadlines pass through unchanged."""
        core = inst.core
        dl = core.next_deadline_us
        changed = dl != before_us
        st = core.state
        eng = self.engine
        if st is State.MASTER:
            self._ensure_rendered(inst)
            if changed or eng.mode(inst.slot) != "master":
                assert dl is not None
                eng.master(inst.slot, core.adver_int_us, dl)
            return
        # The engine matches (source, priority, interval), not the address list: a v2 backup must drop a
        # master's advert whose list changed (RFC 3768 7.1), so v2 follows on the fast path only when
        # skip_check_adv_addr says the current master's list is not checked.
        cc = core.config
        if st is State.BACKUP and eng.fast_path and (cc.version == 3 or cc.skip_check_adv_addr):
            if pkt is not None and changed and pkt.priority > 0 and core.master_src == pkt.src:
                # The core followed this advert (S4); the same advert again would do nothing else - unless
                # it is a lower priority followed only for preempt_delay: then the core sees every one.
                lower = core.preempt and pkt.priority < core.priority
                inst.follow = None if lower else (pkt.src, pkt.priority, pkt.adver_int_ms)
            if inst.follow is not None and (not core.preempt or inst.follow[1] >= core.priority):
                src, prio, interval = inst.follow
                deadline = dl if (changed and dl is not None) else eng.deadline(inst.slot)
                eng.backup(inst.slot, src, prio, interval, core.master_down_interval_us, deadline)
                return
            inst.follow = None
        if changed:
            eng.timer(inst.slot, dl if dl is not None else -1)
        elif eng.mode(inst.slot) != "idle":
            eng.timer(inst.slot, eng.deadline(inst.slot))  # leave the fast path, keep its current deadline

    # --- sync groups (keepalived vrrp_sync_group; fastvrrp.core.syncgroup decides) --------------------------

    def set_sync_groups(self, members: dict[str, tuple[str, ...]]) -> None:
        """`members`: group name -> instance names. Every running member's core must be a SyncMember. A
        group keeps the states its members have now (reload)."""
        by_name = {i.name: i for i in self.insts.values()}
        self.groups = {}
        for gname, names in members.items():
            present = [n for n in names if n in by_name]
            if not present:
                continue
            owners = [n for n in present if by_name[n].core.owner]
            group = SyncGroup(gname, present, owners)
            for n in present:
                group.state[n] = by_name[n].core.state
                group.own_fault[n] = by_name[n].core.faulty
            for n in present:
                self.groups[n] = group

    def _group_changed(self, inst: RunningInstance, change: StateChanged, now_us: int) -> None:
        group = self.groups.get(inst.name)
        if group is not None:
            for d in group.on_state(inst.name, change.old, change.new):
                self._direct(d, now_us)

    def _direct(self, d: Directive, now_us: int) -> None:
        target = next((i for i in self.insts.values() if i.name == d.member), None)
        if target is None:
            return
        core = target.core
        if d.what == TO_MASTER or d.what == TO_BACKUP:
            if not isinstance(core, SyncMember):
                return
            fn = core.sync_master if d.what == TO_MASTER else core.sync_backup
            self._call(target, now_us, lambda t: fn(d.reason, t))  # _sync hands the timing to the engine
        else:
            self._call(target, now_us, lambda t: core.set_fault(d.what == FAULT_ON, t))
