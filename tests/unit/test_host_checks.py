"""`fastvrrp -t`'s checks of the host, against a given set of interface names (the netns tests run the real
ones beside keepalived -t: tests/netns/test_config_agrees_with_keepalived.py)."""

from __future__ import annotations

from fastvrrp.config import check
from fastvrrp.config.host_checks import host_findings

CONF = """\
vrrp_script chk {
    script "/bin/true"
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 5
    track_interface {
        uplink0
    }
    track_script {
        chk
    }
    virtual_ipaddress {
        192.0.2.5/24 dev eth1
    }
}
"""


def _cfg(tmp_path, text):
    p = tmp_path / "k.conf"
    p.write_text(text)
    cfg, problems, _ = check(str(p), "x")
    assert problems == [] and cfg is not None
    return cfg, str(p)


def test_missing_interfaces_and_root_scripts(tmp_path):
    cfg, path = _cfg(tmp_path, CONF)
    f = host_findings(cfg, interfaces={"lo"})
    assert [(p.file, p.line, p.message) for p in f.unusable] == [
        (path, 4, "vrrp_instance VI_1: interface eth0 does not exist here")
    ]
    assert [p.message for p in f.worked_around] == [
        "vrrp_instance VI_1: tracked interface uplink0 does not exist here: the instance waits for it before "
        "starting",
        "vrrp_instance VI_1: interface eth1 of address 192.0.2.5 does not exist here: left out, as "
        "keepalived does",
    ]
    assert [(p.file, p.line) for p in f.script_security] == [(path, 4)]
    assert "enable_script_security is not set" in f.script_security[0].message
    clean = host_findings(cfg, interfaces={"lo", "eth0", "eth1", "uplink0"})
    assert clean.unusable == clean.worked_around == [] and clean.script_security


def test_script_security_enabled_or_another_user(tmp_path):
    for head in (
        "global_defs {\n    enable_script_security\n}\n",
        "global_defs {\n    script_user nobody\n}\n",
    ):
        cfg, _path = _cfg(tmp_path, head + CONF)
        assert host_findings(cfg, interfaces={"eth0", "eth1", "uplink0"}).script_security == []


def test_a_script_whose_program_is_missing_does_not_count(tmp_path):
    cfg, _path = _cfg(tmp_path, CONF.replace('"/bin/true"', '"/nonexistent/check.sh arg"'))
    assert host_findings(cfg, interfaces={"eth0", "eth1", "uplink0"}).script_security == []


LINES = """\
static_ipaddress {
    192.0.2.16/24 dev eth0
    192.0.2.18/24 dev gone1
}
static_routes {
    198.51.100.0/24 dev gone2
    198.51.101.0/24 nexthop via 192.0.2.254 dev eth0 nexthop via 192.0.2.253 dev gone3
}
static_rules {
    from 198.51.100.0/24 table 100 iif gone4 oif eth0
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 5
    virtual_ipaddress {
        192.0.2.5/24
    }
    virtual_routes {
        203.0.113.0/24 dev eth0 vrf gone5
    }
    virtual_rules {
        to 203.0.113.0/24 table 100 oif gone6
    }
}
"""


def test_missing_interfaces_of_address_route_and_rule_lines_at_their_line(tmp_path):
    """keepalived 2.2.7: "WARNING - interface gone2 for VROUTE nexthop doesn't exist" (and for ip address,
    for rule; "VRF gone5 not found for route"): each line named at its own FILE:LINE."""
    cfg, path = _cfg(tmp_path, LINES)
    f = host_findings(cfg, interfaces={"lo", "eth0"})
    assert f.unusable == []
    got = [(p.file, p.line, p.message.split(" does not exist")[0]) for p in f.worked_around]
    assert got == [
        (
            path,
            22,
            "vrrp_instance VI_1: interface gone6 of virtual rule 'to 203.0.113.0/24 table 100 oif gone6'",
        ),
        (path, 3, "static_ipaddress: interface gone1 of address 192.0.2.18"),
        (path, 6, "static_routes: interface gone2 of route '198.51.100.0/24 dev gone2'"),
        (
            path,
            7,
            "static_routes: interface gone3 of route '198.51.101.0/24 nexthop via 192.0.2.254 dev eth0 "
            "nexthop via 192.0.2.253 dev gone3'",
        ),
        (
            path,
            10,
            "static_rules: interface gone4 of rule 'from 198.51.100.0/24 table 100 iif gone4 oif eth0'",
        ),
        (path, 19, "vrrp_instance VI_1: VRF gone5 of route '203.0.113.0/24 dev eth0 vrf gone5'"),
    ]
    every = {"lo", "eth0", *(f"gone{i}" for i in range(1, 7))}
    assert host_findings(cfg, interfaces=every).worked_around == []


def test_dynamic_interfaces_waits_for_them(tmp_path):
    """With dynamic_interfaces keepalived 2.2.7 -t says nothing of interfaces that are not there yet, except a
    route's VRF; fastvrrp's daemon cannot start an instance without its own interface."""
    cfg, _path = _cfg(tmp_path, "global_defs {\n    dynamic_interfaces\n}\n" + LINES)
    f = host_findings(cfg, interfaces={"lo"})
    assert [p.line for p in f.unusable] == [15]
    assert [p.message.split(" does not")[0] for p in f.worked_around] == [
        "vrrp_instance VI_1: VRF gone5 of route '203.0.113.0/24 dev eth0 vrf gone5'"
    ]


NO_DEV = """\
static_ipaddress {
    192.0.2.16/24
    192.0.2.17/24 dev eth0
}
"""


def test_a_static_address_without_dev_is_on_the_default_interface(tmp_path):
    """keepalived 2.2.7 puts such a line on default_interface (eth0 unless set) and refuses the file when that
    interface is missing ("Static address 192.0.2.16/24 requires either an interface or default interface
    must exist": -t exits 4); so does fastvrrp."""
    cfg, path = _cfg(tmp_path, NO_DEV)
    assert host_findings(cfg, interfaces={"lo", "eth0"}).worked_around == []
    f = host_findings(cfg, interfaces={"lo", "lan0"})
    assert [(p.file, p.line, p.message) for p in f.unusable] == [
        (path, 2, "static_ipaddress: address 192.0.2.16 names no interface and eth0 is not here")
    ]
    assert [(p.line, p.message.split(" does not")[0]) for p in f.worked_around] == [
        (3, "static_ipaddress: interface eth0 of address 192.0.2.17")
    ]
    cfg, path = _cfg(tmp_path, "global_defs {\n    default_interface lan0\n}\n" + NO_DEV)
    assert cfg.global_defs.default_interface == "lan0"
    assert host_findings(cfg, interfaces={"lo", "lan0"}).unusable == []
    assert [p.line for p in host_findings(cfg, interfaces={"lo", "eth0"}).unusable] == [5]
