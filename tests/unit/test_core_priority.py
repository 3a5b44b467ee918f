"""keepalived's tracking math in fastvrrp.core.priority, one rule per test (keepalived.conf(5): vrrp_script,
track_file, track_process, track_interface, sync groups)."""

from __future__ import annotations

import pytest

from fastvrrp.config.model import (
    Config,
    GlobalDefs,
    InstanceConfig,
    SyncGroupConfig,
    TrackFile,
    TrackRef,
    VrrpScript,
)
from fastvrrp.core.priority import Ref, Tracked, effective_priority, resolve_refs, tracked_from


def eff(base, *ts, owner=None):
    return effective_priority(base, list(ts), owner)


def test_positive_weight_added_while_up_only():
    assert eff(100, Tracked("script", "s", 20, up=True)).priority == 120
    assert eff(100, Tracked("script", "s", 20, up=False)).priority == 100


def test_negative_weight_subtracted_while_down_only():
    assert eff(100, Tracked("script", "s", -30, up=False)).priority == 70
    assert eff(100, Tracked("script", "s", -30, up=True)).priority == 100


def test_reverse_flips_the_direction():
    assert eff(100, Tracked("script", "s", 20, True, up=True)).priority == 80
    assert eff(100, Tracked("script", "s", -30, True, up=False)).priority == 130
    assert eff(100, Tracked("script", "s", -30, True, up=True)).priority == 100


def test_weight_zero_down_is_fault_and_reverse_faults_when_up():
    e = eff(100, Tracked("script", "s", 0, up=False))
    assert e.fault and e.faults == ("script:s",) and e.priority == 100
    assert not eff(100, Tracked("script", "s", 0, up=True)).fault
    assert eff(100, Tracked("interface", "eth0", 0, True, up=True)).fault
    assert not eff(100, Tracked("interface", "eth0", 0, True, up=False)).fault


def test_clamped_to_1_254():
    assert eff(250, Tracked("script", "a", 100, up=True)).priority == 254
    e = eff(10, Tracked("script", "a", -100, up=False))
    assert e.priority == 1 and e.total == -90


def test_owner_stays_255_but_weight_zero_still_faults():
    assert eff(255, Tracked("script", "a", -100, up=False)).priority == 255
    e = eff(255, Tracked("script", "a", 0, up=False))
    assert e.priority == 255 and e.fault


def test_no_result_yet_adds_nothing_and_unweighted_waits():
    e = eff(100, Tracked("script", "a", 20, up=None), Tracked("script", "b", 0, up=None))
    assert e.priority == 100 and e.waiting and e.waiting_on == ("script:b",) and not e.fault


def test_weights_sum():
    e = eff(
        100,
        Tracked("script", "a", 10, up=True),
        Tracked("process", "p", -25, up=False),
        Tracked("interface", "i", 5, up=True),
    )
    assert e.priority == 90


@pytest.mark.parametrize(
    "value,weight,reverse,prio,fault",
    [
        (0, 0, False, 100, False),
        (7, 0, False, 100, True),  # weight 0: non-zero value is FAULT
        (0, 0, True, 100, True),  # weight 0 reverse: zero is FAULT
        (7, 0, True, 100, False),
        (3, 10, False, 130, False),  # value * weight
        (-3, 10, False, 70, False),
        (3, 10, True, 70, False),  # reverse negates
        (200, 2, False, 254, False),  # contribution capped at 253, priority at 254
        (-127, 2, False, 100, True),  # -254: FAULT
        (-126, 2, False, 1, False),  # -252: just a low priority
    ],
)
def test_track_file_value_times_weight(value, weight, reverse, prio, fault):
    e = eff(100, Tracked("file", "f", weight, reverse, value=value))
    assert (e.priority, e.fault) == (prio, fault)


def test_track_file_fault_applies_to_owner():
    assert eff(255, Tracked("file", "f", 1, value=-254)).fault


def _config(sync_weight=False, in_group=True):
    inst = InstanceConfig(
        name="VI_1",
        file="k.conf",
        line=1,
        interface="eth0",
        virtual_router_id=1,
        priority=100,
        track_script=(TrackRef("chk"), TrackRef("chk2", 0)),
        track_file=(TrackRef("tf", 5),),
        sync_group="G" if in_group else None,
    )
    group = SyncGroupConfig(
        name="G",
        group=("VI_1",),
        track_interface=(TrackRef("eth1", -10),),
        track_script=(TrackRef("chk"),),
        sync_group_tracking_weight=sync_weight,
    )
    return Config(
        global_defs=GlobalDefs(),
        instances=(inst,),
        vrrp_scripts={
            "chk": VrrpScript("chk", "/bin/true", weight=-20, reverse=True),
            "chk2": VrrpScript("chk2", "/bin/true", weight=7),
        },
        track_files={"tf": TrackFile("tf", "/tmp/x", weight=3)},
        sync_groups={"G": group} if in_group else {},
    ), inst


def test_resolve_defaults_and_own_interface():
    cfg, inst = _config(in_group=False)
    refs, warnings = resolve_refs(inst, cfg)
    assert refs == [
        Ref("script", "chk", -20, True),
        Ref("script", "chk2", 0, False),
        Ref("file", "tf", 5, False),
        Ref("interface", "eth0", 0, False),
    ]
    assert warnings == []


def test_resolve_dont_track_primary():
    cfg, inst = _config(in_group=False)
    inst2 = InstanceConfig(**{**{f: getattr(inst, f) for f in inst.__slots__}, "dont_track_primary": True})
    refs, _ = resolve_refs(inst2, cfg)
    assert ("interface", "eth0") not in {(r.kind, r.name) for r in refs}


def test_sync_group_member_weights_dropped_or_zeroed():
    cfg, inst = _config(sync_weight=False)
    refs, warnings = resolve_refs(inst, cfg)
    # weighted script dropped (keepalived 2.2), file and group interface weights forced to 0
    assert refs == [
        Ref("script", "chk2", 0, False),
        Ref("file", "tf", 0, False),
        Ref("interface", "eth1", 0, False),
        Ref("interface", "eth0", 0, False),
    ]
    assert len(warnings) == 3


def test_sync_group_tracking_weight_keeps_weights_and_group_trackers_apply():
    cfg, inst = _config(sync_weight=True)
    refs, warnings = resolve_refs(inst, cfg)
    assert Ref("interface", "eth1", -10, False) in refs and warnings == []
    e = effective_priority(
        100,
        tracked_from(
            refs,
            {
                ("interface", "eth1"): (False, None),
                ("interface", "eth0"): (True, None),
                ("script", "chk"): (False, None),
                ("script", "chk2"): (True, None),
                ("file", "tf"): (True, 2),
            },
        ),
    )
    # eth1 down -10, chk down with weight -20 reverse: +20, file 2*5 = +10
    assert e.priority == 120 and not e.fault
