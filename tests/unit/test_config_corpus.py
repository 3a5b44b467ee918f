"""The sample corpus (tests/configs): valid files load, invalid ones fail with a located problem, the
worked_around ones (keepalived 2.2.7 starts them, working around a problem) load with a located adjustment
and fail with strict configuration.
(tests/netns/test_config_agrees_with_keepalived.py compares the same files with keepalived -t.)"""

from __future__ import annotations

import pathlib

import pytest

from fastvrrp.config import check, check_file

HERE = pathlib.Path(__file__).resolve().parent.parent / "configs"
VALID = sorted((HERE / "valid").glob("*.conf"))
INVALID = sorted((HERE / "invalid").glob("*.conf"))
WORKED_AROUND = sorted((HERE / "worked_around").glob("*.conf"))


def test_corpus_is_not_empty():
    assert len(VALID) >= 8 and len(INVALID) >= 7 and len(WORKED_AROUND) >= 18


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_configs_load(path):
    cfg, problems, _ = check(str(path), instance_id="main")
    assert problems == []
    assert cfg is not None and cfg.instances


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_configs_fail_with_a_located_problem(path):
    cfg, problems, _ = check(str(path), instance_id="main")
    assert cfg is None
    assert problems and all(p.file.endswith(".conf") and p.line >= 1 for p in problems)


@pytest.mark.parametrize("path", WORKED_AROUND, ids=lambda p: p.name)
def test_worked_around_configs_load_with_a_located_warning(path):
    res = check_file(str(path), instance_id="main")
    assert res.problems == [] and res.config is not None
    assert res.adjustments and all(p.file == str(path) and p.line >= 1 for p in res.adjustments)
    cfg, problems, _ = check(str(path), instance_id="main", strict=True)
    assert cfg is None
    assert {(p.line, p.message) for p in problems} == {
        (a.line, a.message + " [refused: strict configuration]") for a in res.adjustments
    }


def test_strict_from_global_defs(tmp_path):
    text = (HERE / "worked_around" / "v2_fraction.conf").read_text()
    p = tmp_path / "k.conf"
    p.write_text("global_defs {\n    fastvrrp_strict_config\n}\n" + text)
    cfg, problems, _ = check(str(p), instance_id="main")
    assert (
        cfg is None
        and problems
        and all(m.message.endswith("[refused: strict configuration]") for m in problems)
    )
    p.write_text("global_defs {\n    fastvrrp_strict_config off\n}\n" + text)
    cfg, problems, _ = check(str(p), instance_id="main")
    assert cfg is not None and problems == []


# The meaning keepalived 2.2.7 gives each worked-around file (its log line quoted), which fastvrrp runs.
MEANING = {
    "advert_zero.conf": ("advert_int_ms", 1000),  # "Advert interval (0) not valid! Must be > 0 - ignoring"
    "priority_zero.conf": (
        "priority",
        100,
    ),  # "Priority not valid! must be between 1 & 255. Using default 100"
    "v2_fraction.conf": (
        "advert_int_ms",
        1000,
    ),  # "VRRPv2 advertisement interval 0.010000s must be an integer. rounding"
    "v3_too_long.conf": (
        "advert_int_ms",
        40950,
    ),  # "... out of range. Must be less than 40.96s. Setting to 40.95s"
    "bad_state.conf": ("state", "BACKUP"),  # "unknown state 'FOO', defaulting to BACKUP"
    "strict_auth.conf": ("auth_type", None),  # "Strict mode does not support authentication. Ignoring."
    "v3_auth.conf": ("auth_type", None),  # "VRRP version 3 does not support authentication. Ignoring."
    "owner_nopreempt.conf": (
        "preempt",
        True,
    ),  # "nopreempt is incompatible with priority 255. resetting nopreempt"
    "long_pass.conf": ("auth_pass", "waytoolo"),  # keepalived sends the first 8 bytes
    "stock_strict.conf": ("state", "BACKUP"),  # "(VI_1) State MASTER must match being address owner"
    "undefined_script.conf": ("track_script", ()),  # "track script nosuch not found, ignoring..."
    "script_without_script.conf": ("track_script", ()),  # "No script set for vrrp_script chk - removing"
}


@pytest.mark.parametrize("name", sorted(MEANING))
def test_worked_around_configs_mean_what_keepalived_runs(name):
    cfg, problems, _ = check(str(HERE / "worked_around" / name), instance_id="main")
    assert problems == [] and cfg is not None
    field, value = MEANING[name]
    assert getattr(cfg.instances[0], field) == value


def test_invalid_addresses_and_duplicate_blocks_are_skipped_as_keepalived_does():
    # "VRRP parsed invalid IP 192.0.2.300/24. skipping IP..."; "No VIP specified; at least one is sensible"
    cfg, problems, _ = check(str(HERE / "worked_around" / "bad_address.conf"), instance_id="main")
    assert problems == [] and cfg is not None and cfg.instances[0].virtual_ipaddress == ()
    # "address family must match VRRP instance [2001:db8::5/64] - ignoring"
    cfg, problems, _ = check(str(HERE / "worked_around" / "mixed_family.conf"), instance_id="main")
    assert problems == [] and cfg is not None
    assert [str(v.address) for v in cfg.instances[0].virtual_ipaddress] == ["192.0.2.5"]
    # "vrrp instance VI_1 already defined": the second block is skipped unread (its VRID 999 is not judged),
    # the first one runs
    cfg, problems, _ = check(str(HERE / "worked_around" / "duplicate_name.conf"), instance_id="main")
    assert problems == [] and cfg is not None
    assert [(i.name, i.virtual_router_id) for i in cfg.instances] == [("VI_1", 5)]


def test_ignored_weights_as_keepalived_ignores_them():
    # "(VI_A) ignoring tracked script chk_haproxy with weights due to SYNC group"; track_interface eth1
    # (no weight) and track_file tf1 (weight 0) stay
    cfg, problems, _ = check(str(HERE / "worked_around" / "sync_group_weight.conf"), instance_id="main")
    assert problems == [] and cfg is not None
    a = cfg.instances[0]
    assert a.sync_group == "G1" and a.track_script == ()
    assert [(t.name, t.weight) for t in a.track_file] == [("tf1", 0)]
    assert [t.name for t in a.track_interface] == ["eth1"]
    # the address owner: "ignoring tracked script chk with weights due to address_owner", "ignoring weight
    # from tracked file tf1 due to address_owner. specify weight 0", "ignoring tracked file tf2 with weight 5"
    cfg, problems, _ = check(str(HERE / "worked_around" / "owner_weights.conf"), instance_id="main")
    assert problems == [] and cfg is not None
    a = cfg.instances[0]
    assert a.track_script == () and [(t.name, t.weight) for t in a.track_file] == [("tf1", 0)]


def test_track_interface_of_the_address_owner_and_of_its_own_interface(tmp_path):
    # "(VI_1) ignoring eth1 tracked interface due to address owner"
    text = (HERE / "worked_around" / "owner_weights.conf").read_text()
    p = tmp_path / "k.conf"
    p.write_text(
        text.replace(
            "    track_file {",
            "    track_interface {\n        eth1 weight 10\n        eth0\n    }\n    track_file {",
        )
    )
    res = check_file(str(p), instance_id="main")
    assert res.problems == [] and res.config is not None
    # and "(VI_1) Ignoring track_interface eth0 since own interface"
    assert res.config.instances[0].track_interface == ()
    assert any("track_interface 'eth1' has a weight" in a.message for a in res.adjustments)
    assert any("track_interface eth0 is the instance's own interface" in a.message for a in res.adjustments)


def test_weighted_track_interface_of_a_sync_group_member_tracks_with_weight_0(tmp_path):
    # "(VI_A) ignoring eth1 tracked interface weight due to SYNC group"
    text = (HERE / "worked_around" / "sync_group_weight.conf").read_text()
    p = tmp_path / "k.conf"
    p.write_text(text.replace("        eth1\n", "        eth1 weight 10\n", 1))
    res = check_file(str(p), instance_id="main")
    assert res.problems == [] and res.config is not None
    assert [(t.name, t.weight) for t in res.config.instances[0].track_interface] == [("eth1", 0)]
    assert any("track_interface 'eth1' has weight 10" in a.message for a in res.adjustments)


def test_sync_group_without_members_is_dropped():
    cfg, problems, _ = check(
        str(HERE / "worked_around" / "sync_members_outside_group.conf"), instance_id="main"
    )
    assert problems == [] and cfg is not None and dict(cfg.sync_groups) == {}
    assert cfg.instances[0].sync_group is None and cfg.instances[0].advert_int_ms == 1000
