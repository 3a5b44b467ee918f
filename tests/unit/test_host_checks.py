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
        "vrrp_instance VI_1: tracked interface uplink0 does not exist here: not tracked, as keepalived does",
        "vrrp_instance VI_1: interface eth1 for address 192.0.2.5 does not exist here",
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
