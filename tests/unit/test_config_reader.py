"""Keywords, defaults, resolution and every validation message (exact file, line and text)."""

from __future__ import annotations

import ipaddress
import json

import pytest

from fastvrrp.config import ConfigError, Problem, check, load
from fastvrrp.config.to_core import instance_config


def cfg_of(tmp_path, text, instance_id="x", strict=False):
    p = tmp_path / "k.conf"
    p.write_text(text)
    return check(str(p), instance_id, strict=strict), str(p)


def inst(body, name="VI_1", vrid=5, vip="192.0.2.5/24"):
    return (
        f"vrrp_instance {name} {{\n interface eth0\n virtual_router_id {vrid}\n{body}\n"
        f" virtual_ipaddress {{\n  {vip}\n }}\n}}\n"
    )


STRICT = " [refused: strict configuration]"


def problems(tmp_path, text):
    """The problems of `text` with strict configuration: the adjustments keepalived makes (each ending in
    STRICT) are refused like the errors; test_adjustments_start_the_file checks them without strict."""
    (cfg, probs, _u), path = cfg_of(tmp_path, text, strict=True)
    assert cfg is None
    return [(p.line, p.message) for p in probs], path


def test_defaults_as_keepalived(tmp_path):
    (cfg, probs, unsup), _ = cfg_of(tmp_path, inst(""))
    assert probs == [] and unsup == []
    i = cfg.instance("VI_1")
    assert (i.priority, i.advert_int_ms, i.preempt, i.version, i.family, i.state) == (
        100,
        1000,
        True,
        2,
        4,
        "BACKUP",
    )
    assert (
        i.garp_master_delay_ms,
        i.garp_master_repeat,
        i.garp_lower_prio_delay_ms,
        i.garp_master_refresh_ms,
    ) == (5000, 5, 5000, 0)
    assert i.virtual_ipaddress[0].address == ipaddress.ip_address("192.0.2.5")
    assert i.virtual_ipaddress[0].prefixlen == 24
    assert cfg.global_defs.vrrp_version == 2


def test_state_master_without_priority_is_owner(tmp_path):
    (cfg, _p, _u), _ = cfg_of(tmp_path, inst(" state MASTER"))
    assert cfg.instance("VI_1").priority == 255


def test_globals_resolve_into_instances(tmp_path):
    g = (
        "global_defs {\n vrrp_version 3\n vrrp_garp_master_delay 2\n vrrp_garp_master_repeat 3\n"
        " vrrp_lower_prio_no_advert\n vrrp_startup_delay 1.5\n script_user nobody nogroup\n"
        " notification_email {\n  a@example.com\n }\n}\n"
        "child_wait_time 7\n"  # keepalived 2.2.7 takes it at the top level only
    )
    (cfg, probs, unsup), _ = cfg_of(tmp_path, g + inst(" advert_int 0.25\n garp_master_repeat 9"))
    assert probs == []
    i = cfg.instance("VI_1")
    assert (i.version, i.advert_int_ms, i.garp_master_delay_ms, i.garp_master_repeat) == (3, 250, 2000, 9)
    assert (i.garp_lower_prio_delay_ms, i.garp_lower_prio_repeat, i.lower_prio_no_advert) == (2000, 9, True)
    gd = cfg.global_defs
    assert (gd.vrrp_startup_delay_ms, gd.script_user, gd.script_group) == (1500, "nobody", "nogroup")
    assert gd.notification_email == ("a@example.com",) and gd.other["child_wait_time"] == 7


def test_ipv6_instance_is_v3(tmp_path):
    (cfg, probs, _), _ = cfg_of(tmp_path, inst(" advert_int 0.1", vip="2001:db8::5/64"))
    assert probs == []
    i = cfg.instance("VI_1")
    assert (i.family, i.version, i.advert_int_ms) == (6, 3, 100)


def test_full_instance_model(tmp_path):
    text = 'vrrp_script s1 {\n script "/bin/true x"\n interval 2\n weight -10 reverse\n}\n' + inst(
        " unicast_src_ip 192.0.2.1\n unicast_peer {\n  192.0.2.2 min_ttl 250 max_ttl 255\n }\n"
        " track_script {\n  s1\n }\n track_interface {\n  eth1 weight 5\n }\n"
        " notify_master /bin/m root\n use_vmac vrrp.5\n no_accept\n preempt_delay 2.5\n"
        " virtual_ipaddress_excluded {\n  2001:db8::9/64 dev eth1 scope global\n }\n"
        " virtual_routes {\n  src 192.0.2.1 to 203.0.113.0/24 via 192.0.2.254 dev eth0\n }\n"
        " virtual_rules {\n  from 198.51.100.0/24 table 100\n }\n old_unicast_checksum"
    )
    (cfg, probs, _), _ = cfg_of(tmp_path, text)
    assert probs == []
    i = cfg.instance("VI_1")
    assert i.unicast_peers[0].min_ttl == 250 and i.check_unicast_src
    assert i.track_script[0].name == "s1" and i.track_interface[0].weight == 5
    assert i.notify_master.command == "/bin/m" and i.notify_master.user == "root"
    assert (i.use_vmac, i.vmac_name, i.accept, i.preempt_delay_ms, i.v3_checksum_as_v2) == (
        True,
        "vrrp.5",
        False,
        2500,
        True,
    )
    assert i.virtual_routes[0].destination == ipaddress.ip_network("203.0.113.0/24")
    assert i.virtual_rules[0].family == 4
    assert cfg.vrrp_scripts["s1"].script == "/bin/true x" and cfg.vrrp_scripts["s1"].reverse


@pytest.mark.parametrize(
    "body,line,message",
    [
        (" priority 0", 4, "priority '0' is not in 1-255: using 100, as keepalived does" + STRICT),
        (" priority 256", 4, "priority '256' is not in 1-255: using 100, as keepalived does" + STRICT),
        (" priority high", 4, "priority 'high' is not in 1-255: using 100, as keepalived does" + STRICT),
        (
            " advert_int 0",
            4,
            "advert_int 0 must be greater than 0: ignored (1 s), as keepalived does" + STRICT,
        ),
        (
            " advert_int 1.5",
            4,
            "vrrp_instance VI_1: advert_int 1.5 is not a whole number of seconds (VRRPv2): "
            "using 2 s, as keepalived does" + STRICT,
        ),
        (
            " version 3\n advert_int 0.015",
            5,
            "vrrp_instance VI_1: advert_int 0.015 is not valid for VRRPv3 (a multiple of 0.01 s from 0.01 to 40.95)",  # noqa: E501
        ),
        (
            " priority 255\n nopreempt",
            5,
            "vrrp_instance VI_1: nopreempt cannot work with priority 255: preempting, as keepalived does"
            + STRICT,
        ),
        (
            " state MASTER\n priority 100\n nopreempt",
            4,
            "vrrp_instance VI_1: nopreempt cannot work with state MASTER",
        ),
        (
            " state FOO",
            4,
            "unknown state 'FOO' (MASTER or BACKUP): starting as BACKUP, as keepalived does" + STRICT,
        ),
        (
            " bogus 1",
            4,
            "unknown keyword 'bogus' in vrrp_instance: ignored (keepalived skips it too)" + STRICT,
        ),
        (
            " track_script {\n  nosuch\n }",
            5,
            "vrrp_instance VI_1: track_script 'nosuch' names no vrrp_script: not tracked, as keepalived does"
            + STRICT,
        ),
        (
            " authentication {\n  auth_type PASS\n  auth_pass 123456789\n }",
            6,
            "auth_pass is longer than 8 bytes: only '12345678' is sent, as keepalived does" + STRICT,
        ),
        (
            " version 3\n authentication {\n  auth_type PASS\n  auth_pass x\n }",
            5,
            "vrrp_instance VI_1: VRRP version 3 does not support authentication: "
            "advertising without it, as keepalived does" + STRICT,
        ),
        (" authentication {\n  auth_type MD5\n }", 5, "unknown auth_type 'MD5' (PASS or AH)"),
        (" unicast_peer {\n  2001:db8::1\n }", 5, "vrrp_instance VI_1: unicast peer 2001:db8::1 is not IPv4"),
        (" unicast_peer {\n  192.0.2.9 min_ttl 9 max_ttl 3\n }", 5, "min_ttl 9 is above max_ttl 3"),
        (" nopreempt 1", 4, "'nopreempt' expects no value, got 1"),
        (" interface lo", 4, "cannot use the loopback interface for VRRP"),
        (" preempt_delay 1001", 4, "preempt_delay 1001 out of range [0, 1000] seconds"),
        (
            " virtual_routes {\n  198.51.100.0/24 dev eth0 encap mpls\n }",
            5,
            "route '198.51.100.0/24 dev eth0 encap mpls': 'encap mpls' needs a value",
        ),
        (" strict_mode maybe", 4, "'strict_mode' value 'maybe' is not one of on|off|true|false|yes|no"),
    ],
)
def test_instance_errors(tmp_path, body, line, message):
    got, _ = problems(tmp_path, inst(body))
    assert got == [(line, message)]


def test_vip_errors(tmp_path):
    got, _ = problems(
        tmp_path,
        inst(
            "",
            vip="192.0.2.5/24\n  2001:db8::5\n  192.0.2.7/33\n  192.0.2.8 colour red"
            "\n  192.0.2.9 scope galaxy",
        ),
    )
    assert got == [
        (
            7,
            "vrrp_instance VI_1: 2001:db8::5 is IPv6 but the instance is IPv4 (its first virtual address): "
            "ignored, as keepalived does (virtual_ipaddress_excluded takes either family)" + STRICT,
        ),
        (8, "invalid prefix length '33' of 192.0.2.7/33: using /32, as keepalived does" + STRICT),
        (9, "unknown option 'colour' for address 192.0.2.8"),
        (10, "invalid scope 'galaxy' of 192.0.2.9: ignored, as keepalived does" + STRICT),
    ]


def test_missing_required_and_duplicates_all_collected(tmp_path):
    text = (
        "vrrp_instance A {\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n"
        + inst("", name="B")
        + inst("", name="C")
        + inst("", name="B", vrid=6)
    )
    got, path = problems(tmp_path, text)
    assert got == [
        (1, "vrrp_instance A: interface is required"),
        (1, "vrrp_instance A: virtual_router_id is required"),
        (14, f"vrrp_instance C: VRID 5 is already used by B ({path}:6) on eth0 for IPv4"),
        (
            22,
            f"vrrp_instance 'B' is already defined at {path}:6: this block is ignored, as keepalived does"
            + STRICT,
        ),
    ]


def test_same_vrid_other_family_or_interface_is_fine(tmp_path):
    text = (
        inst("", name="A")
        + inst("", name="B", vip="2001:db8::1")
        + inst(" ", name="C").replace("eth0", "eth1")
    )
    (cfg, probs, _), _ = cfg_of(tmp_path, text)
    assert probs == [] and len(cfg.instances) == 3


def test_global_errors(tmp_path):
    got, _ = problems(
        tmp_path,
        "global_defs {\n vrrp_version 4\n nope 1\n vrrp_garp_master_delay x\n"
        " vrrp_strict yes\n vrrp_mcast_group4 ff02::1\n}\nbogus_top\n",
    )
    assert got == [
        (2, "vrrp_version 4 out of range [2, 3]"),
        (3, "unknown keyword 'nope' in global_defs: ignored (keepalived skips it too)" + STRICT),
        (4, "vrrp_garp_master_delay 'x' is not a number of seconds"),
        (5, "'vrrp_strict' expects no value, got 1"),
        (6, "'vrrp_mcast_group4' needs an IPv4 multicast address, got ff02::1"),
        (8, "unknown keyword 'bogus_top': ignored (keepalived skips it too)" + STRICT),
    ]


def test_trackers_and_sync_groups(tmp_path):
    text = (
        "vrrp_script s {\n interval 1\n}\ntrack_file f {\n file /tmp/x\n weight 300\n}\n"
        "vrrp_track_process p {\n process haproxy\n quorum 3\n quorum_max 1\n}\n"
        "vrrp_sync_group G {\n group {\n  VI_1\n  NOPE\n }\n}\n" + inst("")
    )
    got, _ = problems(tmp_path, text)
    assert got == [
        (1, "vrrp_script 's' has no 'script': removed, as keepalived does" + STRICT),
        (6, "weight 300 out of range [-254, 254]"),
        (8, "vrrp_track_process 'p': quorum_max 1 is below quorum 3"),
        (13, "vrrp_sync_group G: no vrrp_instance 'NOPE'"),
    ]


def test_unsupported_are_notes_not_errors(tmp_path):
    text = (
        "global_defs {\n smtp_server 192.0.2.25\n enable_snmp_vrrp\n enable_snmp_rfc\n}\n"
        + inst("")
        + "virtual_server 192.0.2.5 80 {\n lb_algo rr\n}\nvirtual_server 192.0.2.5 81 {\n}\n"
    )
    (cfg, probs, unsup), path = cfg_of(tmp_path, text)
    assert probs == [] and cfg is not None
    assert [str(u) for u in unsup] == [
        f"{path}:2: 'smtp_server': SMTP alerts not implemented by fastvrrp, ignored",
        f"{path}:3: 'enable_snmp_vrrp': SNMP not implemented by fastvrrp, ignored (and 1 more place)",
        f"{path}:14: 'virtual_server': LVS virtual servers not implemented by fastvrrp, ignored (and 1 more place)",  # noqa: E501
    ]
    assert cfg.unsupported == tuple(unsup)


def test_load_raises_with_all_problems(tmp_path):
    p = tmp_path / "k.conf"
    p.write_text(inst(" virtual_router_id 0\n advert_int x"))
    with pytest.raises(ConfigError) as ei:
        load(str(p), "x")
    assert ei.value.problems == [
        Problem(str(p), 4, "virtual_router_id 0 out of range [1, 255]"),
        Problem(str(p), 5, "advert_int 'x' is not a number of seconds"),
    ]


def test_to_json_is_stable_and_sorted(tmp_path):
    (cfg, _p, _u), _ = cfg_of(tmp_path, inst(" unicast_peer {\n  192.0.2.2\n }"))
    text = cfg.to_json()
    assert text == cfg.to_json()
    d = json.loads(text)
    assert list(d) == sorted(d)
    assert d["instances"][0]["unicast_peers"] == [{"address": "192.0.2.2", "max_ttl": None, "min_ttl": None}]
    assert d["instances"][0]["virtual_ipaddress"][0]["address"] == "192.0.2.5"


def test_frozen(tmp_path):
    (cfg, _p, _u), _ = cfg_of(tmp_path, inst(""))
    with pytest.raises(AttributeError):
        cfg.instances[0].priority = 1  # type: ignore[misc]


def test_to_core(tmp_path):
    text = inst(
        " state MASTER\n priority 200\n preempt_delay 3\n lower_prio_no_advert\n"
        " authentication {\n  auth_type PASS\n  auth_pass abc\n }",
        vip="192.0.2.5/24\n  192.0.2.6",
    )
    (cfg, probs, _), _ = cfg_of(tmp_path, text)
    assert probs == []
    ic = instance_config(cfg.instance("VI_1"), "192.0.2.1")
    assert (ic.vrid, ic.priority, ic.version, ic.family, ic.adver_int_ms) == (5, 200, 2, 4, 1000)
    assert (ic.preempt, ic.preempt_delay_ms, ic.start_master, ic.lower_prio_no_advert) == (
        True,
        3000,
        True,
        True,
    )
    assert ic.primary_ip == bytes([192, 0, 2, 1])
    assert ic.addresses == (bytes([192, 0, 2, 5]), bytes([192, 0, 2, 6]))
    assert (ic.auth_type, ic.auth_data) == (1, b"abc\0\0\0\0\0")
    with pytest.raises(ValueError):
        instance_config(cfg.instance("VI_1"), "2001:db8::1")


# --- garp_extra_if (checked, then noted as unsupported) and static addresses naming a track_group -----------
GARP_INST = """vrrp_instance V {{
    interface eth0
    virtual_router_id 7
    virtual_ipaddress {{
        192.0.2.7/24
    }}
{extra}
}}
"""


def test_garp_extra_if_is_noted_as_unsupported_not_dropped(tmp_path):
    (cfg, probs, unsupported), path = cfg_of(
        tmp_path, GARP_INST.format(extra="    garp_extra_if all 100\n    garp_extra_if_vmac 30")
    )
    assert probs == [] and cfg is not None
    assert unsupported == [
        Problem(
            path,
            7,
            "'garp_extra_if': periodic GARP/NA on extra interfaces not implemented by fastvrrp, "
            "ignored (and 1 more place)",
        )
    ]


def test_garp_extra_if_syntax_is_checked(tmp_path):
    (cfg, probs, _), path = cfg_of(
        tmp_path, GARP_INST.format(extra="    garp_extra_if all\n    garp_extra_if_vmac 90000")
    )
    assert cfg is None
    assert probs == [
        Problem(path, 7, "'garp_extra_if' expects [all] and a delay in seconds"),
        Problem(path, 8, "garp_extra_if_vmac delay 90000 out of range [0, 86400] seconds"),
    ]


def test_static_address_with_undefined_track_group_is_located(tmp_path):
    text = GARP_INST.format(extra="") + "static_ipaddress {\n    192.0.2.200/24 dev eth0 track_group TG\n}\n"
    (cfg, probs, _), path = cfg_of(tmp_path, text)
    assert cfg is None
    assert probs == [Problem(path, 10, "no track_group 'TG'")]


def test_top_level_settings_are_unknown_inside_global_defs(tmp_path):
    """keepalived 2.2.7: "Unknown keyword 'net_namespace'" inside global_defs (skipped; -t exits 5); at the
    top level it is a setting (as are use_pid_dir, child_wait_time, instance ...)."""
    (cfg, probs, _), path = cfg_of(tmp_path, "global_defs {\n net_namespace blue\n}\n" + inst(""))
    assert probs == [] and "net_namespace" not in cfg.global_defs.other
    (cfg, probs, _), path = cfg_of(tmp_path, "net_namespace blue\n" + inst(""))
    assert probs == [] and cfg.global_defs.other["net_namespace"] == "blue"
