"""Sync groups (keepalived vrrp_sync_group): the pure decisions of SyncGroup and the two forced transitions
of SyncMember, on a virtual clock (us). A small group driver below applies directives the way the daemon's
driver does, so the whole exchange (report -> directive -> transition -> report) is exercised."""

from __future__ import annotations

import ipaddress

import pytest

from fastvrrp.core import (
    AddAddresses,
    Advert,
    Announce,
    InstanceParams,
    RemoveAddresses,
    SendAdvert,
    State,
    StateChanged,
)
from fastvrrp.core.syncgroup import (
    FAULT_OFF,
    FAULT_ON,
    TO_BACKUP,
    TO_MASTER,
    Directive,
    SyncGroup,
    SyncMember,
)

INIT, BACKUP, MASTER, FAULT = State.INIT, State.BACKUP, State.MASTER, State.FAULT
SEC = 1_000_000
ME = ipaddress.ip_address("192.0.2.10").packed
PEER = ipaddress.ip_address("192.0.2.20").packed
DOWN_100 = 3_609_375  # RFC 5798 6.1, priority 100 at 1 s


def member(name: str, vrid: int, priority: int = 100) -> SyncMember:
    vip = ipaddress.ip_address(f"198.51.100.{vrid}").packed
    return SyncMember(
        InstanceParams(name=name, vrid=vrid, priority=priority, primary_ip=ME, addresses=(vip,))
    )


class Group:
    """Applies directives to SyncMembers and feeds their transitions back, as the driver does."""

    def __init__(self, *members: SyncMember) -> None:
        self.m = {x.config.name: x for x in members}
        owners = [x.config.name for x in members if x.owner]
        self.g = SyncGroup("G", self.m, owners)
        self.log: list[tuple[str, State, State, str]] = []
        self.actions: dict[str, list] = {n: [] for n in self.m}

    def feed(self, name: str, actions: list, now: int) -> None:
        self.actions[name].extend(actions)
        for a in actions:
            if isinstance(a, StateChanged):
                self.log.append((name, a.old, a.new, a.reason))
                for d in self.g.on_state(name, a.old, a.new):
                    self.apply(d, now)

    def apply(self, d: Directive, now: int) -> None:
        x = self.m[d.member]
        if d.what == TO_MASTER:
            acts = x.sync_master(d.reason, now)
        elif d.what == TO_BACKUP:
            acts = x.sync_backup(d.reason, now)
        else:
            acts = x.set_fault(d.what == FAULT_ON, now)
        self.feed(d.member, acts, now)

    def start(self, now: int = 0) -> None:
        for n, x in self.m.items():
            self.feed(n, x.start(now), now)

    def fault(self, name: str, faulty: bool, now: int) -> None:
        for d in self.g.on_fault(name, faulty):
            self.apply(d, now)

    def states(self) -> dict[str, State]:
        return {n: x.state for n, x in self.m.items()}


def adv(vrid: int, priority: int, src: bytes = PEER) -> Advert:
    vip = ipaddress.ip_address(f"198.51.100.{vrid}").packed
    return Advert(src=src, vrid=vrid, priority=priority, adver_int_ms=1000, version=3, addresses=(vip,))


def test_one_member_timing_out_takes_the_others_to_master_at_once():
    g = Group(member("a", 1), member("b", 2))
    g.start(0)
    # b still follows a live master; a's Master_Down_Timer runs out first (S2).
    g.feed("b", g.m["b"].on_advert(adv(2, 50), 1 * SEC), 1 * SEC)
    t = g.m["a"].next_deadline_us
    assert t == DOWN_100
    g.feed("a", g.m["a"].on_timer(t), t)
    assert g.states() == {"a": MASTER, "b": MASTER}
    # b took S2's entry actions at the same instant: advert, addresses, announcement, Adver_Timer armed.
    acts = g.actions["b"][1:]  # after the startup's INIT -> BACKUP
    assert [type(a) for a in acts] == [SendAdvert, AddAddresses, Announce, StateChanged]
    assert g.m["b"].next_deadline_us == t + SEC
    assert g.log[-1] == ("b", BACKUP, MASTER, "sync group G: a became MASTER")
    assert g.g.forced_master == 1


def test_one_master_yielding_takes_the_others_to_backup_with_priority_zero():
    g = Group(member("a", 1), member("b", 2))
    g.start(0)
    t = DOWN_100
    for n in ("a", "b"):
        g.feed(n, g.m[n].on_timer(t), t)
    assert g.states() == {"a": MASTER, "b": MASTER}
    g.actions = {n: [] for n in g.m}
    # A higher priority on a's VRID: a goes BACKUP (S8), b follows, resigning with priority 0 (S10).
    now = t + 100_000
    g.feed("a", g.m["a"].on_advert(adv(1, 200), now), now)
    assert g.states() == {"a": BACKUP, "b": BACKUP}
    b = g.actions["b"]
    assert b[0] == SendAdvert(0) and isinstance(b[1], RemoveAddresses)
    assert b[-1] == StateChanged(MASTER, BACKUP, "sync group G: a left MASTER")
    assert g.m["b"].next_deadline_us == now + DOWN_100  # a fresh Master_Down_Timer
    assert g.m["b"].master_src is None
    assert g.m["b"].stats.priority_zero_tx == 1


def test_startup_backups_do_not_push_anyone():
    g = Group(member("a", 1), member("b", 2))
    g.start(0)
    assert g.states() == {"a": BACKUP, "b": BACKUP}
    assert g.g.forced_backup == g.g.forced_master == 0


def test_fault_of_one_member_faults_all_until_the_last_own_fault_clears():
    g = Group(member("a", 1), member("b", 2), member("c", 3))
    g.start(0)
    t = DOWN_100
    g.feed("a", g.m["a"].on_timer(t), t)
    assert set(g.states().values()) == {MASTER}
    g.fault("b", True, t + 1)
    assert set(g.states().values()) == {FAULT}
    g.fault("c", True, t + 2)
    g.fault("b", False, t + 3)
    assert set(g.states().values()) == {FAULT}  # c still has its own fault
    g.fault("c", False, t + 4)
    assert set(g.states().values()) == {BACKUP}  # leaving FAULT is a fresh start (RFC 5798 6.4.1)
    # Masters resigned with priority 0 on the way into FAULT.
    assert g.m["a"].stats.priority_zero_tx == 1


def test_fault_directives_cover_every_member():
    sg = SyncGroup("G", ["a", "b"])
    assert sg.on_fault("a", True) == [
        Directive("a", FAULT_ON, "sync group G: a has a fault"),
        Directive("b", FAULT_ON, "sync group G: a has a fault"),
    ]
    assert sg.wanted_fault("b") is True
    assert sg.on_fault("a", True) == []
    assert [d.what for d in sg.on_fault("a", False)] == [FAULT_OFF, FAULT_OFF]


def test_no_forcing_while_the_group_is_in_fault():
    sg = SyncGroup("G", ["a", "b"])
    sg.on_state("a", INIT, BACKUP)
    sg.on_state("b", INIT, BACKUP)
    sg.on_fault("b", True)
    assert sg.on_state("a", BACKUP, MASTER) == []


def test_owner_is_never_pushed_to_backup():
    g = Group(member("own", 1, priority=255), member("b", 2))
    g.start(0)
    # The owner is MASTER at once (RFC 5798 6.4.1) and takes b with it.
    assert g.states() == {"own": MASTER, "b": MASTER}
    now = SEC
    g.feed("b", g.m["b"].on_advert(adv(2, 200), now), now)
    assert g.states() == {"own": MASTER, "b": BACKUP}
    assert g.m["own"].sync_backup("x", now) == []


def test_a_member_starting_while_the_group_is_master_joins_it():
    g = Group(member("a", 1), member("b", 2))
    g.feed("a", g.m["a"].start(0), 0)
    g.feed("a", g.m["a"].on_timer(DOWN_100), DOWN_100)
    assert g.states() == {"a": MASTER, "b": INIT}
    g.feed("b", g.m["b"].start(DOWN_100 + 5), DOWN_100 + 5)
    assert g.states() == {"a": MASTER, "b": MASTER}
    assert g.log[-1] == ("b", BACKUP, MASTER, "sync group G: a is MASTER")


def test_forced_transitions_only_apply_in_their_state():
    x = member("a", 1)
    assert x.sync_master("x", 0) == []  # INIT
    x.start(0)
    assert x.sync_backup("x", 0) == []  # BACKUP


def test_the_exchange_settles_with_many_members():
    g = Group(*(member(f"m{i}", i) for i in range(1, 9)))
    g.start(0)
    t = DOWN_100
    g.feed("m5", g.m["m5"].on_timer(t), t)
    assert set(g.states().values()) == {MASTER}
    assert g.g.forced_master == 7
    g.feed("m1", g.m["m1"].on_advert(adv(1, 250), t + 1), t + 1)
    assert set(g.states().values()) == {BACKUP}
    assert g.g.forced_backup == 7


def test_unknown_member_and_bad_groups_are_refused():
    sg = SyncGroup("G", ["a"])
    with pytest.raises(KeyError):
        sg.on_state("z", INIT, BACKUP)
    with pytest.raises(ValueError):
        SyncGroup("G", ["a", "a"])
    with pytest.raises(ValueError):
        SyncGroup("G", [])
