"""One VRRP virtual router, sans I/O: RFC 5798 section 6 (v3) and RFC 3768 section 6 (v2) plus keepalived's
extensions (nopreempt, preempt_delay, tracked priority, FAULT).

The instance never reads a clock and never sends: every input takes `now_us` (monotonic integer microseconds)
and returns the list of actions the driver applies in order; the driver re-arms one timer at
`next_deadline_us` and calls `on_timer` when it is due. Configuration intervals are in ms (InstanceParams, as
keepalived.conf gives them); every time the instance keeps - deadlines, Skew_Time, Master_Down_Interval,
Master_Adver_Interval - is in integer microseconds, the unit of the engine's deadlines (timers.py).

How the module reads (docs/DESIGN.md#the-transition-table):
- `TRANSITIONS` lists every state change with its trigger, guard and RFC rule, plus the in-state reactions
  (dst == src); `python -m fastvrrp.core.diagram` draws it. `_go` refuses a change the table does not list.
- `_DISPATCH` maps (state, trigger) to one handler per state; a missing pair means "ignored in that state".
- `_enter_*` are the entry actions of each state; leaving MASTER always removes the addresses.

Choices where the RFCs or keepalived leave room (each is tested):
- keepalived `state MASTER` (start_master) on a non-owner starts as BACKUP and waits Master_Down_Interval
  like any backup ("the instance will wait between 3 and 4 advert intervals", keepalived.conf(5)); it only
  forces preemption on, because keepalived clears nopreempt and preempt_delay under `state MASTER` ("for
  this to work, the initial state must not be MASTER").
- preempt_delay (keepalived): the first Master_Down timer after startup (or after leaving FAULT) is extended
  by the delay, and a backup that sees a lower-priority master keeps accepting its adverts for preempt_delay
  before it starts discarding them (RFC 5798 6.4.2 S4): preemption comes preempt_delay later than without.
- An address owner stays at 255 whatever set_priority says (keepalived requires weight 0 for owners). By
  default an owner processes adverts (keepalived's default; RFC 9568 erratum 8298): two owners settle by the
  address tie-break and the loser waits as a backup at 255. `owner_ignore_adverts` gives RFC 5798 7.1.
- Leaving FAULT is a fresh startup (RFC 5798 6.4.1): BACKUP with a fresh Master_Down timer, or MASTER at once
  for an owner.
- The RFC 9568 immediate advert to a lower priority (S9) does not re-arm the Adver_Timer, and goes out at
  most once per `s9_reply_min_ms` (0 = one Advertisement_Interval): keepalived answers one to one and can be
  made to amplify (docs/rfc-checklist.md#hostile-segment).
- Operator drain (`fastvrrp ctl drain`, not in the RFCs or keepalived): a drained instance runs at priority 1,
  the lowest a backup may have (RFC 5798 5.2.4). A master that is drained resigns as on shutdown (RFC 5798
  6.4.3 S10: a priority-0 advert, so the best backup takes over after its Skew_Time; the addresses go) but
  waits as a BACKUP (the RFC 5798 6.4.1 backup branch) instead of INIT, so it still takes over as a last
  resort when nobody advertises (Master_Down_Interval at priority 1). An address owner is drained like any
  other instance: while drained it is not treated as the owner (priority 1, it processes adverts, leaving
  FAULT makes it a backup). Undrained, the tracked priority comes back: a master carries it in its next
  advert (S6), a backup preempts as S4 says once its Master_Down_Timer runs out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import LocalProtocolError
from .timers import US_PER_MS, master_down_interval_us, skew_us
from .types import (
    Action,
    AddAddresses,
    Advert,
    Announce,
    HeardLowerPriority,
    InstanceParams,
    RemoveAddresses,
    SendAdvert,
    State,
    StateChanged,
    Stats,
)

INIT, BACKUP, MASTER, FAULT = State.INIT, State.BACKUP, State.MASTER, State.FAULT

# Triggers: the inputs of the state machine.
START = "start"
TIMER = "timer"
ADVERT = "advert"
SHUTDOWN = "shutdown"
FAULT_ON = "fault"
FAULT_OFF = "recover"
DRAIN = "drain"  # operator drain (fastvrrp ctl)
UNDRAIN = "undrain"

OWNER_PRIORITY = 255  # RFC 5798 5.2.4
RESIGN_PRIORITY = 0  # RFC 5798 5.2.4: the master stops participating
DRAINED_PRIORITY = 1  # RFC 5798 5.2.4: the lowest priority a backup may run at


@dataclass(frozen=True, slots=True)
class Transition:
    src: State
    trigger: str
    guard: str
    dst: State
    rule: str


TRANSITIONS: tuple[Transition, ...] = (
    # --- Init (RFC 5798 6.4.1)
    Transition(INIT, START, "priority 255 (address owner)", MASTER, "RFC 5798 6.4.1 (S1)"),
    Transition(INIT, START, "priority < 255", BACKUP, "RFC 5798 6.4.1 (S1)"),
    Transition(INIT, START, "a fault is set", FAULT, "keepalived FAULT"),
    # --- Backup (RFC 5798 6.4.2)
    Transition(BACKUP, TIMER, "Master_Down_Timer fired", MASTER, "RFC 5798 6.4.2 (S2)"),
    Transition(BACKUP, ADVERT, "priority 0: Master_Down_Timer = Skew_Time", BACKUP, "RFC 5798 6.4.2 (S3)"),
    Transition(
        BACKUP,
        ADVERT,
        "!preempt or priority >= local: learn interval, reset timer",
        BACKUP,
        "RFC 5798 6.4.2 (S4)",
    ),
    Transition(BACKUP, ADVERT, "preempt and priority < local: discard", BACKUP, "RFC 5798 6.4.2 (S4)"),
    Transition(BACKUP, SHUTDOWN, "", INIT, "RFC 5798 6.4.2 (S5)"),
    Transition(BACKUP, FAULT_ON, "", FAULT, "keepalived FAULT"),
    Transition(BACKUP, DRAIN, "run at priority 1; the running timer keeps its deadline", BACKUP, "operator"),
    Transition(
        BACKUP, UNDRAIN, "tracked priority back; S4 preempts when the timer runs out", BACKUP, "operator"
    ),
    # --- Master (RFC 5798 6.4.3)
    Transition(MASTER, TIMER, "Adver_Timer fired: send advert", MASTER, "RFC 5798 6.4.3 (S6)"),
    Transition(MASTER, ADVERT, "priority 0: send advert at once", MASTER, "RFC 5798 6.4.3 (S7)"),
    Transition(
        MASTER, ADVERT, "higher priority, or equal from a higher address", BACKUP, "RFC 5798 6.4.3 (S8)"
    ),
    Transition(
        MASTER, ADVERT, "lower priority: discard, send advert (rate-limited)", MASTER, "RFC 9568 6.4.3 (S9)"
    ),
    Transition(MASTER, SHUTDOWN, "send priority 0", INIT, "RFC 5798 6.4.3 (S10)"),
    Transition(MASTER, FAULT_ON, "send priority 0", FAULT, "keepalived FAULT"),
    Transition(
        MASTER, DRAIN, "send priority 0, wait at priority 1", BACKUP, "RFC 5798 6.4.3 (S10) + 6.4.1 backup"
    ),
    Transition(MASTER, UNDRAIN, "tracked priority in the next advert", MASTER, "RFC 5798 6.4.3 (S6)"),
    # --- Fault (keepalived): leaving it is a fresh startup
    Transition(FAULT, FAULT_OFF, "priority 255", MASTER, "keepalived FAULT + RFC 5798 6.4.1"),
    Transition(FAULT, FAULT_OFF, "priority < 255", BACKUP, "keepalived FAULT + RFC 5798 6.4.1"),
    Transition(FAULT, SHUTDOWN, "", INIT, "keepalived FAULT"),
)

_LEGAL = frozenset((t.src, t.trigger, t.dst) for t in TRANSITIONS if t.src != t.dst)


def _addr_int(addr: bytes) -> int:
    # RFC 9568 6.4.3: primary addresses compare as unsigned integers in network byte order.
    return int.from_bytes(addr, "big")


class VrrpInstance:
    """One virtual router (one VRID on one interface and family)."""

    # Thousands of these live for the daemon's life: no per-object __dict__.
    __slots__ = (
        "config", "state", "owner", "priority", "tracked_priority", "drained", "preempt", "adver_int_us",
        "preempt_delay_us", "master_adver_interval_us", "skew_us", "master_down_interval_us", "master_src",
        "master_priority", "stats", "faulty", "_deadline", "_preempt_at_us", "_last_s9_us", "_s9_min_us",
        "_addresses", "_own_addr", "_last_adv",
    )  # fmt: skip

    def __init__(self, config: InstanceParams) -> None:
        _check_config(config)
        self.config = config
        self.state: State = INIT
        self.owner = config.priority == OWNER_PRIORITY
        # Effective priority: what tracking says (tracked_priority; an owner stays 255), or 1 while drained.
        self.priority: int = config.priority
        self.tracked_priority: int = config.priority
        self.drained = False
        # keepalived clears nopreempt and preempt_delay under `state MASTER`; an owner always preempts
        # (RFC 5798 6.4.2 / S11).
        self.preempt: bool = config.preempt or config.start_master or self.owner
        # The configuration is in ms (what keepalived.conf gives); the core converts once and then works in
        # us, the unit of the engine's deadlines, so both agree to the microsecond.
        self.adver_int_us: int = config.adver_int_ms * US_PER_MS  # our own Advertisement_Interval
        delay_ms = 0 if (config.start_master or self.owner) else config.preempt_delay_ms
        self.preempt_delay_us: int = delay_ms * US_PER_MS
        self.master_adver_interval_us: int = self.adver_int_us
        self.skew_us: int = 0
        self.master_down_interval_us: int = 0
        self._recompute_timers()
        self.master_src: bytes | None = None  # the current master's primary address (ours while MASTER)
        self.master_priority: int | None = None  # the priority it advertised last
        self.stats = Stats()
        self.faulty = False
        self._deadline: int | None = None
        self._preempt_at_us: int | None = None  # preempt_delay: discard lower-priority adverts from then on
        self._last_s9_us: int | None = None
        self._s9_min_us = (config.s9_reply_min_ms or config.adver_int_ms) * US_PER_MS
        self._addresses = frozenset(config.addresses)
        self._own_addr = _addr_int(config.primary_ip)

    # --- public API ----------------------------------------------------------------------------------------

    @property
    def next_deadline_us(self) -> int | None:
        """When on_timer must be called next (Adver_Timer while MASTER, Master_Down_Timer while BACKUP)."""
        return self._deadline

    def start(self, now_us: int) -> list[Action]:
        if self.state is not INIT:
            raise LocalProtocolError(f"{self.config.name}: start() in state {self.state.name}")
        return self._dispatch(START, now_us)

    def on_timer(self, now_us: int) -> list[Action]:
        # An early or spurious wake-up (the driver's timer fired for another instance) changes nothing.
        if self._deadline is None or now_us < self._deadline:
            return []
        return self._dispatch(TIMER, now_us)

    def on_advert(self, adv: Advert, now_us: int) -> list[Action]:
        """A received advert that passed wire validation. Adverts that make no sense to us are dropped and
        counted here (remote faults never raise)."""
        st = self.stats
        cfg = self.config
        st.adverts_rx += 1
        if self.state is INIT or self.state is FAULT:
            st.ignored_not_running += 1
            return []
        if adv.vrid != cfg.vrid:  # RFC 5798 7.1: the VRID must be configured here
            st.vrid_mismatch += 1
            return []
        if adv.version != cfg.version:  # RFC 5798 7.1 / RFC 3768 7.1: version must match
            st.version_mismatch += 1
            return []
        if cfg.version == 2:
            if adv.auth_type != cfg.auth_type:  # RFC 3768 7.1: MUST discard on an auth type mismatch
                st.auth_mismatch += 1
                return []
            if adv.adver_int_ms != cfg.adver_int_ms:  # RFC 3768 7.1: MUST discard on an interval mismatch
                st.interval_mismatch += 1
                return []
        if self.owner and cfg.owner_ignore_adverts and not self.drained:  # RFC 5798 7.1: the owner discards
            st.owner_discard += 1
            return []
        same_master = cfg.skip_check_adv_addr and adv.src == self.master_src
        if self._addresses and not same_master and frozenset(adv.addresses) != self._addresses:
            # RFC 5798 7.1: MAY check, SHOULD log, continue. RFC 3768 7.1: v2 MUST discard unless the
            # sender is the owner (priority 255).
            st.address_list_mismatch += 1
            if cfg.version == 2 and adv.priority != OWNER_PRIORITY:
                return []
        if adv.priority == RESIGN_PRIORITY:
            st.priority_zero_rx += 1
        self._last_adv = adv
        return self._dispatch(ADVERT, now_us)

    def shutdown(self, now_us: int) -> list[Action]:
        if self.state is INIT:
            return []
        return self._dispatch(SHUTDOWN, now_us)

    def set_fault(self, faulty: bool, now_us: int) -> list[Action]:
        """keepalived FAULT: an interface or an unweighted tracker is down. In INIT the flag is remembered and
        start() goes to FAULT."""
        if faulty == self.faulty:
            return []
        self.faulty = faulty
        if self.state is INIT:
            return []
        if faulty:
            return self._dispatch(FAULT_ON, now_us)
        return self._dispatch(FAULT_OFF, now_us)

    def set_priority(self, effective: int, now_us: int) -> list[Action]:
        """The effective priority from tracking (the caller clamps it to 1-254). A master carries it in its
        next advert (S6); a backup uses it for its next Skew_Time and for the S4 preemption check."""
        if self.owner:
            return []  # the address owner stays at 255 (keepalived: owners track with weight 0 only)
        if not 1 <= effective <= 254:
            raise LocalProtocolError(f"{self.config.name}: effective priority {effective} outside 1-254")
        self.tracked_priority = effective
        if self.drained:
            return []  # runs at 1 until undrained; then this priority comes back
        return self._run_at(effective)

    def set_drained(self, drained: bool, now_us: int) -> list[Action]:
        """Operator drain (module docstring): run at priority 1; a master resigns with a priority-0 advert and
        waits as a backup. In INIT or FAULT the flag is remembered and applies when the instance runs."""
        if drained == self.drained:
            return []
        self.drained = drained
        self._run_at(DRAINED_PRIORITY if drained else self.tracked_priority)
        if self.state is INIT or self.state is FAULT:
            return []
        return self._dispatch(DRAIN if drained else UNDRAIN, now_us)

    def _run_at(self, priority: int) -> list[Action]:
        if priority == self.priority:
            return []
        self.stats.priority_changes += 1
        self.priority = priority
        # The running Master_Down_Timer keeps its deadline; the next reset uses the new Skew_Time.
        self._recompute_timers()
        return []

    # --- dispatch and transitions ---------------------------------------------------------------------------

    def _dispatch(self, trigger: str, now_us: int) -> list[Action]:
        handler = _DISPATCH.get((self.state, trigger))
        if handler is None:
            return []
        return handler(self, now_us)

    def _go(
        self, new: State, trigger: str, reason: str, now_us: int, pre: list[Action] | None = None
    ) -> list[Action]:
        old = self.state
        if (old, trigger, new) not in _LEGAL:
            raise LocalProtocolError(f"core bug: no transition {old.name} --{trigger}--> {new.name}")
        actions: list[Action] = pre if pre is not None else []
        if old is MASTER:
            self.stats.released_master += 1
            actions.append(RemoveAddresses())  # exit action of MASTER
        self.state = new
        actions.extend(_ENTRY[new](self, now_us))
        actions.append(StateChanged(old, new, reason))
        return actions

    def _send(self, priority: int) -> SendAdvert:
        self.stats.adverts_tx += 1
        if priority == RESIGN_PRIORITY:
            self.stats.priority_zero_tx += 1
        return SendAdvert(priority)

    def _recompute_timers(self) -> None:
        # RFC 5798 6.1 / RFC 9568: Skew_Time follows the local priority and Master_Adver_Interval.
        v = self.config.version
        self.skew_us = skew_us(v, self.priority, self.master_adver_interval_us)
        self.master_down_interval_us = master_down_interval_us(
            v, self.priority, self.master_adver_interval_us, self.config.down_timer_adverts
        )

    def _learn_interval(self, adv: Advert) -> None:
        # v3 backups adopt the master's interval (RFC 5798 6.4.2); v2 intervals match by the 7.1 check.
        mai_us = adv.adver_int_ms * US_PER_MS
        if self.config.version == 3 and mai_us != self.master_adver_interval_us:
            self.master_adver_interval_us = mai_us
            self._recompute_timers()

    # --- entry actions --------------------------------------------------------------------------------------

    def _enter_init(self, now_us: int) -> list[Action]:
        self._deadline = None
        self.master_src = self.master_priority = None
        self._preempt_at_us = None
        return []

    def _enter_backup(self, now_us: int) -> list[Action]:
        self.stats.became_backup += 1
        self._deadline = now_us + self.master_down_interval_us
        return []

    def _enter_master(self, now_us: int) -> list[Action]:
        # RFC 5798 6.4.1 / 6.4.2 (S1, S2): send an advert, announce every VIP, arm Adver_Timer.
        self.stats.became_master += 1
        self.master_adver_interval_us = self.adver_int_us
        self._recompute_timers()
        self.master_src, self.master_priority = self.config.primary_ip, self.priority
        self._preempt_at_us = None
        self._last_s9_us = None
        self._deadline = now_us + self.adver_int_us
        return [self._send(self.priority), AddAddresses(), Announce()]

    def _enter_fault(self, now_us: int) -> list[Action]:
        self.stats.became_fault += 1
        self._deadline = None
        self.master_src = self.master_priority = None
        self._preempt_at_us = None
        return []

    # --- per-state handlers --------------------------------------------------------------------------------

    def _startup(self, trigger: str, now_us: int) -> list[Action]:
        # RFC 5798 6.4.1: the owner becomes master at once; everyone else waits as a backup with
        # Master_Adver_Interval = Advertisement_Interval.
        if trigger == START and self.faulty:
            return self._go(FAULT, START, "startup with a fault set", now_us)
        if self.owner and not self.drained:
            return self._go(MASTER, trigger, "address owner (priority 255)", now_us)
        self.master_adver_interval_us = self.adver_int_us
        self._recompute_timers()
        actions = self._go(BACKUP, trigger, "startup" if trigger == START else "fault cleared", now_us)
        if self.preempt and self.preempt_delay_us:
            # keepalived preempt_delay: delays the first takeover after startup, too.
            self._preempt_at_us = now_us + self.preempt_delay_us
            assert self._deadline is not None
            self._deadline += self.preempt_delay_us
        return actions

    def _init_start(self, now_us: int) -> list[Action]:
        return self._startup(START, now_us)

    def _fault_recover(self, now_us: int) -> list[Action]:
        return self._startup(FAULT_OFF, now_us)

    def _backup_timer(self, now_us: int) -> list[Action]:
        return self._go(MASTER, TIMER, "master down timer expired", now_us)  # S2

    def _backup_advert(self, now_us: int) -> list[Action]:
        adv = self._last_adv
        if adv.priority == RESIGN_PRIORITY:
            # S3: the master resigns; take over after Skew_Time only, so the best backup wins.
            self._deadline = now_us + self.skew_us
            return []
        if self.preempt and adv.priority < self.priority:
            # S4: with preemption a lower-priority master is ignored and the Master_Down_Timer runs out.
            if self.preempt_delay_us:
                if self._preempt_at_us is None:
                    self._preempt_at_us = now_us + self.preempt_delay_us
                if now_us < self._preempt_at_us:
                    # keepalived preempt_delay: keep following the lower master until the delay is over.
                    self.stats.preempt_delayed += 1
                    return self._follow(adv, now_us)
            self.stats.preempt_discard += 1
            return []
        if adv.priority >= self.priority:
            self._preempt_at_us = None  # nothing to preempt any more; a later lower master restarts the delay
        return self._follow(adv, now_us)

    def _follow(self, adv: Advert, now_us: int) -> list[Action]:
        # S4: adopt the master's interval, recompute the timers, reset Master_Down_Timer.
        if (
            self._deadline is not None
            and self.master_src is not None
            and self.master_priority is not None
            and adv.src != self.master_src
            and adv.priority < self.master_priority
        ):
            # A second, lower master (two masters for a moment: it has not heard the better one yet) while
            # the better master's timer still runs further out. Taking its shorter interval would make us
            # time out between the better master's adverts; found by the simulated LAN as an endless
            # flap with nopreempt backups and mixed v3 intervals. Deviation from S4: such an advert may
            # only push the timer later, never earlier, and teaches no interval.
            v3 = self.config.version == 3
            mai_us = adv.adver_int_ms * US_PER_MS if v3 else self.master_adver_interval_us
            down = master_down_interval_us(
                self.config.version, self.priority, mai_us, self.config.down_timer_adverts
            )
            if now_us + down < self._deadline:
                self.stats.lower_master_held += 1
                return []
        self._learn_interval(adv)
        self.master_src, self.master_priority = adv.src, adv.priority
        self._deadline = now_us + self.master_down_interval_us
        return []

    def _backup_shutdown(self, now_us: int) -> list[Action]:
        return self._go(INIT, SHUTDOWN, "shutdown", now_us)  # S5: no advert

    def _backup_fault(self, now_us: int) -> list[Action]:
        return self._go(FAULT, FAULT_ON, "fault", now_us)

    def _master_timer(self, now_us: int) -> list[Action]:
        # S6: periodic advert with the current (effective) priority.
        self._deadline = now_us + self.adver_int_us
        return [self._send(self.priority)]

    def _master_advert(self, now_us: int) -> list[Action]:
        adv = self._last_adv
        cfg = self.config
        if adv.priority == RESIGN_PRIORITY:
            # S7: a peer master resigned; assert ourselves at once and re-arm Adver_Timer.
            self._deadline = now_us + self.adver_int_us
            return [self._send(self.priority)]
        higher = adv.priority > self.priority
        if higher or (adv.priority == self.priority and _addr_int(adv.src) > self._own_addr):
            # S8: yield to a higher priority, or to an equal one from a higher primary address.
            pre: list[Action] = []
            if higher and cfg.higher_prio_send_advert:
                pre.append(self._send(self.priority))  # keepalived higher_prio_send_advert
            self._learn_interval(adv)
            actions = self._go(BACKUP, ADVERT, "higher priority master", now_us, pre)
            self.master_src, self.master_priority = adv.src, adv.priority
            return actions
        # S9: lower priority (or equal from a lower address): discard. RFC 9568 adds an immediate advert so
        # bridges relearn; rate-limited so a hostile segment cannot make us amplify
        # (docs/rfc-checklist.md#hostile-segment).
        self.stats.lower_prio_rx += 1
        if self._last_s9_us is not None and now_us - self._last_s9_us < self._s9_min_us:
            if not cfg.lower_prio_no_advert:
                self.stats.s9_suppressed += 1
            return []
        self._last_s9_us = now_us
        out: list[Action] = []
        if not cfg.lower_prio_no_advert:
            self.stats.s9_replies += 1
            out.append(self._send(self.priority))
        if cfg.notify_lower_prio:  # keepalived notify_master_rx_lower_pri, on the same rate limit
            out.append(HeardLowerPriority(adv.priority))
        return out

    def _master_shutdown(self, now_us: int) -> list[Action]:
        # S10: cancel Adver_Timer, send priority 0 so the best backup takes over after Skew_Time.
        return self._go(INIT, SHUTDOWN, "shutdown", now_us, [self._send(RESIGN_PRIORITY)])

    def _master_fault(self, now_us: int) -> list[Action]:
        # keepalived: a master entering FAULT resigns with priority 0, as on shutdown.
        return self._go(FAULT, FAULT_ON, "fault", now_us, [self._send(RESIGN_PRIORITY)])

    def _fault_shutdown(self, now_us: int) -> list[Action]:
        return self._go(INIT, SHUTDOWN, "shutdown", now_us)

    def _master_drain(self, now_us: int) -> list[Action]:
        # S10 resignation (priority 0: the best backup takes over after Skew_Time), then the backup branch of
        # 6.4.1 at priority 1: Master_Adver_Interval = Advertisement_Interval, a fresh Master_Down_Timer.
        self.master_adver_interval_us = self.adver_int_us
        self._recompute_timers()
        actions = self._go(BACKUP, DRAIN, "drained", now_us, [self._send(RESIGN_PRIORITY)])
        self.master_src = self.master_priority = None
        return actions

    def _stay(self, now_us: int) -> list[Action]:
        # Drain of a backup, undrain of either: the new priority is already in place (set_drained).
        return []

    _last_adv: Advert


_Handler = Callable[[VrrpInstance, int], list[Action]]

_DISPATCH: dict[tuple[State, str], _Handler] = {
    (INIT, START): VrrpInstance._init_start,
    (BACKUP, TIMER): VrrpInstance._backup_timer,
    (BACKUP, ADVERT): VrrpInstance._backup_advert,
    (BACKUP, SHUTDOWN): VrrpInstance._backup_shutdown,
    (BACKUP, FAULT_ON): VrrpInstance._backup_fault,
    (BACKUP, DRAIN): VrrpInstance._stay,
    (BACKUP, UNDRAIN): VrrpInstance._stay,
    (MASTER, TIMER): VrrpInstance._master_timer,
    (MASTER, ADVERT): VrrpInstance._master_advert,
    (MASTER, SHUTDOWN): VrrpInstance._master_shutdown,
    (MASTER, FAULT_ON): VrrpInstance._master_fault,
    (MASTER, DRAIN): VrrpInstance._master_drain,
    (MASTER, UNDRAIN): VrrpInstance._stay,
    (FAULT, FAULT_OFF): VrrpInstance._fault_recover,
    (FAULT, SHUTDOWN): VrrpInstance._fault_shutdown,
}

_ENTRY: dict[State, _Handler] = {
    INIT: VrrpInstance._enter_init,
    BACKUP: VrrpInstance._enter_backup,
    MASTER: VrrpInstance._enter_master,
    FAULT: VrrpInstance._enter_fault,
}


def _check_config(c: InstanceParams) -> None:
    """Local errors only: the configuration reader should have caught these with file:line already."""

    def bad(why: str) -> LocalProtocolError:
        return LocalProtocolError(f"{c.name}: {why}")

    if not 1 <= c.vrid <= 255:
        raise bad(f"VRID {c.vrid} outside 1-255")  # RFC 5798 5.2.3
    if not 1 <= c.priority <= 255:
        raise bad(f"priority {c.priority} outside 1-255")  # RFC 5798 5.2.4
    if c.version not in (2, 3) or c.family not in (4, 6):
        raise bad(f"version {c.version} family {c.family}")
    if c.version == 2 and c.family == 6:
        raise bad("VRRPv2 is IPv4 only")  # RFC 3768
    if c.version == 3 and not (10 <= c.adver_int_ms <= 40950 and c.adver_int_ms % 10 == 0):
        raise bad(f"v3 advert interval {c.adver_int_ms} ms is not 1-4095 centiseconds")  # RFC 5798 5.2.7
    if c.version == 2 and not (1000 <= c.adver_int_ms <= 255000 and c.adver_int_ms % 1000 == 0):
        raise bad(f"v2 advert interval {c.adver_int_ms} ms is not 1-255 seconds")  # RFC 3768 5.3.7
    if len(c.primary_ip) != (4 if c.family == 4 else 16):
        raise bad("primary_ip length does not match the family")
    if c.preempt_delay_ms < 0 or c.s9_reply_min_ms < 0:
        raise bad("negative delay")
