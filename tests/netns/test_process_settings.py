"""The process settings of global_defs (vrrp_priority, vrrp_no_swap, vrrp_cpu_affinity, vrrp_rt_priority with
vrrp_rlimit_rttime, max_auto_priority with min_auto_priority_delay), with keepalived 2.2.7 as the oracle:
its VRRP process and fastvrrp, given the same lines, must show the kernel the same nice value, CPUs, locked
memory, scheduling policy and priority, and realtime CPU limit (/proc). fastvrrp has threads: each of them
must carry the settings."""

from __future__ import annotations

import os
import signal
import time

import pytest

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

A = 100  # ms
SCHED_RR = 2


def vrrp_pid(r) -> int:
    """keepalived's VRRP process (its pid file), or fastvrrp's daemon."""
    if r.kind == "fastvrrp":
        return r.proc.pid
    path = r.pidfiles[1]
    wait_for(lambda: os.path.exists(path) and open(path).read().strip(), timeout=10, what="the VRRP pid file")
    with open(path) as f:
        return int(f.read())


def task_settings(pid: int, tid: int | None = None) -> dict:
    """What the kernel holds for a thread (the process's main one by default)."""
    base = f"/proc/{pid}/task/{tid or pid}"
    with open(f"{base}/stat") as f:
        after = f.read().rsplit(")", 1)[1].split()  # after[0] is field 3 (state)
    with open(f"{base}/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    with open(f"/proc/{pid}/limits") as f:
        rt = next(line.split()[3:5] for line in f if line.startswith("Max realtime timeout"))
    return {
        "nice": int(after[19 - 3]),
        "rt_priority": int(after[40 - 3]),
        "policy": int(after[41 - 3]),
        "cpus": status["Cpus_allowed_list"].strip(),
        "locked": int(status["VmLck"].split()[0]) > 0,
        "rttime": tuple(rt),
    }


def pair(lab, keepalived_bin, lines: list[str]):
    lan = Lan(lab, routers=2, client=False)
    routers = []
    for i, (kind, vrid) in enumerate((("keepalived", 51), ("fastvrrp", 52)), 1):
        spec = InstanceSpec(vrid=vrid, priority=150, advert_int_ms=A, vips=(f"192.0.2.{100 + i}/24",))
        r = lan.router(i, kind, [spec], keepalived_bin=keepalived_bin)
        r.global_lines = list(lines)
        r.start()
        routers.append(r)
    for r in routers:
        r.wait_state("MASTER", timeout=15)
    return routers


def threads(pid: int) -> list[int]:
    return [int(t) for t in os.listdir(f"/proc/{pid}/task")]


def test_nice_cpus_and_locked_memory_as_keepalived(lab, keepalived_bin):
    cpu = str(os.sysconf("SC_NPROCESSORS_ONLN") - 1)
    ka, fv = pair(lab, keepalived_bin, ["vrrp_priority -7", "vrrp_no_swap", f"vrrp_cpu_affinity {cpu}"])
    want = task_settings(vrrp_pid(ka))
    assert (want["nice"], want["cpus"], want["locked"], want["policy"]) == (-7, cpu, True, 0), want
    pid = vrrp_pid(fv)
    wait_for(lambda: task_settings(pid) == want, timeout=10, what="fastvrrp's settings to be keepalived's")
    assert len(threads(pid)) > 1
    for tid in threads(pid):
        assert {k: v for k, v in task_settings(pid, tid).items() if k != "locked"} == {
            k: v for k, v in want.items() if k != "locked"
        }, tid


def test_realtime_priority_and_its_cpu_limit_as_keepalived(lab, keepalived_bin):
    ka, fv = pair(lab, keepalived_bin, ["vrrp_rt_priority 7", "vrrp_rlimit_rttime 80000"])
    want = task_settings(vrrp_pid(ka))
    assert (want["policy"], want["rt_priority"], want["rttime"]) == (SCHED_RR, 7, ("40000", "80000")), want
    pid = vrrp_pid(fv)
    wait_for(lambda: task_settings(pid) == want, timeout=10, what="fastvrrp's settings to be keepalived's")
    for tid in threads(pid):
        assert task_settings(pid, tid)["policy"] == SCHED_RR, tid
    # the policy is not passed on to what the daemon forks (its scripts), as keepalived's
    assert (
        os.sched_getscheduler(pid) == os.sched_getscheduler(vrrp_pid(ka)) == SCHED_RR | os.SCHED_RESET_ON_FORK
    )
    # SIGXCPU (the kernel's warning at half of vrrp_rlimit_rttime): keepalived logs it and stays realtime,
    # to be killed at the limit and restarted by its parent; fastvrrp, which has no parent to restart it,
    # goes back to normal scheduling (docs/keepalived-config.md#process-settings)
    os.kill(pid, signal.SIGXCPU)
    wait_for(lambda: "SIGXCPU" in fv.log(), timeout=10, what="the SIGXCPU logged")  # logged after the drop
    assert task_settings(pid)["policy"] == 0 and fv.alive()


def stall(r, pid: int, seconds: float) -> None:
    """SIGSTOP the process for at least `seconds` (past its next timer), then SIGCONT it."""
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] in "Tt", timeout=5)
        t0 = time.monotonic()
        wait_for(lambda: time.monotonic() > t0 + seconds, timeout=seconds + 5, what="the stall")
    finally:
        os.kill(pid, signal.SIGCONT)


def test_max_auto_priority_raises_a_late_daemon_step_by_step(lab, keepalived_bin):
    """keepalived.conf(5): a process not scheduled often enough goes to realtime scheduling, then up one step
    per late wake-up, to max_auto_priority. keepalived 2.2.7 notices a late wake-up only now and then (here:
    at the 4th of six 300 ms stops, and never a second time), so its VRRP process serves as the oracle of
    what the first step sets (as `vrrp_rt_priority 1` with the default vrrp_rlimit_rttime), and fastvrrp is
    stopped and resumed: each stop longer than min_auto_priority_delay is one step."""
    lan = Lan(lab, routers=2, client=False)
    ka = lan.router(
        1, "keepalived", [InstanceSpec(vrid=51, priority=150, advert_int_ms=A)], keepalived_bin=keepalived_bin
    )
    fv = lan.router(
        2, "fastvrrp", [InstanceSpec(vrid=52, priority=150, advert_int_ms=A, vips=("192.0.2.102/24",))]
    )
    ka.global_lines = ["vrrp_rt_priority 1"]
    fv.global_lines = ["max_auto_priority 3", "min_auto_priority_delay 100000"]
    for r in (ka, fv):
        r.start()
    for r in (ka, fv):
        r.wait_state("MASTER", timeout=15)
    pid = vrrp_pid(fv)
    assert task_settings(pid)["policy"] == 0  # on time so far: normal scheduling
    for step in (1, 2, 3, 3):
        stall(fv, pid, 0.6)  # the master's 100 ms advert timer comes due while it is stopped
        wait_for(
            lambda step=step: task_settings(pid)["rt_priority"] == step,
            timeout=10,
            what=f"fastvrrp at realtime priority {step}",
        )
        if step == 1:
            want = task_settings(vrrp_pid(ka))
            assert task_settings(pid) == want
            assert os.sched_getscheduler(pid) == os.sched_getscheduler(vrrp_pid(ka))
        fv.ctl("status")  # served after the resumed loop handled its late timer
    assert (want["policy"], want["rttime"]) == (SCHED_RR, ("5000", "10000"))
    assert task_settings(pid)["rt_priority"] == 3
    assert fv.log().count("late: raising the realtime priority") == 3
