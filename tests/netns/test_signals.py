"""Real signals to a running fastvrrp master in a namespace: keepalived's dump signals write its dump files,
SIGTERM and SIGINT hand over with priority 0, SIGHUP reloads, and every other signal an operator or a
library may send is ignored: the master is still running, still advertising, and sent no priority 0."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import time

import pytest

from fastvrrp.daemon.signals import SIGFUNC
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan, Router

pytestmark = pytest.mark.netns

A = 100  # ms
VIP = "192.0.2.100"
SPEC = InstanceSpec(vrid=51, advert_int_ms=A, vips=(f"{VIP}/24",))
NAMED = (
    "SIGPIPE", "SIGALRM", "SIGIO", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGURG", "SIGTTIN", "SIGTTOU",
    "SIGTSTP", "SIGXFSZ", "SIGXCPU", "SIGPWR", "SIGSTKFLT", "SIGQUIT",
)  # fmt: skip
REALTIME = [n for n in range(int(signal.SIGRTMIN), int(signal.SIGRTMAX) + 1) if n not in SIGFUNC.values()]


def fastvrrp(lan: Lan, index: int, priority: int, dump_dir: str | None = None) -> Router:
    r = lan.router(index, "fastvrrp", [InstanceSpec(**{**SPEC.__dict__, "priority": priority})])
    if dump_dir:
        os.makedirs(dump_dir, exist_ok=True)
        r.extra_args = ["--dump-dir", dump_dir]
    return r


def proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def still_master(tap, r: Router, what: str, since: float) -> None:
    """After `since`: two more adverts from `r` with its priority, none with priority 0, r alive and not
    stopped, the VIP still on r."""

    def advertising() -> bool:
        assert r.alive(), f"{what} killed fastvrrp (exit {r.proc.popen.returncode}):\n{r.log()[-2000:]}"
        return len([e for e in tap.adverts(51, r.addr4, after=since) if e.priority > 0]) >= 2

    wait_for(advertising, timeout=5, what=f"adverts from the master after {what}")
    assert proc_state(r.proc.pid) not in ("T", "t"), f"{what} stopped fastvrrp"
    assert not [e for e in tap.adverts(51, r.addr4, after=since) if e.priority == 0], (
        f"{what}: priority 0 sent"
    )
    assert r.has_vip(VIP), f"{what}: VIP gone"
    assert r.state() == "MASTER", what


@pytest.fixture
def master(lab):
    lan = Lan(lab, routers=2, client=False)
    m = fastvrrp(lan, 1, 200, os.path.join(lab.workdir, "dumps"))
    with lan.tap() as tap:
        m.start()
        m.wait_state("MASTER", timeout=15)
        wait_for(lambda: m.has_vip(VIP), timeout=5, what="VIP on the master")
        yield lan, m, tap


@pytest.mark.parametrize("names", [NAMED, REALTIME], ids=["named", "realtime"])
def test_other_signals_are_ignored(master, names):
    _, m, tap = master
    for sig in names:
        num = int(getattr(signal, sig)) if isinstance(sig, str) else sig
        what = sig if isinstance(sig, str) else f"signal {sig} (SIGRTMIN+{sig - int(signal.SIGRTMIN)})"
        t = time.time()
        os.kill(m.proc.pid, num)
        still_master(tap, m, what, t)
    assert m.stop() == 0


def read_when_written(path: str, after_mtime: float) -> str:
    wait_for(
        lambda: os.path.exists(path) and os.stat(path).st_mtime >= after_mtime, timeout=10, what=f"{path}"
    )
    with open(path) as f:
        return f.read()


def test_dump_signals_write_keepalived_files(master, lab):
    _, m, tap = master
    d = os.path.join(lab.workdir, "dumps")
    files = {}
    for sig, name in ((signal.SIGUSR1, "data"), (signal.SIGUSR2, "stats"), (SIGFUNC["JSON"], "json")):
        t = time.time()
        path = os.path.join(d, f"keepalived.{name}")
        os.kill(m.proc.pid, sig)
        files[name] = read_when_written(path, t - 1)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        still_master(tap, m, f"signal {int(sig)}", t)
    assert " VRRP Instance = VI_51\n   VRRP Version = 3\n   State = MASTER\n" in files["data"]
    assert files["stats"].startswith("VRRP Instance: VI_51\n  Advertisements:\n")
    doc = json.loads(files["json"])
    assert [e["data"]["iname"] for e in doc] == ["VI_51"]
    assert (doc[0]["data"]["state"], doc[0]["data"]["vipset"], doc[0]["stats"]["become_master"]) == (
        2,
        True,
        1,
    )
    sent = doc[0]["stats"]["advert_sent"]
    assert sent >= 2
    assert sorted(os.listdir(d)) == [
        "keepalived.data",
        "keepalived.json",
        "keepalived.stats",
    ]  # no temp files

    # STATS_CLEAR: the stats as they were, then counting from zero
    stats_path = os.path.join(d, "keepalived.stats")
    os.unlink(stats_path)
    t = time.time()
    os.kill(m.proc.pid, SIGFUNC["STATS_CLEAR"])
    cleared = read_when_written(stats_path, t - 1)
    assert "  Became master: 1\n" in cleared
    os.unlink(stats_path)
    os.kill(m.proc.pid, signal.SIGUSR2)
    after = read_when_written(stats_path, t - 1)
    assert "  Became master: 0\n" in after
    json_path = os.path.join(d, "keepalived.json")
    os.unlink(json_path)
    os.kill(m.proc.pid, SIGFUNC["JSON"])
    doc = json.loads(read_when_written(json_path, t - 1))
    assert doc[0]["stats"]["become_master"] == 0
    still_master(tap, m, "STATS_CLEAR", t)

    # A dump that cannot be written is logged; the daemon goes on.
    shutil.rmtree(d)
    t = time.time()
    os.kill(m.proc.pid, signal.SIGUSR1)
    wait_for(
        lambda: f"cannot write {d}/keepalived.data" in m.log(), timeout=10, what="the write error logged"
    )
    still_master(tap, m, "SIGUSR1 into a missing directory", t)
    assert m.stop() == 0


def test_sighup_reloads_and_keeps_the_master(master):
    _, m, tap = master
    t = time.time()
    m.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in m.log(), timeout=10, what="the reload")
    still_master(tap, m, "SIGHUP", t)
    assert m.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signals_hand_over_with_priority_zero(master, sig):
    lan, m, tap = master
    b = fastvrrp(lan, 2, 100)
    b.start()
    b.wait_state("BACKUP", timeout=15)
    wait_for(lambda: len(tap.adverts(51, m.addr4, after=time.time() - 1)) >= 3, timeout=5, what="adverts")
    t = time.time()
    assert m.proc.stop(sig, timeout=10) == 0
    zero = [e for e in tap.adverts(51, m.addr4, after=t) if e.priority == 0]
    assert zero, f"{sig.name}: no priority-0 advert (RFC 5798 6.4.3 handover)"
    b.wait_state("MASTER", timeout=5)
    first = wait_for(lambda: tap.first_advert_from(b.addr4, 51, after=t), timeout=5, what="takeover")
    # priority 0 means the backup waits Skew_Time, not Master_Down_Interval (RFC 5798 6.4.2)
    assert (first.t - zero[0].t) * 1000 < 3 * A, (first.t - zero[0].t) * 1000
    assert not m.has_vip(VIP)
    assert b.stop() == 0


@pytest.mark.slow
def test_dumps_of_a_thousand_instances_keep_the_adverts_on_time(lab):
    """1,000 masters (250 IPv6 instances on each of 4 interfaces, A = 1 s; the capture sees eth0's): each
    dump is written while the adverts keep their interval (the text is built a hundred instances per loop
    turn)."""
    a_ms = 1000
    lan = Lan(lab, routers=1, client=False)
    ns = lan.router_ns[0]
    specs = []
    for k in range(4):
        if k:
            lab.veth(ns, f"eth{k}", lan.switch, f"p1x{k}")  # a segment of its own (not on the bridge)
        specs += [
            InstanceSpec(vrid=v, priority=200, advert_int_ms=a_ms, interface=f"eth{k}", name=f"VI_{k}_{v}",
                         vips=(f"2001:db8:{k}::{v:x}/64",))
            for v in range(1, 251)
        ]  # fmt: skip
    d = os.path.join(lab.workdir, "dumps")
    os.makedirs(d)
    r = lan.router(1, "fastvrrp", specs)
    r.extra_args = ["--dump-dir", d]
    with lan.tap() as tap:
        r.start()
        r.wait_all("MASTER", timeout=120)
        src = r.source(6)
        results = []
        for sig, name in ((signal.SIGUSR1, "data"), (signal.SIGUSR2, "stats"), (SIGFUNC["JSON"], "json")):
            path = os.path.join(d, f"keepalived.{name}")
            t = time.time()
            os.kill(r.proc.pid, sig)
            text = read_when_written(path, t - 1)
            took = time.time() - t
            wait_for(
                lambda t=t: tap.adverts(1, src, after=t + 1.5), timeout=10, what="adverts after the dump"
            )
            # The adverts of eth0's 250 instances around the dump: none more than a quarter interval late.
            worst = 0.0
            for vrid in range(1, 251):
                times = [e.t for e in tap.adverts(vrid, src, after=t - 2.5)]
                worst = max([worst, *(b - a for a, b in zip(times, times[1:], strict=False))])
            results.append(
                f"{name}: {len(text)} B in {took * 1000:.0f} ms, worst advert gap {worst * 1000:.0f} ms"
            )
            assert worst < a_ms / 1000 * 1.25, results[-1]
        print("\n1000 instances:", "; ".join(results))
        assert json.loads(open(os.path.join(d, "keepalived.json")).read())[999]["data"]["iname"] == "VI_3_250"
    assert r.stop(timeout=60) == 0


def test_scripts_get_every_signal_at_its_default(lab):
    """The daemon catches the signals it does not use rather than ignoring them: an ignored signal would stay
    ignored in every notify and track script it runs (SIG_IGN survives exec)."""
    lan = Lan(lab, routers=1, client=False)
    out = os.path.join(lab.workdir, "sigign")
    script = os.path.join(lab.workdir, "notify.sh")
    with open(script, "w") as f:
        f.write(f"#!/bin/sh\ngrep -E '^Sig(Ign|Blk):' /proc/$$/status > {out}.tmp && mv {out}.tmp {out}\n")
    os.chmod(script, 0o755)
    r = lan.router(
        1,
        "fastvrrp",
        [InstanceSpec(**{**SPEC.__dict__, "priority": 200, "extra": (f"notify_master {script}",)})],
    )
    r.global_lines = ["enable_script_security", "script_user root"]
    r.start()
    r.wait_state("MASTER", timeout=15)
    wait_for(lambda: os.path.exists(out), timeout=10, what="the notify script's report")
    with open(out) as f:
        masks = dict(line.split(":") for line in f.read().splitlines())
    # Nothing ignored but 32 and 33, glibc's own (thread cancellation, setxid), which the runner's start-up
    # code in the child leaves so; bit n-1 stands for signal n.
    glibc = (1 << 31) | (1 << 32)
    assert int(masks["SigIgn"].strip(), 16) & ~glibc == 0, masks
    assert int(masks["SigBlk"].strip(), 16) == 0, masks  # nothing blocked
    assert r.stop() == 0
