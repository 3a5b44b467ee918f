"""vrrp_strict / strict_mode (keepalived.conf(5)): each rule of the list refuses the configuration with the
line of the offending keyword; what strict mode changes in a valid configuration (accept,
lower_prio_no_advert) reaches the model and the core."""

from __future__ import annotations

import pytest

from fastvrrp.config import check
from fastvrrp.config.to_core import instance_config

HEAD = "global_defs {\n vrrp_strict\n}\n"  # lines 1-3; the instance starts on line 4


def conf(body: str, vips: str = "192.0.2.5/24", head: str = HEAD) -> str:
    # line 4: vrrp_instance, 5: interface, 6: virtual_router_id, 7...: body, then the VIP block
    block = f" virtual_ipaddress {{\n  {vips}\n }}\n" if vips else ""
    return f"{head}vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 5\n{body}\n{block}}}\n"


def run(tmp_path, text, strict=False):
    p = tmp_path / "k.conf"
    p.write_text(text)
    return check(str(p), "x", strict=strict)


W = "vrrp_instance VI_1: strict mode "
STRICT = " [refused: strict configuration]"


@pytest.mark.parametrize(
    "body,vips,line,message",
    [
        (" priority 100", "", 4, W + "needs at least one virtual_ipaddress (RFC 5798 5.2.6)"),
        (" version 3", "2001:db8::5/64", 9, W + "needs a link-local first IPv6 VIP (RFC 5798 5.2.9)"),
        (
            " unicast_peer {\n  192.0.2.9\n }",
            "192.0.2.5/24",
            7,
            W + "does not allow unicast peers (RFC 5798 5.1.1.2: multicast only)",
        ),
        (
            " state MASTER\n priority 100",
            "192.0.2.5/24",
            7,
            W + "allows state MASTER only at priority 255 (the address owner): starting as BACKUP, as "
            "keepalived does" + STRICT,
        ),
        (
            " priority 255",
            "192.0.2.5/24",
            4,
            W + "allows state MASTER if and only if priority is 255 (the address owner)",
        ),
        (" preempt_delay 5", "192.0.2.5/24", 7, W + "does not allow preempt_delay (not in RFC 5798)"),
        (
            " lower_prio_no_advert false",
            "192.0.2.5/24",
            7,
            W + "does not allow clearing lower_prio_no_advert",
        ),
        (" higher_prio_send_advert", "192.0.2.5/24", 7, W + "does not allow higher_prio_send_advert"),
        (" use_vmac\n vmac_xmit_base", "192.0.2.5/24", 8, W + "does not allow vmac_xmit_base"),
        (" accept", "192.0.2.5/24", 7, W + "does not allow accept mode with VRRP version 2"),
        (
            " authentication {\n  auth_type PASS\n  auth_pass x\n }",
            "192.0.2.5/24",
            7,
            W + "does not allow authentication: advertising without it, as keepalived does" + STRICT,
        ),
    ],
)
def test_each_strict_rule_refuses_the_config(tmp_path, body, vips, line, message):
    """With strict configuration (the adjustments refused too: those end in STRICT)."""
    cfg, problems, _ = run(tmp_path, conf(body, vips), strict=True)
    assert cfg is None
    assert [(p.line, p.message) for p in problems] == [(line, message)]


def test_stock_config_starts_as_backup_without_authentication(tmp_path):
    """Debian's stock keepalived.conf: vrrp_strict, state MASTER at priority 100, PASS authentication.
    keepalived 2.2.7 logs "(VI_1) State MASTER must match being address owner" and "Strict mode does not
    support authentication. Ignoring." and starts the instance as BACKUP without authentication."""
    body = " state MASTER\n priority 100\n authentication {\n  auth_type PASS\n  auth_pass 1111\n }"
    cfg, problems, warnings = run(tmp_path, conf(body, "192.0.2.5/24"))
    assert problems == [] and cfg is not None
    i = cfg.instances[0]
    assert (i.state, i.priority, i.auth_type, i.auth_pass) == ("BACKUP", 100, None, None)
    assert [w.line for w in warnings] == [7, 9]
    assert "starting as BACKUP" in warnings[0].message and "without it" in warnings[1].message


def test_the_same_configs_are_fine_without_strict(tmp_path):
    for body in (" preempt_delay 5", " higher_prio_send_advert", " accept", " state MASTER\n priority 100"):
        cfg, problems, _ = run(tmp_path, conf(body, head=""))
        assert problems == [] and cfg is not None


def test_strict_mode_per_instance_and_off_overrides_global(tmp_path):
    cfg, problems, _ = run(tmp_path, conf(" strict_mode\n preempt_delay 5", head=""))
    assert cfg is None and problems[0].message.endswith("does not allow preempt_delay (not in RFC 5798)")
    cfg, problems, _ = run(tmp_path, conf(" strict_mode off\n preempt_delay 5"))
    assert problems == [] and cfg is not None


def test_strict_defaults_reach_the_model_and_the_core(tmp_path):
    # Non-owner: no accept (RFC 5798 6.1 Accept_Mode False), no advert to a lower priority.
    cfg, problems, _ = run(tmp_path, conf(" version 3\n priority 100"))
    assert problems == []
    i = cfg.instance("VI_1")
    assert (i.strict_mode, i.accept, i.lower_prio_no_advert) == (True, False, True)
    assert instance_config(i, "192.0.2.1").lower_prio_no_advert is True
    # Owner: accept defaults on, and accept may be written for v3.
    cfg, problems, _ = run(tmp_path, conf(" version 3\n state MASTER\n priority 255"))
    assert problems == [] and cfg.instance("VI_1").accept is True
    cfg, problems, _ = run(tmp_path, conf(" version 3\n accept"))
    assert problems == [] and cfg.instance("VI_1").accept is True
    # An IPv6 instance with a link-local first VIP is fine.
    cfg, problems, _ = run(tmp_path, conf("", "fe80::5/64\n  2001:db8::5/64"))
    assert problems == [] and cfg.instance("VI_1").family == 6
