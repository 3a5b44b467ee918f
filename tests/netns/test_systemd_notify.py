"""systemd's notify protocol from the real daemon: the test binds the datagram socket systemd would, starts
fastvrrp with NOTIFY_SOCKET (and WATCHDOG_USEC), and sends it real signals. Every datagram is stamped by the
kernel when it was sent (SO_TIMESTAMPNS), so its order against the wire capture and the signals is the
daemon's, not this thread's."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan, Router
from fastvrrp.lab.wiretap import SO_TIMESTAMPNS

pytestmark = pytest.mark.netns

A = 100  # ms adverts
_TIMESPEC = struct.Struct("@ll")


@dataclass
class Message:
    t: float  # kernel time of the send, clock of time.time()
    fields: dict[str, str]
    log: str  # the daemon's log when the datagram arrived (READY=1 only; "" otherwise)

    def __contains__(self, key: str) -> bool:
        return key in self.fields

    def __getitem__(self, key: str) -> str:
        return self.fields[key]


class NotifyListener:
    """systemd's side: a bound AF_UNIX datagram socket and a thread that keeps what arrives."""

    def __init__(self, path: str, router_log: Callable[[], str] | None = None) -> None:
        self.path = path
        self.router_log = router_log
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.settimeout(0.2)
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(65536, socket.CMSG_SPACE(_TIMESPEC.size))
            except TimeoutError:
                continue
            except OSError:
                return
            t = time.time()
            for level, ctype, cdata in anc:
                if level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack(cdata[: _TIMESPEC.size])
                    t = sec + nsec / 1e9
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            snap = self.router_log() if "READY" in fields and self.router_log else ""
            with self._lock:
                self.messages.append(Message(t, fields, snap))

    def all(self, key: str | None = None, after: float = 0.0) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if (key is None or key in m) and m.t > after]

    def wait(self, key: str, after: float = 0.0, timeout: float = 10.0) -> Message:
        got = wait_for(lambda: self.all(key, after), timeout=timeout, what=f"{key}= from the daemon")
        return got[0]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def notifying_router(lab, lan: Lan, index: int, instances, **env: str) -> tuple[Router, NotifyListener]:
    r = lan.router(index, "fastvrrp", instances)
    listener = NotifyListener(os.path.join(lab.workdir, f"notify-{index}"), r.log)
    r.env = {"NOTIFY_SOCKET": listener.path, **env}
    return r, listener


def spec(vrid: int, prio: int) -> InstanceSpec:
    return InstanceSpec(vrid=vrid, priority=prio, advert_int_ms=A, vips=(f"192.0.2.{vrid}/24",))


@pytest.fixture
def listeners():
    made: list[NotifyListener] = []
    yield made
    for listener in made:
        listener.close()


def test_ready_after_initial_states_and_status_counts(lab, listeners):
    lan = Lan(lab, routers=2, client=False)
    other = lan.router(2, "fastvrrp", [spec(51, 100), spec(52, 200), spec(53, 200)])
    other.start()
    other.wait_all("MASTER", timeout=15)
    r, listener = notifying_router(lab, lan, 1, [spec(51, 200), spec(52, 100), spec(53, 100)])
    listeners.append(listener)
    r.start()
    ready = listener.wait("READY", timeout=15)
    # Nothing before READY=1, and by then every instance had entered its initial state (BACKUP: a higher
    # priority master is not assumed before Master_Down_Interval).
    assert listener.all()[0] is ready
    for name in ("VI_51", "VI_52", "VI_53"):
        assert f"({name}) Entering BACKUP STATE" in ready.log, ready.log
    assert ready["STATUS"] == "3 instances: 3 BACKUP"
    assert ready["MAINPID"] == str(r.proc.pid)
    # VI_51 preempts: the counts follow.
    r.wait_state("MASTER", "VI_51", timeout=10)
    wait_for(
        lambda: any(m["STATUS"] == "3 instances: 1 MASTER, 2 BACKUP" for m in listener.all("STATUS")),
        timeout=5,
        what="STATUS= with the new counts",
    )
    assert r.stop() == 0
    other.stop()


def test_ready_during_vrrp_startup_delay_counts_held_instances(lab, listeners):
    lan = Lan(lab, routers=1, client=False)
    r, listener = notifying_router(lab, lan, 1, [spec(51, 100), spec(52, 100)])
    r.global_lines = ["vrrp_startup_delay 3"]
    listeners.append(listener)
    r.start()
    ready = listener.wait("READY", timeout=15)
    # Held by the delay: ready (sockets open, loop running) with both instances still in INIT.
    assert ready["STATUS"] == "2 instances: 2 INIT"
    assert "vrrp_startup_delay" in ready.log and "Entering" not in ready.log, ready.log
    r.wait_all("MASTER", timeout=20)
    wait_for(
        lambda: any(m["STATUS"] == "2 instances: 2 MASTER" for m in listener.all("STATUS")),
        timeout=5,
        what="STATUS= after the delay",
    )
    r.stop()


def test_sighup_reloading_then_ready_for_a_good_and_a_broken_config(lab, listeners):
    lan = Lan(lab, routers=1, client=False)
    r, listener = notifying_router(lab, lan, 1, [spec(51, 100)])
    listeners.append(listener)
    r.start()
    first = listener.wait("READY", timeout=15)
    # A good configuration: one more instance.
    r.instances = [spec(51, 100), spec(52, 100)]
    r.write_config()
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    r.proc.send_signal(signal.SIGHUP)
    reloading = listener.wait("RELOADING", after=first.t, timeout=10)
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert reloading["RELOADING"] == "1"
    # MONOTONIC_USEC is CLOCK_MONOTONIC at the time of the reload (the same clock in every namespace).
    assert before <= int(reloading["MONOTONIC_USEC"]) <= after
    again = listener.wait("READY", after=reloading.t, timeout=10)
    assert "reloaded" in again.log and again["STATUS"].startswith("2 instances: ")
    assert "refused" not in again["STATUS"]
    assert "MAINPID" not in again
    # A broken configuration: refused, and READY=1 all the same (the running one stays in charge).
    with open(r.conf_path, "a") as f:
        f.write("vrrp_instance BROKEN {\n  virtual_router_id 999\n}\n")
    r.proc.send_signal(signal.SIGHUP)
    refused = listener.wait("RELOADING", after=again.t, timeout=10)
    back = listener.wait("READY", after=refused.t, timeout=10)
    assert "reload refused" in back.log
    assert back["STATUS"].startswith("2 instances: ")
    assert back["STATUS"].endswith("; the last reload was refused (see the log)")
    assert r.alive()
    assert r.stop() == 0


def test_sigterm_says_stopping_before_the_priority_zero_handover(lab, listeners):
    lan = Lan(lab, routers=2, client=False)
    r, listener = notifying_router(lab, lan, 1, [spec(51, 200)])
    listeners.append(listener)
    with lan.tap() as tap:
        r.start()
        r.wait_state("MASTER", timeout=10)
        listener.wait("READY", timeout=5)
        t = time.time()
        assert r.stop() == 0
        exited = time.time()
        stopping = listener.wait("STOPPING", timeout=5)
        zero = wait_for(
            lambda: [e for e in tap.adverts(51, r.addr4, after=t) if e.priority == 0],
            timeout=5,
            what="the priority-0 advert",
        )
    assert stopping["STOPPING"] == "1"
    assert stopping["STATUS"] == "stopping: 1 instance: 1 MASTER"
    # Both stamped by the kernel on the same clock: the datagram left before the advert, and before the exit.
    assert t <= stopping.t <= zero[0].t <= exited
    assert listener.all(after=stopping.t) == []  # nothing after STOPPING=1


def test_watchdog_pings_at_half_the_interval_and_stop_with_the_loop(lab, listeners):
    lan = Lan(lab, routers=1, client=False)
    env_out = os.path.join(lab.workdir, "script.env")
    dump_env = os.path.join(lab.workdir, "dump-env.sh")
    with open(dump_env, "w") as f:
        f.write(f"#!/bin/sh\nenv > {env_out}\n")
    os.chmod(dump_env, 0o755)
    inst = InstanceSpec(
        vrid=51, priority=100, advert_int_ms=A, vips=("192.0.2.51/24",), extra=(f"notify_master {dump_env}",)
    )
    r, listener = notifying_router(lab, lan, 1, [inst], WATCHDOG_USEC="400000")
    listeners.append(listener)
    r.start()
    listener.wait("READY", timeout=15)
    # The scripts the daemon runs do not inherit the variables meant for it (sd_notify(3)).
    wait_for(lambda: os.path.exists(env_out) and os.path.getsize(env_out) > 0, timeout=10, what="script env")
    with open(env_out) as f:
        script_env = f.read()
    assert "PATH=" in script_env
    assert "NOTIFY_SOCKET" not in script_env and "WATCHDOG_USEC" not in script_env
    wait_for(lambda: len(listener.all("WATCHDOG")) >= 8, timeout=10, what="watchdog pings")
    times = [m.t for m in listener.all("WATCHDOG")]
    gap = statistics.median(b - a for a, b in zip(times, times[1:], strict=False))
    assert 0.15 <= gap <= 0.3, gap  # WATCHDOG_USEC / 2 = 0.2 s, with slack for a loaded machine
    # A stopped loop stops pinging; it pings again once it runs.
    r.proc.send_signal(signal.SIGSTOP)
    try:
        stopped = time.time()
        time.sleep(1.0)  # five intervals without a ping: the observation window, not a wait for a condition
        late = [m.t for m in listener.all("WATCHDOG", after=stopped + 0.1)]
    finally:
        r.proc.send_signal(signal.SIGCONT)
    resumed = time.time()
    assert late == [], late
    listener.wait("WATCHDOG", after=resumed, timeout=5)
    assert r.stop() == 0


def test_watchdog_pid_of_another_process_means_no_pings(lab, listeners):
    lan = Lan(lab, routers=1, client=False)
    r, listener = notifying_router(
        lab, lan, 1, [spec(51, 100)], WATCHDOG_USEC="200000", WATCHDOG_PID=str(os.getpid())
    )
    listeners.append(listener)
    r.start()
    ready = listener.wait("READY", timeout=15)
    r.wait_state("MASTER", timeout=10)  # well over ten watchdog intervals after READY=1
    assert listener.all("WATCHDOG") == []
    assert ready.t > 0
    assert r.stop() == 0


def test_a_mass_transition_sends_a_few_status_datagrams(lab, listeners):
    n = 200
    lan = Lan(lab, routers=1, client=False)
    insts = [
        InstanceSpec(vrid=v, priority=100, advert_int_ms=A, vips=(f"198.51.100.{v}/24",))
        for v in range(1, n + 1)
    ]
    r, listener = notifying_router(lab, lan, 1, insts)
    listeners.append(listener)
    r.start()
    ready = listener.wait("READY", timeout=30)
    assert ready["STATUS"] == f"{n} instances: {n} BACKUP"
    # Alone on the LAN, all 200 become MASTER after Master_Down_Interval, nearly at once.
    done = wait_for(
        lambda: [m for m in listener.all("STATUS") if m["STATUS"] == f"{n} instances: {n} MASTER"],
        timeout=30,
        what="STATUS= with every instance MASTER",
    )[0]
    r.wait_all("MASTER", timeout=10)
    updates = listener.all("STATUS", after=ready.t)
    assert updates[-1] is done  # nothing after the last change
    # At most one datagram per 0.5 s (plus the first), whatever the number of transitions.
    allowed = 2 + int((done.t - ready.t) / 0.5)
    assert len(updates) <= min(allowed, n // 10), (len(updates), done.t - ready.t)
    assert r.stop() == 0
