"""keepalived sync groups, sans I/O: instances that change state together (keepalived vrrp_sync_group).

keepalived's rule, per group: when one member goes to MASTER the others go MASTER, when one goes from MASTER
to BACKUP the others go BACKUP, when one goes to FAULT they all go FAULT (and come back only when no member
has a fault of its own). The RFCs know nothing of this; how it maps onto the per-instance core:

- FAULT is already a core input (`set_fault`). The group keeps each member's *own* fault apart from the one it
  imposes, so a member leaves FAULT only when no member of the group has a fault of its own.
- "Go MASTER with the others" is the S2 transition (RFC 5798 6.4.2) taken before the member's own
  Master_Down_Timer ran out: send an advert, install the addresses, announce them, arm the Adver_Timer.
- "Go BACKUP with the others" is a MASTER that stops being one although no higher priority was heard on its
  own VRID. It resigns with a priority-0 advert first (RFC 5798 6.4.3 S10 semantics), so the peer's backup of
  that VRID takes over after Skew_Time instead of a whole Master_Down_Interval without a master.
- An address owner (priority 255) is never pushed to BACKUP: RFC 5798 6.4.1 makes it MASTER whenever it runs,
  and it would come straight back and drag the group with it.
- A member that starts while another member is MASTER joins it at once.
- Transitions the group caused come back as reports; they are no-ops (a member entering MASTER asks only the
  members in BACKUP to follow, and so on), so the exchange always settles.

`SyncGroup` decides (`on_state`, `on_fault` return `Directive`s); `SyncMember` is a `VrrpInstance` that can
carry the two forced transitions out. The driver feeds the reports and applies the directives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .instance import ADVERT, TIMER, VrrpInstance
from .types import Action, State

INIT, BACKUP, MASTER, FAULT = State.INIT, State.BACKUP, State.MASTER, State.FAULT

# What a member must do.
TO_MASTER = "master"
TO_BACKUP = "backup"
FAULT_ON = "fault"
FAULT_OFF = "recover"


@dataclass(frozen=True, slots=True)
class Directive:
    member: str
    what: str  # TO_MASTER | TO_BACKUP | FAULT_ON | FAULT_OFF
    reason: str


class SyncGroup:
    """The state of one group's members as last reported, and what follows from each report."""

    def __init__(self, name: str, members: Iterable[str], owners: Iterable[str] = ()) -> None:
        self.name = name
        self.members: tuple[str, ...] = tuple(members)
        if len(set(self.members)) != len(self.members) or not self.members:
            raise ValueError(f"sync group {name}: members must be distinct and not empty")
        self.owners = frozenset(owners)
        self.state: dict[str, State] = dict.fromkeys(self.members, INIT)
        self.own_fault: dict[str, bool] = dict.fromkeys(self.members, False)
        # Plain counters (metrics).
        self.forced_master = 0
        self.forced_backup = 0
        self.forced_fault = 0

    @property
    def faulty(self) -> bool:
        """The group is in fault while any member has a fault of its own."""
        return any(self.own_fault.values())

    def wanted_fault(self, member: str) -> bool:
        """What `set_fault` must say for this member: its own fault, or the group's."""
        self._check(member)
        return self.faulty

    def on_fault(self, member: str, faulty: bool) -> list[Directive]:
        """A member's own fault (interface down, unweighted tracker failed) changed; the caller passes the
        member's own flag here *instead of* calling set_fault, and applies the directives (the member itself
        included)."""
        self._check(member)
        was = self.faulty
        self.own_fault[member] = faulty
        now = self.faulty
        if was == now:
            return []
        if now:
            self.forced_fault += len(self.members) - 1
            why = f"sync group {self.name}: {member} has a fault"
            return [Directive(m, FAULT_ON, why) for m in self.members]
        why = f"sync group {self.name}: no member has a fault any more"
        return [Directive(m, FAULT_OFF, why) for m in self.members]

    def on_state(self, member: str, old: State, new: State) -> list[Directive]:
        """A member changed state (whatever the cause, forced ones included)."""
        self._check(member)
        self.state[member] = new
        if self.faulty:
            return []  # members come out of FAULT together when the last own fault clears
        out: list[Directive] = []
        if new is MASTER:
            why = f"sync group {self.name}: {member} became MASTER"
            for m in self.members:
                if m != member and self.state[m] is BACKUP:
                    self.forced_master += 1
                    self.state[m] = MASTER  # as good as done: a nested report must not ask again
                    out.append(Directive(m, TO_MASTER, why))
        elif new is BACKUP and old is not MASTER:
            # A member starting (or restarting) while the group is MASTER joins it.
            lead = next((m for m in self.members if m != member and self.state[m] is MASTER), None)
            if lead is not None:
                self.forced_master += 1
                self.state[member] = MASTER
                out.append(Directive(member, TO_MASTER, f"sync group {self.name}: {lead} is MASTER"))
        elif new is BACKUP and old is MASTER:
            why = f"sync group {self.name}: {member} left MASTER"
            for m in self.members:
                if m != member and self.state[m] is MASTER and m not in self.owners:
                    self.forced_backup += 1
                    self.state[m] = BACKUP
                    out.append(Directive(m, TO_BACKUP, why))
        return out

    def _check(self, member: str) -> None:
        if member not in self.state:
            raise KeyError(f"{member} is not a member of sync group {self.name}")


class SyncMember(VrrpInstance):
    """A VrrpInstance that its sync group can move: the two transitions the group forces (see the module
    docstring); each returns the actions to apply, like every core input, and [] when it does not apply."""

    def sync_master(self, reason: str, now_us: int) -> list[Action]:
        # RFC 5798 6.4.2 S2, taken early because the group goes MASTER: same entry actions, same table row.
        if self.state is not BACKUP:
            return []
        return self._go(MASTER, TIMER, reason, now_us)

    def sync_backup(self, reason: str, now_us: int) -> list[Action]:
        # Leave MASTER with a priority-0 advert (RFC 5798 6.4.3 S10) so the peer takes over after Skew_Time;
        # then wait as a backup with a fresh Master_Down_Timer (RFC 5798 6.4.1, the backup branch).
        if self.state is not MASTER or self.owner:
            return []
        pre: list[Action] = [self._send(0)]
        actions = self._go(BACKUP, ADVERT, reason, now_us, pre)
        self.master_src = self.master_priority = None
        return actions
