"""global_defs' startup_script and shutdown_script, with keepalived 2.2.7 run beside fastvrrp as the oracle:
the startup script runs before the VIP is on the interface, the shutdown script after it is gone, and a
startup script that outlives its timeout is killed and the start goes on."""

from __future__ import annotations

import os

import pytest

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

A = 100  # ms


def routers(lab, keepalived_bin, lines_of):
    lan = Lan(lab, routers=2, client=False)
    out = []
    for i, kind in enumerate(("keepalived", "fastvrrp"), 1):
        spec = InstanceSpec(vrid=50 + i, priority=150, advert_int_ms=A, vips=(f"192.0.2.{100 + i}/24",))
        r = lan.router(i, kind, [spec], keepalived_bin=keepalived_bin)
        r.global_lines = lines_of(r)
        out.append(r)
    return out


def test_startup_before_the_vip_and_shutdown_after_it_as_keepalived(lab, keepalived_bin):
    def lines(r):
        out = os.path.join(lab.workdir, r.name)
        start = lab.script(f"{r.name}-start.sh", f"/usr/sbin/ip -o addr show dev eth0 > {out}.start")
        stop = lab.script(f"{r.name}-stop.sh", f"/usr/sbin/ip -o addr show dev eth0 > {out}.stop")
        return [f"startup_script {start}", f"shutdown_script {stop}"]

    pair = routers(lab, keepalived_bin, lines)
    for r in pair:
        r.start()
    for r in pair:
        r.wait_state("MASTER", timeout=15)
        vip = r.instances[0].vip_addrs[0]
        wait_for(lambda r=r: r.has_vip(r.instances[0].vip_addrs[0]), timeout=10, what=f"{r.kind}'s VIP")
        with open(os.path.join(lab.workdir, f"{r.name}.start")) as f:
            seen = f.read()
        assert f"{r.addr4}/24" in seen and f"{vip}/24" not in seen, (r.kind, seen)  # before the VIP came
        assert r.stop() == 0
        with open(os.path.join(lab.workdir, f"{r.name}.stop")) as f:
            seen = f.read()
        assert f"{r.addr4}/24" in seen and f"{vip}/24" not in seen, (r.kind, seen)  # and after it went


def test_a_startup_script_past_its_timeout_is_killed_and_the_start_goes_on(lab, keepalived_bin):
    def lines(r):
        pid_file = os.path.join(lab.workdir, f"{r.name}.sleeper")
        slow = lab.script(f"{r.name}-slow.sh", f"echo $$ > {pid_file}\nexec sleep 60")
        return [f"startup_script {slow}", "startup_script_timeout 1"]

    pair = routers(lab, keepalived_bin, lines)
    for r in pair:
        r.start()
    for r in pair:
        r.wait_state("MASTER", timeout=30)  # not held for the 60 s of the script
        with open(os.path.join(lab.workdir, f"{r.name}.sleeper")) as f:
            pid = int(f.read())
        wait_for(
            lambda pid=pid: not os.path.exists(f"/proc/{pid}"), timeout=10, what=f"{r.kind}'s script killed"
        )
        assert r.stop() == 0
