"""The state machine of VrrpInstance, one rule per test, on a virtual clock with exact timer assertions.

Every time is in integer microseconds (`now_us`); configured and advertised intervals stay in ms. Defaults
used below: VRRPv3, Advertisement_Interval 1 s, local priority 100 (Skew_Time 609375 us, Master_Down_Interval
3609375 us), priority 150 (414062 / 3414062 us: 106/256 s is 414062.5 us, rounded down), priority 200
(218750 / 3218750 us).
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest

from fastvrrp.core import (
    TRANSITIONS,
    AddAddresses,
    Advert,
    Announce,
    InstanceParams,
    LocalProtocolError,
    RemoveAddresses,
    SendAdvert,
    State,
    StateChanged,
    VrrpInstance,
)
from fastvrrp.core.instance import _DISPATCH


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


ME = ip("192.0.2.10")
PEER = ip("192.0.2.20")
VIP = ip("192.0.2.100")
INIT, BACKUP, MASTER, FAULT = State.INIT, State.BACKUP, State.MASTER, State.FAULT

MS = 1000  # us
SEC = 1_000_000  # us
# RFC 5798 6.1 gold values (docs/rfc-checklist.md#timer-gold-values), exact in us
DOWN_100, SKEW_100 = 3_609_375, 609_375
DOWN_150, SKEW_150 = 3_414_062, 414_062
DOWN_200, SKEW_200 = 3_218_750, 218_750


def cfg(**kw) -> InstanceParams:
    base = dict(name="vi", vrid=51, primary_ip=ME, addresses=(VIP,))
    base.update(kw)
    return InstanceParams(**base)


def adv(priority: int, src: bytes = PEER, interval: int = 1000, **kw) -> Advert:
    base = dict(src=src, vrid=51, priority=priority, adver_int_ms=interval, version=3, addresses=(VIP,))
    base.update(kw)
    return Advert(**base)


def backup(now: int = 0, **kw) -> VrrpInstance:
    inst = VrrpInstance(cfg(**kw))
    inst.start(now)
    assert inst.state is BACKUP
    return inst


def master(now: int = 0, **kw) -> VrrpInstance:
    """An instance that became master by its Master_Down_Timer; returns with the clock at `now`."""
    kw.setdefault("priority", 200)
    inst = VrrpInstance(cfg(**kw))
    inst.start(now - 10 * SEC)
    inst.on_timer(inst.next_deadline_us)
    assert inst.state is MASTER
    inst._deadline = now + inst.adver_int_us  # align the Adver_Timer to the test's clock
    return inst


def becomes_master_actions(prio: int, old: State, reason: str) -> list:
    return [SendAdvert(prio), AddAddresses(), Announce(), StateChanged(old, MASTER, reason)]


# --- RFC 5798 6.4.1 Init ------------------------------------------------------------------------------------


def test_s1_owner_becomes_master_at_startup():
    """RFC 5798 6.4.1 (S1): priority 255 sends an advert, announces, arms Adver_Timer and becomes Master."""
    inst = VrrpInstance(cfg(priority=255))
    acts = inst.start(1 * SEC)
    assert acts == becomes_master_actions(255, INIT, "address owner (priority 255)")
    assert inst.state is MASTER
    assert inst.next_deadline_us == 2 * SEC
    assert inst.master_src == ME


def test_s1_non_owner_starts_backup_with_master_down_timer():
    """RFC 5798 6.4.1 (S1): Master_Adver_Interval = Advertisement_Interval, Master_Down_Timer armed."""
    inst = VrrpInstance(cfg(adver_int_ms=500))
    assert inst.start(1 * SEC) == [StateChanged(INIT, BACKUP, "startup")]
    assert inst.master_adver_interval_us == 500_000
    assert inst.skew_us == 304_687  # 156 * 500000 / 256 = 304687.5
    assert inst.next_deadline_us == 1 * SEC + 1_500_000 + 304_687


# --- RFC 5798 6.4.2 Backup ----------------------------------------------------------------------------------


def test_s2_master_down_timer_fires_exactly_then_master():
    """RFC 5798 6.4.2 (S2): not a microsecond early; then send advert, announce, arm Adver_Timer."""
    inst = backup(now=0)
    assert inst.on_timer(DOWN_100 - 1) == []
    assert inst.state is BACKUP
    acts = inst.on_timer(DOWN_100)
    assert acts == becomes_master_actions(100, BACKUP, "master down timer expired")
    assert inst.next_deadline_us == DOWN_100 + 1 * SEC


def test_s3_priority_zero_sets_master_down_timer_to_skew():
    """RFC 5798 6.4.2 (S3): a resigning master makes the backup take over after Skew_Time."""
    inst = backup(now=0)
    inst.on_advert(adv(200), 500 * MS)
    assert inst.on_advert(adv(0), 1 * SEC) == []
    assert inst.next_deadline_us == 1 * SEC + SKEW_100
    assert inst.stats.priority_zero_rx == 1
    assert inst.on_timer(1 * SEC + SKEW_100 - 1) == []
    assert inst.on_timer(1 * SEC + SKEW_100)[-1] == StateChanged(BACKUP, MASTER, "master down timer expired")


def test_s4_backup_adopts_master_interval_and_resets_timer():
    """RFC 5798 6.4.2 (S4): adopt the advert's Max Adver Int, recompute the timers, reset
    Master_Down_Timer."""
    inst = backup(now=0)
    assert inst.on_advert(adv(200, interval=500), 700 * MS) == []
    assert inst.master_adver_interval_us == 500_000
    assert (inst.skew_us, inst.master_down_interval_us) == (304_687, 1_804_687)
    assert inst.next_deadline_us == 700 * MS + 1_804_687
    assert inst.master_src == PEER


def test_s4_rfc9568_skew_recomputed_when_interval_changes():
    """RFC 9568 6.4.2 (K1): Skew_Time is recomputed each time the learned interval changes."""
    inst = backup(now=0)
    inst.on_advert(adv(200, interval=500), 100 * MS)
    assert inst.skew_us == 304_687
    inst.on_advert(adv(200, interval=2000), 200 * MS)
    assert (inst.skew_us, inst.master_down_interval_us) == (1_218_750, 7_218_750)
    assert inst.next_deadline_us == 200 * MS + 7_218_750


def test_s4_second_lower_master_cannot_shorten_the_timer():
    """RFC 5798 6.4.2 (S4), documented deviation: while a better master's timer runs, an advert from a
    second, lower master (a transient dual master) teaches no interval and never pulls the timer earlier;
    the simulated LAN found the RFC-literal rule flapping forever (nopreempt backups, mixed v3 intervals)."""
    inst = backup(now=0, priority=100, preempt=False)
    inst.on_advert(adv(255), 1 * SEC)
    assert inst.next_deadline_us == 1 * SEC + DOWN_100
    other = ip("192.0.2.30")
    assert inst.on_advert(adv(150, src=other, interval=100), 1500 * MS) == []
    assert inst.master_adver_interval_us == 1 * SEC and inst.next_deadline_us == 1 * SEC + DOWN_100
    assert inst.stats.lower_master_held == 1 and inst.master_src == PEER
    # once the better master is silent long enough, the lower one is followed normally
    inst.on_advert(adv(150, src=other, interval=100), 4500 * MS)
    assert inst.master_src == other and inst.next_deadline_us == 4500 * MS + 360_937  # 300 ms + 60937.5 us


def test_s4_preempt_discards_lower_priority_and_timer_runs_out():
    """RFC 5798 6.4.2 (S4): with Preempt_Mode, a lower-priority advert is discarded; the backup takes over
    Master_Down_Interval after the last accepted advert."""
    inst = backup(now=0, priority=150)
    inst.on_advert(adv(200), 1 * SEC)
    assert inst.next_deadline_us == 1 * SEC + DOWN_150
    for t in (2 * SEC, 3 * SEC, 4 * SEC):
        assert inst.on_advert(adv(100), t) == []
    assert inst.next_deadline_us == 1 * SEC + DOWN_150
    assert inst.stats.preempt_discard == 3
    assert inst.on_timer(1 * SEC + DOWN_150)[-1].new is MASTER


def test_s4_equal_priority_is_accepted_even_with_preempt():
    """RFC 5798 6.4.2 (S4): "greater than or equal to the local Priority" resets the timer."""
    inst = backup(now=0)
    inst.on_advert(adv(100), 2 * SEC)
    assert inst.next_deadline_us == 2 * SEC + DOWN_100
    assert inst.stats.preempt_discard == 0


def test_s4_nopreempt_follows_a_lower_priority_master():
    """RFC 5798 6.4.2 (S4): Preempt_Mode False accepts any non-zero priority; no takeover."""
    inst = backup(now=0, priority=150, preempt=False)
    for t in range(1 * SEC, 20 * SEC, 1 * SEC):
        inst.on_advert(adv(100), t)
        assert inst.on_timer(t) == []
    assert inst.state is BACKUP
    assert inst.next_deadline_us == 19 * SEC + DOWN_150


def test_s5_backup_shutdown_goes_init_silently():
    """RFC 5798 6.4.2 (S5): cancel Master_Down_Timer, transition to Initialize, no advert."""
    inst = backup(now=0)
    assert inst.shutdown(100 * MS) == [StateChanged(BACKUP, INIT, "shutdown")]
    assert inst.next_deadline_us is None
    assert inst.stats.adverts_tx == 0


# --- RFC 5798 6.4.3 Master ----------------------------------------------------------------------------------


def test_s6_master_sends_each_interval_with_current_priority():
    """RFC 5798 6.4.3 (S6, K4): Adver_Timer = Advertisement_Interval; each advert carries the priority."""
    inst = master(now=0, adver_int_ms=300)
    sent = []
    for t in range(0, 3 * SEC, 100):  # a wake-up every 100 us
        for a in inst.on_timer(t):
            sent.append((t, a))
    assert sent == [(t, SendAdvert(200)) for t in range(300 * MS, 3 * SEC, 300 * MS)]


def test_s7_master_answers_priority_zero_at_once_and_rearms():
    """RFC 5798 6.4.3 (S7): send an advert immediately and reset Adver_Timer."""
    inst = master(now=0)
    assert inst.on_advert(adv(0), 250 * MS) == [SendAdvert(200)]
    assert inst.next_deadline_us == 1250 * MS


def test_s8_master_yields_to_higher_priority():
    """RFC 5798 6.4.3 (S8): cancel Adver_Timer, learn the interval, arm Master_Down_Timer, become Backup."""
    inst = master(now=0)
    acts = inst.on_advert(adv(250, interval=2000), 100 * MS)
    assert acts == [RemoveAddresses(), StateChanged(MASTER, BACKUP, "higher priority master")]
    assert inst.master_adver_interval_us == 2 * SEC
    assert inst.next_deadline_us == 100 * MS + 3 * 2 * SEC + 437_500  # 56 * 2 s / 256
    assert inst.master_src == PEER


def test_s8_equal_priority_tie_break_is_unsigned_big_endian():
    """RFC 9568 6.4.3 (S8): equal priority, higher primary address wins, compared as an unsigned big-endian
    integer. 198.51.100.1 > 192.0.2.2 in network order, though a little-endian compare says the opposite."""
    lo, hi = ip("192.0.2.2"), ip("198.51.100.1")
    assert int.from_bytes(hi, "little") < int.from_bytes(lo, "little")
    inst = master(now=0, primary_ip=lo)
    assert inst.on_advert(adv(200, src=hi), 100 * MS)[-1] == StateChanged(
        MASTER, BACKUP, "higher priority master"
    )
    inst = master(now=0, primary_ip=hi)
    assert inst.on_advert(adv(200, src=lo), 100 * MS) == [SendAdvert(200)]  # S9 instead
    assert inst.state is MASTER


def test_s8_ipv6_tie_break_compares_all_16_bytes():
    """RFC 9568 6.4.3 (S8): for IPv6 the (link-local) source is compared as a 128-bit unsigned integer."""
    me, peer = ip("2001:db8::1:0"), ip("2001:db8::ff")
    inst = master(now=0, family=6, primary_ip=me, addresses=(ip("2001:db8::100"),))
    assert inst.on_advert(adv(200, src=peer, addresses=(ip("2001:db8::100"),)), 50 * MS)[0] == SendAdvert(200)
    assert inst.state is MASTER


def test_s9_rfc9568_master_answers_lower_priority_once_per_interval():
    """RFC 9568 6.4.3 (S9) with docs/rfc-checklist.md#hostile-segment: the immediate advert is rate-limited to
    one per Advertisement_Interval; suppressed replies are counted; Adver_Timer is not moved."""
    inst = master(now=0)
    assert inst.on_advert(adv(100), 100 * MS) == [SendAdvert(200)]
    for t in range(110 * MS, 1100 * MS, 10 * MS):
        assert inst.on_advert(adv(100), t) == []
    assert inst.on_advert(adv(100), 1100 * MS - 1) == []
    assert inst.on_advert(adv(100), 1100 * MS) == [SendAdvert(200)]
    assert inst.stats.s9_replies == 2
    assert inst.stats.s9_suppressed == 100
    assert inst.stats.lower_prio_rx == 102
    assert inst.next_deadline_us == 1 * SEC


def test_s9_reply_min_ms_configures_the_rate():
    """docs/rfc-checklist.md#hostile-segment: s9_reply_min_ms sets the least gap between two S9 replies."""
    inst = master(now=0, s9_reply_min_ms=100)
    replies = [t for t in range(0, 1 * SEC, 10 * MS) if inst.on_advert(adv(100), t)]
    assert replies == list(range(0, 1 * SEC, 100 * MS))


def test_s9_lower_prio_no_advert_stays_silent():
    """RFC 5798 6.4.3 (pre-9568; keepalived lower_prio_no_advert): discard without answering."""
    inst = master(now=0, lower_prio_no_advert=True)
    assert inst.on_advert(adv(100), 100 * MS) == []
    assert inst.stats.s9_replies == 0 and inst.stats.lower_prio_rx == 1


def test_notify_lower_prio_reports_on_the_s9_rate_limit():
    """keepalived notify_master_rx_lower_pri: a master hearing a lower priority says so - at most once per
    S9 interval, with or without the reply advert (lower_prio_no_advert)."""
    from fastvrrp.core.types import HeardLowerPriority

    for silent in (False, True):
        inst = master(now=0, notify_lower_prio=True, lower_prio_no_advert=silent)
        first = inst.on_advert(adv(100), 100 * MS)
        assert first == ([] if silent else [SendAdvert(200)]) + [HeardLowerPriority(100)]
        assert inst.on_advert(adv(90), 150 * MS) == []  # within one interval: nothing
        assert inst.on_advert(adv(90), 1100 * MS)[-1] == HeardLowerPriority(90)


def test_s10_master_shutdown_sends_priority_zero_then_removes_addresses():
    """RFC 5798 6.4.3 (S10): cancel Adver_Timer, send priority 0, go to Initialize."""
    inst = master(now=0)
    acts = inst.shutdown(500 * MS)
    assert acts == [SendAdvert(0), RemoveAddresses(), StateChanged(MASTER, INIT, "shutdown")]
    assert inst.next_deadline_us is None
    assert inst.stats.priority_zero_tx == 1


def test_s11_preempt_defaults_true_and_owner_always_preempts():
    """RFC 5798 6.1 (S11): Preempt_Mode defaults to True; the owner preempts whatever is configured."""
    assert VrrpInstance(cfg()).preempt is True
    assert VrrpInstance(cfg(priority=255, preempt=False)).preempt is True


def test_higher_prio_send_advert_sends_own_advert_before_yielding():
    """keepalived higher_prio_send_advert: one advert with our priority, then become backup."""
    inst = master(now=0, higher_prio_send_advert=True)
    acts = inst.on_advert(adv(250), 100 * MS)
    assert acts == [
        SendAdvert(200),
        RemoveAddresses(),
        StateChanged(MASTER, BACKUP, "higher priority master"),
    ]


# --- meaning checks of RFC 5798 7.1 / RFC 3768 7.1 (the codec proved wire validity) -------------------------


def test_v5_other_vrid_is_dropped_and_counted():
    """RFC 5798 7.1 (V5): an advert for a VRID not configured here is discarded."""
    inst = backup(now=0)
    assert inst.on_advert(adv(200, vrid=52), 100 * MS) == []
    assert inst.stats.vrid_mismatch == 1 and inst.master_src is None


def test_v2_version_mismatch_is_dropped_and_counted():
    """RFC 5798 7.1 (V2): the version must be the configured one."""
    inst = backup(now=0)
    inst.on_advert(adv(200, version=2), 100 * MS)
    assert inst.stats.version_mismatch == 1 and inst.next_deadline_us == DOWN_100


def test_v6_owner_ignore_adverts_discards_everything():
    """RFC 5798 7.1 (V6): the address owner discards adverts (opt-in, keepalived owner_ignore_adverts)."""
    inst = VrrpInstance(cfg(priority=255, owner_ignore_adverts=True))
    inst.start(0)
    assert inst.on_advert(adv(255, src=ip("192.0.2.200")), 10 * MS) == []
    assert inst.state is MASTER and inst.stats.owner_discard == 1


def test_v6_duplicate_owners_settle_by_address_by_default():
    """RFC 9568 erratum 8298 / docs/rfc-checklist.md#duplicate-owners: by default an owner processes adverts;
    the lower address yields and waits as a backup at 255."""
    inst = VrrpInstance(cfg(priority=255))
    inst.start(0)
    inst.on_advert(adv(255, src=ip("192.0.2.200")), 10 * MS)
    assert inst.state is BACKUP and inst.priority == 255
    assert inst.next_deadline_us == 10 * MS + 3 * SEC + 3906  # (256 - 255) * 1 s / 256 = 3906.25 us


def test_v7_v3_address_list_mismatch_is_counted_but_processed():
    """RFC 5798 7.1 (V7): MAY check the address list; on mismatch SHOULD log and continue."""
    inst = backup(now=0)
    inst.on_advert(adv(200, addresses=(ip("192.0.2.101"),)), 100 * MS)
    assert inst.stats.address_list_mismatch == 1
    assert inst.next_deadline_us == 100 * MS + DOWN_100


def test_v7_v2_address_list_mismatch_is_dropped_unless_owner():
    """RFC 3768 7.1 (V7): v2 MUST discard a mismatching list unless the sender's priority is 255."""
    inst = backup(now=0, version=2)
    inst.on_advert(adv(200, version=2, addresses=()), 100 * MS)
    assert inst.next_deadline_us == DOWN_100 and inst.stats.address_list_mismatch == 1
    inst.on_advert(adv(255, version=2, addresses=()), 200 * MS)
    assert inst.next_deadline_us == 200 * MS + DOWN_100


def test_skip_check_adv_addr_trusts_the_current_master_only():
    """keepalived skip_check_adv_addr: adverts from the master we follow skip the address-list check (V7);
    an advert from any other router is still checked (here: v2, so it is dropped)."""
    inst = backup(now=0, version=2, skip_check_adv_addr=True)
    inst.on_advert(adv(200, version=2), 100 * MS)  # the master, with the right list: followed
    inst.on_advert(adv(200, version=2, addresses=()), 200 * MS)  # same master, other list: not checked
    assert inst.stats.address_list_mismatch == 0 and inst.next_deadline_us == 200 * MS + DOWN_100
    inst.on_advert(adv(200, src=ip("192.0.2.201"), version=2, addresses=()), 300 * MS)  # a stranger: checked
    assert inst.stats.address_list_mismatch == 1 and inst.next_deadline_us == 200 * MS + DOWN_100


def test_v8_v2_interval_mismatch_is_dropped_and_counted():
    """RFC 3768 7.1 (V8): a v2 advert whose interval differs from ours is discarded; we keep our own."""
    inst = backup(now=0, version=2, adver_int_ms=1000)
    assert inst.on_advert(adv(200, version=2, interval=2000), 100 * MS) == []
    assert inst.stats.interval_mismatch == 1
    assert inst.master_adver_interval_us == 1 * SEC and inst.next_deadline_us == DOWN_100


def test_v8_v2_auth_type_mismatch_is_dropped_and_counted():
    """RFC 3768 7.1 (V8): the auth type must equal ours."""
    inst = backup(now=0, version=2, auth_type=1, auth_data=b"secret")
    inst.on_advert(adv(200, version=2, auth_type=0), 100 * MS)
    assert inst.stats.auth_mismatch == 1 and inst.next_deadline_us == DOWN_100
    inst.on_advert(adv(200, version=2, auth_type=1), 200 * MS)
    assert inst.next_deadline_us == 200 * MS + DOWN_100


def test_v2_backup_keeps_own_interval_and_v2_skew():
    """RFC 3768 6.1 (K2): v2 uses its own interval; skew (256 - 100)/256 s."""
    inst = backup(now=0, version=2, adver_int_ms=3000)
    inst.on_advert(adv(200, version=2, interval=3000), 100 * MS)
    assert (inst.skew_us, inst.master_down_interval_us) == (609_375, 9_609_375)


def test_adverts_in_init_and_fault_are_ignored():
    """RFC 5798 6.4: only Backup and Master process adverts."""
    inst = VrrpInstance(cfg())
    assert inst.on_advert(adv(200), 0) == []
    inst.start(0)
    inst.set_fault(True, 10 * MS)
    assert inst.on_advert(adv(0), 20 * MS) == []
    assert inst.stats.ignored_not_running == 2


# --- keepalived extensions ----------------------------------------------------------------------------------


def test_state_master_non_owner_waits_like_a_backup_but_always_preempts():
    """keepalived.conf(5) `state MASTER`: a non-owner waits 3-4 intervals; nopreempt/preempt_delay are
    cleared under state MASTER."""
    inst = VrrpInstance(cfg(start_master=True, preempt=False, preempt_delay_ms=5000, priority=150))
    assert inst.start(0) == [StateChanged(INIT, BACKUP, "startup")]
    assert inst.next_deadline_us == DOWN_150
    assert inst.preempt is True and inst.preempt_delay_us == 0


def test_preempt_delay_extends_the_first_takeover_after_startup():
    """keepalived preempt_delay: with no master around, takeover comes Master_Down_Interval + delay."""
    inst = backup(now=0, preempt_delay_ms=2000)
    assert inst.preempt_delay_us == 2 * SEC
    assert inst.next_deadline_us == DOWN_100 + 2 * SEC
    assert inst.on_timer(DOWN_100 + 2 * SEC - 1) == []
    assert inst.on_timer(DOWN_100 + 2 * SEC)[-1].new is MASTER


def test_preempt_delay_follows_a_lower_master_until_the_delay_is_over():
    """keepalived preempt_delay: after seeing a lower-priority master, keep following it for the delay,
    then discard its adverts (RFC 5798 S4) so the timer runs out."""
    inst = backup(now=0, priority=150, preempt_delay_ms=5000)
    t = 10 * SEC
    inst.on_advert(adv(200), t)  # a higher master: no preemption pending
    t += 1 * SEC  # from 11 s its priority is lower: the delay starts at the first such advert, ends at 16 s
    while t < 16 * SEC:
        inst.on_advert(adv(100), t)
        assert inst.next_deadline_us == t + DOWN_150
        t += 1 * SEC
    assert inst.on_advert(adv(100), 16 * SEC - 1) == []  # still inside the delay: followed
    assert inst.stats.preempt_delayed == 6
    assert inst.on_advert(adv(100), 16 * SEC) == []
    assert inst.next_deadline_us == 16 * SEC - 1 + DOWN_150
    assert inst.stats.preempt_delayed == 6 and inst.stats.preempt_discard == 1
    assert inst.on_timer(16 * SEC - 1 + DOWN_150)[-1].new is MASTER


def test_fault_on_master_sends_priority_zero_and_removes_addresses():
    """keepalived FAULT: a master entering FAULT resigns with priority 0 and drops its addresses."""
    inst = master(now=0)
    acts = inst.set_fault(True, 100 * MS)
    assert acts == [SendAdvert(0), RemoveAddresses(), StateChanged(MASTER, FAULT, "fault")]
    assert inst.next_deadline_us is None
    assert inst.set_fault(True, 200 * MS) == []


def test_fault_cleared_goes_backup_with_fresh_master_down_timer():
    """keepalived FAULT: leaving FAULT is a fresh startup (RFC 5798 6.4.1): Backup, timer from now."""
    inst = backup(now=0)
    assert inst.set_fault(True, 100 * MS) == [StateChanged(BACKUP, FAULT, "fault")]
    assert inst.set_fault(False, 5 * SEC) == [StateChanged(FAULT, BACKUP, "fault cleared")]
    assert inst.next_deadline_us == 5 * SEC + DOWN_100


def test_fault_cleared_owner_becomes_master_at_once():
    """RFC 5798 6.4.1 (S1) on leaving FAULT: the owner does not wait."""
    inst = VrrpInstance(cfg(priority=255))
    inst.start(0)
    inst.set_fault(True, 10 * MS)
    acts = inst.set_fault(False, 20 * MS)
    assert acts == becomes_master_actions(255, FAULT, "address owner (priority 255)")


def test_fault_set_before_start_starts_in_fault_and_shutdown_is_silent():
    """keepalived FAULT: an instance whose interface is down at startup starts in FAULT."""
    inst = VrrpInstance(cfg())
    assert inst.set_fault(True, 0) == []
    assert inst.start(0) == [StateChanged(INIT, FAULT, "startup with a fault set")]
    assert inst.shutdown(10 * MS) == [StateChanged(FAULT, INIT, "shutdown")]


def test_tracking_priority_change_on_master_goes_out_in_next_advert():
    """RFC 5798 6.4.3 (S6): the periodic advert carries the current (effective) priority."""
    inst = master(now=0)
    assert inst.set_priority(120, 300 * MS) == []
    assert inst.on_timer(1 * SEC) == [SendAdvert(120)]
    assert inst.stats.priority_changes == 1


def test_tracking_raised_backup_preempts_when_the_timer_runs_out():
    """RFC 5798 6.4.2 (S4): a backup raised above the master discards its next advert and takes over
    Master_Down_Interval (with the new skew) after the last accepted one."""
    inst = backup(now=0, priority=100)
    inst.on_advert(adv(150), 1 * SEC)
    inst.set_priority(200, 1500 * MS)
    # the running timer keeps its deadline; the new Skew_Time applies from the next reset
    assert inst.skew_us == SKEW_200 and inst.master_down_interval_us == DOWN_200
    assert inst.next_deadline_us == 1 * SEC + DOWN_100
    inst.on_advert(adv(150), 2 * SEC)
    assert inst.stats.preempt_discard == 1
    t = 1 * SEC + DOWN_100
    assert inst.on_timer(t)[-1] == StateChanged(BACKUP, MASTER, "master down timer expired")
    assert inst.on_timer(t + 1 * SEC) == [SendAdvert(200)]


def test_tracking_owner_stays_255_and_range_is_enforced():
    """keepalived: an owner's priority is not tracked; the caller clamps to 1-254 (a local error else)."""
    owner = VrrpInstance(cfg(priority=255))
    assert owner.set_priority(100, 0) == [] and owner.priority == 255
    with pytest.raises(LocalProtocolError):
        VrrpInstance(cfg()).set_priority(255, 0)


# --- contract -----------------------------------------------------------------------------------------------


def test_local_errors_raise_remote_faults_do_not():
    """docs/DESIGN.md#blame-in-the-error-type: misuse by the driver raises LocalProtocolError; configuration
    errors too."""
    inst = backup(now=0)
    with pytest.raises(LocalProtocolError):
        inst.start(10 * MS)
    for bad in (dict(vrid=0), dict(priority=0), dict(adver_int_ms=15), dict(version=2, family=6)):
        with pytest.raises(LocalProtocolError):
            VrrpInstance(cfg(**bad))
    with pytest.raises(LocalProtocolError):
        VrrpInstance(replace(cfg(), version=2, adver_int_ms=500))


def test_every_dispatched_handler_has_a_table_row():
    """docs/DESIGN.md#the-transition-table: the table documents every (state, trigger) the instance reacts
    to."""
    rows = {(t.src, t.trigger) for t in TRANSITIONS}
    assert set(_DISPATCH) <= rows


def test_spurious_timer_calls_change_nothing():
    """The driver may wake early for another instance; on_timer before the deadline is a no-op."""
    inst = master(now=0)
    assert inst.on_timer(1 * SEC - 1) == [] and inst.next_deadline_us == 1 * SEC
    assert VrrpInstance(cfg()).on_timer(0) == []
