"""Operator drain and priority offsets in the core (fastvrrp ctl), one rule per test, on a virtual clock.

A drained master resigns as on shutdown (RFC 5798 6.4.3 S10: a priority-0 advert, the addresses go) and waits
as a backup at priority 1 (the RFC 5798 6.4.1 backup branch); a drained backup runs at priority 1 and still
takes over when its Master_Down_Timer runs out. Times in integer us; VRRPv3 at 1 s: priority 1 gives
Skew_Time 255/256 s = 996093.75 -> 996093 us and Master_Down_Interval 3996093 us.
"""

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
    VrrpInstance,
)
from fastvrrp.core.priority import Effective, with_offset

INIT, BACKUP, MASTER, FAULT = State.INIT, State.BACKUP, State.MASTER, State.FAULT
MS, SEC = 1000, 1_000_000
ME = ipaddress.ip_address("192.0.2.10").packed
PEER = ipaddress.ip_address("192.0.2.20").packed
VIP = ipaddress.ip_address("192.0.2.100").packed
DOWN_1 = 3_996_093
DOWN_100 = 3_609_375


def cfg(**kw) -> InstanceParams:
    base = dict(name="vi", vrid=51, primary_ip=ME, addresses=(VIP,))
    base.update(kw)
    return InstanceParams(**base)


def adv(priority: int) -> Advert:
    return Advert(src=PEER, vrid=51, priority=priority, adver_int_ms=1000, version=3, addresses=(VIP,))


def master(now: int = 0, **kw) -> VrrpInstance:
    kw.setdefault("priority", 200)
    inst = VrrpInstance(cfg(**kw))
    inst.start(now - 10 * SEC)
    inst.on_timer(inst.next_deadline_us)
    assert inst.state is MASTER
    inst._deadline = now + inst.adver_int_us
    return inst


def drained_backup(now: int = 0, **kw) -> VrrpInstance:
    inst = VrrpInstance(cfg(**kw))
    inst.set_drained(True, now)
    inst.start(now)
    assert inst.state is BACKUP and inst.priority == 1
    return inst


def test_drained_master_resigns_with_priority_zero_and_waits_as_backup_at_1():
    """RFC 5798 6.4.3 (S10) then the 6.4.1 backup branch: priority 0 out, addresses removed, BACKUP at 1."""
    inst = master(now=0)
    acts = inst.set_drained(True, 500 * MS)
    assert acts == [SendAdvert(0), RemoveAddresses(), StateChanged(MASTER, BACKUP, "drained")]
    assert inst.state is BACKUP and inst.priority == 1 and inst.drained
    assert inst.next_deadline_us == 500 * MS + DOWN_1
    assert inst.master_src is None
    assert inst.stats.priority_zero_tx == 1


def test_drained_backup_takes_over_as_last_resort_at_priority_1():
    """Nobody advertises: the Master_Down_Timer at priority 1 runs out and it becomes MASTER at 1 (S2)."""
    inst = drained_backup(now=0)
    assert inst.on_timer(DOWN_1 - 1) == []
    acts = inst.on_timer(DOWN_1)
    assert acts == [
        SendAdvert(1),
        AddAddresses(),
        Announce(),
        StateChanged(BACKUP, MASTER, "master down timer expired"),
    ]


def test_drained_backup_follows_any_master_with_the_priority_1_timer():
    """RFC 5798 6.4.2 (S4): every priority is >= 1, so a drained backup follows whoever advertises."""
    inst = drained_backup(now=0)
    assert inst.on_advert(adv(50), 1 * SEC) == []
    assert inst.next_deadline_us == 1 * SEC + DOWN_1 and inst.master_src == PEER


def test_drained_backup_hearing_priority_zero_waits_its_own_skew_time():
    """RFC 5798 6.4.2 (S3) at priority 1: the longest Skew_Time, so any other backup takes over first."""
    inst = drained_backup(now=0)
    inst.on_advert(adv(100), 1 * SEC)
    inst.on_advert(adv(0), 2 * SEC)
    assert inst.next_deadline_us == 2 * SEC + 996_093


def test_draining_a_backup_keeps_the_running_timer():
    """A backup only changes its priority; the next reset of the timer uses priority 1's Skew_Time."""
    inst = VrrpInstance(cfg())
    inst.start(0)
    assert inst.set_drained(True, 1 * SEC) == []
    assert inst.state is BACKUP and inst.priority == 1
    assert inst.next_deadline_us == DOWN_100


def test_tracking_while_drained_is_kept_for_undrain():
    """set_priority while drained records the tracked priority; undrain brings it back."""
    inst = drained_backup(now=0)
    assert inst.set_priority(150, 1 * SEC) == []
    assert inst.priority == 1 and inst.tracked_priority == 150
    assert inst.set_drained(False, 2 * SEC) == []
    assert inst.priority == 150 and not inst.drained


def test_undrained_backup_preempts_a_lower_master_when_its_timer_runs_out():
    """RFC 5798 6.4.2 (S4) with preemption: lower-priority adverts are discarded after undrain."""
    inst = drained_backup(now=0, priority=200)
    inst.on_advert(adv(100), 1 * SEC)
    inst.set_drained(False, 1_500 * MS)
    assert inst.on_advert(adv(100), 2 * SEC) == []
    assert inst.stats.preempt_discard == 1
    assert inst.next_deadline_us == 1 * SEC + DOWN_1  # not pushed by the discarded advert
    assert inst.on_timer(1 * SEC + DOWN_1)[0] == SendAdvert(200)
    assert inst.state is MASTER


def test_undraining_a_last_resort_master_advertises_the_tracked_priority_next():
    """RFC 5798 6.4.3 (S6): the next periodic advert carries the priority that came back."""
    inst = drained_backup(now=0, priority=200)
    inst.on_timer(DOWN_1)
    assert inst.set_drained(False, DOWN_1 + 100 * MS) == []
    assert inst.state is MASTER
    assert inst.on_timer(DOWN_1 + 1 * SEC) == [SendAdvert(200)]


def test_drain_is_idempotent():
    inst = master(now=0)
    inst.set_drained(True, 0)
    assert inst.set_drained(True, 1 * SEC) == []
    assert inst.stats.priority_zero_tx == 1


def test_drained_owner_starts_as_backup_at_priority_1():
    """An address owner is drained like any instance: not MASTER at once (6.4.1 S1) while drained."""
    inst = VrrpInstance(cfg(priority=255))
    assert inst.set_drained(True, 0) == []
    assert inst.start(0) == [StateChanged(INIT, BACKUP, "startup")]
    assert inst.priority == 1 and inst.next_deadline_us == DOWN_1


def test_drained_owner_processes_adverts_even_with_owner_ignore_adverts():
    """RFC 5798 7.1's owner discard applies to the owner; a drained owner must follow the new master."""
    inst = drained_backup(now=0, priority=255, owner_ignore_adverts=True)
    inst.on_advert(adv(100), 1 * SEC)
    assert inst.stats.owner_discard == 0 and inst.master_src == PEER


def test_drained_owner_leaving_fault_waits_as_a_backup():
    """Leaving FAULT is a fresh startup (6.4.1); a drained owner takes the backup branch."""
    inst = VrrpInstance(cfg(priority=255))
    inst.start(0)
    inst.set_fault(True, 1 * SEC)
    assert inst.set_drained(True, 2 * SEC) == []
    acts = inst.set_fault(False, 3 * SEC)
    assert acts == [StateChanged(FAULT, BACKUP, "fault cleared")] and inst.priority == 1


def test_undrained_owner_runs_at_255_again():
    inst = drained_backup(now=0, priority=255)
    inst.set_drained(False, 1 * SEC)
    assert inst.priority == 255
    assert inst.on_timer(DOWN_1)[0] == SendAdvert(255)


# --- the operator's offset (fastvrrp.core.priority.with_offset) ---------------------------------------------


def eff(priority: int, total: int | None = None, fault: bool = False) -> Effective:
    return Effective(priority, fault, False, priority if total is None else total)


def test_offset_moves_the_tracked_priority():
    assert with_offset(eff(100), 20, owner=False).priority == 120
    assert with_offset(eff(100), -30, owner=False).priority == 70


@pytest.mark.parametrize(("tracked", "offset", "want"), [(200, 100, 254), (20, -50, 1), (254, 0, 254)])
def test_offset_is_clamped_to_1_254_like_the_trackers(tracked, offset, want):
    assert with_offset(eff(tracked), offset, owner=False).priority == want


def test_offset_leaves_an_owner_at_255():
    assert with_offset(eff(255), -100, owner=True).priority == 255


def test_offset_adds_to_the_clamped_tracked_priority_and_keeps_fault():
    """Trackers summing to 300 clamp to 254; -10 gives 244 (what the wire showed, moved by the offset)."""
    got = with_offset(eff(254, total=300, fault=True), -10, owner=False)
    assert got.priority == 244 and got.fault and got.total == 300
