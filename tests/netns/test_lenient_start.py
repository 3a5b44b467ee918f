"""Where keepalived 2.2.7 starts a file by working around a problem, fastvrrp starts it with the same
meaning and a warning naming FILE:LINE; with --strict-config it refuses, at start and at reload (the
running configuration stays in charge)."""

from __future__ import annotations

import signal
import time

import pytest

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

A = 100
VIP = "192.0.2.100"


def test_stock_config_runs_as_keepalived_runs_it(lab, keepalived_bin):
    """Debian's stock keepalived.conf: vrrp_strict, state MASTER at priority 150 (not the owner), PASS
    authentication. keepalived starts it as BACKUP ("State MASTER must match being address owner") and
    without authentication ("Strict mode does not support authentication. Ignoring."). fastvrrp does the
    same: its adverts reach a keepalived peer configured without authentication, which stays BACKUP."""
    lan = Lan(lab, routers=2, client=False)
    stock = InstanceSpec(
        vrid=51, priority=150, version=2, advert_int_ms=1000, state="MASTER", auth_pass="1111"
    )
    m = lan.router(1, "fastvrrp", [stock])
    m.global_lines = ["vrrp_strict"]
    peer = InstanceSpec(vrid=51, priority=100, version=2, advert_int_ms=1000)
    b = lan.router(2, "keepalived", [peer], keepalived_bin=keepalived_bin)
    m.start()
    m.wait_state("MASTER", timeout=15)
    assert m.transitions("VI_51")[0] == "BACKUP", m.log()[-2000:]  # started as BACKUP, not MASTER
    log = m.log()
    conf = m.conf_path
    assert f"{conf}:" in log and "starting as BACKUP, as keepalived does" in log, log[-2000:]
    assert "advertising without it, as keepalived does" in log
    b.start()
    b.wait_state("BACKUP", timeout=15)
    time.sleep(4.0)  # the observation window: longer than keepalived's Master_Down_Interval (3.6 s)
    assert b.state() == "BACKUP", b.log()[-2000:]  # it accepts fastvrrp's adverts: no authentication
    assert m.state() == "MASTER"
    assert m.stop() == 0 and b.stop() == 0


def _start_then_reload_with_an_adjustment(lan, tap, strict: bool):
    one = InstanceSpec(vrid=51, priority=200, advert_int_ms=A, vips=(f"{VIP}/24",))
    m = lan.router(1, "fastvrrp", [one])
    if strict:
        m.extra_args = ["--strict-config"]
    m.start()
    m.wait_state("MASTER", timeout=10)
    wait_for(lambda: tap.adverts(51, m.addr4), timeout=5, what="adverts")
    # a second instance with a keyword keepalived does not know (it skips it and starts the file)
    two = InstanceSpec(
        vrid=52, priority=200, advert_int_ms=A, vips=("192.0.2.101/24",), extra=("no_such_keyword 1",)
    )
    m.instances = [one, two]
    m.write_config()
    m.proc.send_signal(signal.SIGHUP)
    return m


def test_reload_with_an_adjustment_is_applied_with_a_warning(lab):
    lan = Lan(lab, routers=1, client=False)
    with lan.tap() as tap:
        m = _start_then_reload_with_an_adjustment(lan, tap, strict=False)
        wait_for(lambda: tap.adverts(52, m.addr4), timeout=5, what="the new instance advertising")
    log = m.log()
    assert f"{m.conf_path}:" in log and "unknown keyword 'no_such_keyword' in vrrp_instance: ignored" in log
    assert m.stop() == 0


def test_strict_config_refuses_a_reload_and_keeps_the_running_one(lab):
    lan = Lan(lab, routers=1, client=False)
    with lan.tap() as tap:
        m = _start_then_reload_with_an_adjustment(lan, tap, strict=True)
        wait_for(lambda: "reload refused" in m.log(), timeout=5, what="the refusal in the log")
        assert "[refused: strict configuration]" in m.log()
        t2 = time.time()
        time.sleep(5 * A / 1000)  # the observation window: the old instance goes on, the new one never starts
        assert tap.adverts(51, m.addr4, after=t2)
        assert tap.adverts(52) == []
    assert m.state() == "MASTER"
    assert m.stop() == 0


def test_skipped_addresses_and_a_doubled_instance_as_keepalived_runs_them(lab):
    """keepalived 2.2.7 ignores a VIP of the other family ("address family must match VRRP instance [...] -
    ignoring"), skips an invalid one ("VRRP parsed invalid IP ... skipping IP...") and a second
    vrrp_instance of one name ("vrrp instance VI_51 already defined"); fastvrrp's daemon starts the file the
    same way: master with the IPv4 VIP only, the second block's VRID never advertised."""
    lan = Lan(lab, routers=1, client=False)
    one = InstanceSpec(vrid=51, priority=200, advert_int_ms=A, vips=(f"{VIP}/24", "2001:db8::100/64"))
    m = lan.router(1, "fastvrrp", [one])
    m.blocks = "vrrp_instance VI_51 {\n    interface eth0\n    virtual_router_id 52\n}\n"
    m.instances = [one]
    with lan.tap() as tap:
        m.start()
        m.wait_state("MASTER", timeout=10)
        wait_for(lambda: tap.adverts(51, m.addr4), timeout=5, what="VRID 51 advertising")
        t = time.time()
        time.sleep(5 * A / 1000)  # the observation window: VRID 52 would have advertised by now
        assert tap.adverts(52) == [] and tap.adverts(51, m.addr4, after=t)
    addrs = lab.sh(m.ns, "ip -o addr show dev eth0")
    assert f"{VIP}/24" in addrs and "2001:db8::100" not in addrs
    log = m.log()
    assert f"{m.conf_path}:" in log and "is IPv6 but the instance is IPv4" in log
    assert "vrrp_instance 'VI_51' is already defined" in log
    assert m.stop() == 0
