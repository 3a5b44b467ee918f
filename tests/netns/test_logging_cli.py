"""The daemon's log and process options on a real kernel: syslog to a datagram socket standing in for /dev/log
(priorities, facility, -G, a full socket), -l, -g, -d, -s NETNS, the pid file and the fork without -n.

Every daemon here is the real `python -m fastvrrp` process; FASTVRRP_SYSLOG_SOCKET points its syslog at a
socket the test binds, and the test reads the datagrams as rsyslog or journald would.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from fastvrrp.lab.namespaces import Proc, ip_json, wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

A = 100  # ms
VIP = "192.0.2.100"
PKG_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOG_DAEMON, LOG_LOCAL3 = 3, 19
ERR, WARNING, INFO, DEBUG = 3, 4, 6, 7
_DATAGRAM = re.compile(r"^<(\d+)>(\w{3} [ \d]\d \d\d:\d\d:\d\d) ([^\[\s]+)\[(\d+)\]: (.*)$", re.S)


class SyslogStandIn:
    """An AF_UNIX datagram socket where the daemon's syslog lines arrive, read without blocking."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.lines: list[tuple[int, str, int, str]] = []  # (pri, ident, pid, message)

    def read(self) -> list[tuple[int, str, int, str]]:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return self.lines
            m = _DATAGRAM.match(data.decode())
            assert m, f"not in syslog(3)'s form: {data!r}"
            self.lines.append((int(m[1]), m[3], int(m[4]), m[5]))

    def find(self, text: str) -> tuple[int, str, int, str] | None:
        return next((x for x in self.read() if text in x[3]), None)

    def wait(self, text: str, timeout: float = 10.0) -> tuple[int, str, int, str]:
        return wait_for(lambda: self.find(text), timeout=timeout, what=f"{text!r} on the syslog socket")

    def fill(self) -> int:
        """Send from a client socket until the queue is full (EAGAIN): the stand-in for a stuck syslogd."""
        client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        client.connect(self.path)
        client.setblocking(False)
        sent = 0
        try:
            while True:
                client.send(b"<30>filler")
                sent += 1
        except BlockingIOError:
            return sent
        finally:
            client.close()

    def drain(self) -> None:
        while True:
            try:
                self.sock.recv(65536)
            except BlockingIOError:
                return

    def close(self) -> None:
        self.sock.close()
        os.unlink(self.path)


@pytest.fixture
def one_router(lab):
    """One router namespace on a bridge, its config written (an unsupported block makes a warning)."""
    lan = Lan(lab, routers=1, client=False)
    r = lan.router(1, "fastvrrp", [InstanceSpec(vrid=51, priority=150, advert_int_ms=A, vips=(f"{VIP}/24",))])
    r.blocks = "virtual_server 192.0.2.100 80 {\n}\n"
    r.write_config()
    return lan, r


@pytest.fixture
def syslog_socket(lab):
    s = SyslogStandIn(os.path.join(lab.workdir, "dev-log.sock"))
    yield s
    s.close()


def fastvrrp_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "fastvrrp", *args]


def spawn(lab, r, *args: str, sock: SyslogStandIn | None = None, name: str = "fv") -> Proc:
    env = {"PYTHONPATH": PKG_PARENT}
    if sock is not None:
        env["FASTVRRP_SYSLOG_SOCKET"] = sock.path
    pid = os.path.join(lab.workdir, f"{name}.pid")
    status = os.path.join(lab.workdir, f"{name}.status.json")
    argv = fastvrrp_argv("-f", r.conf_path, "-p", pid, "--status-file", status, *args)
    return lab.spawn(r.ns, argv, name, env=env)


def test_syslog_by_default_with_keepalived_wording_and_right_priorities(lab, one_router, syslog_socket):
    _lan, r = one_router
    p = spawn(lab, r, "-n", sock=syslog_socket)
    start = syslog_socket.wait("Starting fastvrrp")
    transition = syslog_socket.wait("(VI_51) Entering MASTER STATE")
    warning = syslog_socket.wait("virtual_server")
    assert start[0] == LOG_DAEMON * 8 + INFO and start[1:3] == ("fastvrrp", p.pid)
    assert transition[0] == LOG_DAEMON * 8 + INFO and transition[3] == "(VI_51) Entering MASTER STATE"
    assert warning[0] == LOG_DAEMON * 8 + WARNING
    # An error: a reload with a broken file is refused, logged as LOG_ERR, and the daemon goes on.
    with open(r.conf_path, "a") as f:
        f.write("vrrp_instance BROKEN {\n    virtual_router_id 300\n}\n")
    p.send_signal(signal.SIGHUP)
    error = syslog_socket.wait("reload refused")
    assert error[0] == LOG_DAEMON * 8 + ERR
    assert all(pri & 7 != DEBUG for pri, *_ in syslog_socket.read()), "debug lines without -D"
    assert p.stop() == 0
    syslog_socket.wait("Stopped fastvrrp")
    assert "Entering MASTER STATE" not in p.log(), "nothing on the console without -l"


def test_facility_and_detail_and_console(lab, one_router, syslog_socket):
    _lan, r = one_router
    p = spawn(lab, r, "-n", "-S", "3", "-D", "-l", "--log-ident", "Keepalived_vrrp", sock=syslog_socket)
    transition = syslog_socket.wait("Entering MASTER STATE")
    assert transition[:2] == (LOG_LOCAL3 * 8 + INFO, "Keepalived_vrrp")
    debug = wait_for(
        lambda: next((x for x in syslog_socket.read() if x[0] == LOG_LOCAL3 * 8 + DEBUG), None),
        timeout=5,
        what="a debug line with -D",
    )
    assert debug[3]
    wait_for(lambda: "(VI_51) Entering MASTER STATE" in p.log(), timeout=5, what="-l: the line on stderr")
    assert p.stop() == 0


def test_no_syslog_and_log_file(lab, one_router, syslog_socket):
    _lan, r = one_router
    log_file = os.path.join(lab.workdir, "fv-file.log")
    p = spawn(lab, r, "-n", "-G", "-g", log_file, "--flush-log-file", sock=syslog_socket)

    def file_text() -> str:
        try:
            with open(log_file) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # --flush-log-file: the line is in the file while the daemon runs.
    wait_for(
        lambda: "(VI_51) Entering MASTER STATE" in file_text(), timeout=10, what="the line in the -g file"
    )
    assert p.stop() == 0
    assert "Stopped fastvrrp" in file_text()
    assert syslog_socket.read() == [], "-G: nothing to syslog"
    assert p.log() == "", "nothing on the console without -l"


def test_a_full_syslog_socket_does_not_stall_the_adverts(lab, one_router, syslog_socket):
    lan, r = one_router
    queued = syslog_socket.fill()
    assert queued > 0
    with lan.tap() as tap:
        p = spawn(lab, r, "-n", "-l", "-D", sock=syslog_socket)
        wait_for(lambda: "Entering MASTER STATE" in p.log(), timeout=10, what="MASTER with syslog stuck")
        t = time.time()
        wait_for(lambda: len(tap.adverts(51, r.addr4, after=t)) >= 10, timeout=5, what="10 adverts")
        adverts = tap.adverts(51, r.addr4, after=t)
        gaps = [(b.t - a.t) * 1000 for a, b in zip(adverts, adverts[1:], strict=False)]
        assert max(gaps) < 2 * A, gaps
    # Syslog takes messages again: the next line says how many were lost.
    syslog_socket.drain()
    syslog_socket.lines.clear()
    p.send_signal(signal.SIGHUP)
    note = syslog_socket.wait("log message(s) were dropped")
    assert note[0] == LOG_DAEMON * 8 + WARNING
    assert int(note[3].split()[0]) > 0
    assert p.stop() == 0


def test_dump_conf_logs_the_configuration_and_keeps_running(lab, one_router):
    _lan, r = one_router
    p = spawn(lab, r, "-n", "-l", "-G", "-d")
    wait_for(lambda: "Entering MASTER STATE" in p.log(), timeout=10, what="running after -d")
    log = p.log()
    assert "------< Configuration of " in log and '"virtual_router_id": 51' in log
    assert log.index("------< end of configuration >------") < log.index("Entering MASTER STATE")
    # After a reload the configuration now in charge is dumped again (keepalived does so too).
    with open(r.conf_path) as f:
        text = f.read()
    with open(r.conf_path, "w") as f:
        f.write(text.replace("priority 150", "priority 160"))
    p.send_signal(signal.SIGHUP)
    wait_for(
        lambda: p.log().count("------< end of configuration >------") == 2, timeout=10, what="the 2nd dump"
    )
    second = p.log()[p.log().index("reloaded") :]
    assert '"priority": 160' in second and '"priority": 150' not in second
    assert p.stop() == 0


def test_namespace_option_runs_inside_it(lab, one_router, syslog_socket, request):
    """-s NAME from outside the namespace: the VIP appears inside NAME; the syslog ident names NAME."""
    lan, r = one_router
    pid_file = os.path.join(lab.workdir, "outside.pid")
    log_path = os.path.join(lab.workdir, "outside.log")
    argv = fastvrrp_argv("-n", "-l", "-s", r.ns, "-f", r.conf_path, "-p", pid_file)
    status_dir = f"/run/fastvrrp/{r.ns}"  # the default status file with -s: one per namespace
    parent_was_there = os.path.isdir("/run/fastvrrp")

    def remove_status_dir() -> None:
        shutil.rmtree(status_dir, ignore_errors=True)
        if not parent_was_there:
            with contextlib.suppress(OSError):  # not empty: someone else's files are in it now
                os.rmdir("/run/fastvrrp")

    request.addfinalizer(remove_status_dir)
    with open(log_path, "ab") as logf:
        popen = subprocess.Popen(
            argv,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": PKG_PARENT, "FASTVRRP_SYSLOG_SOCKET": syslog_socket.path},
            start_new_session=True,
        )
    p = Proc("(host)", argv, popen, log_path)
    lab.procs.append(p)  # the lab stops it by pid if the test fails
    with lan.tap() as tap:
        wait_for(lambda: r.has_vip(VIP), timeout=10, what=f"the VIP inside {r.ns}")
        garp = wait_for(lambda: tap.first_garp(VIP), timeout=5, what="the gratuitous ARP")
    # The ARP carries NAME's eth0 MAC: /sys is NAME's too (as under `ip netns exec`), not the host's.
    (link,) = ip_json(lab, r.ns, f"link show dev {r.ifname}")
    assert garp.src_mac == link["address"]
    assert os.stat(f"/proc/{p.pid}/ns/net").st_ino == os.stat(f"/var/run/netns/{r.ns}").st_ino
    assert syslog_socket.wait("Entering MASTER STATE")[1] == f"fastvrrp_{r.ns}"  # keepalived: Keepalived_NAME
    wait_for(
        lambda: os.path.exists(f"{status_dir}/status.json"), timeout=10, what="the namespace's status file"
    )
    assert p.stop() == 0
    assert not r.has_vip(VIP)


def test_namespace_that_does_not_exist_is_refused(lab):
    p = subprocess.run(
        fastvrrp_argv("-n", "-G", "-s", "fv-no-such-ns", "-f", "/nonexistent.conf", "-p", "/nonexistent.pid"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": PKG_PARENT},
    )
    assert p.returncode == 1
    assert "no network namespace /var/run/netns/fv-no-such-ns" in p.stderr and "ip netns add" in p.stderr


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for init to reap it counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_without_dont_fork_it_detaches_and_the_pid_file_finds_it(lab, one_router):
    """No -n: the command returns at once, the daemon runs on; -u and -m as keepalived's."""
    _lan, r = one_router
    pid_file = os.path.join(lab.workdir, "bg.pid")
    with open(pid_file, "w") as f:
        f.write("999999999\n")  # stale: no such process; the start replaces it
    argv = ["ip", "netns", "exec", r.ns, *fastvrrp_argv("-G", "-u", "077", "-m", "-f", r.conf_path)]
    argv += ["-p", pid_file, "--status-file", os.path.join(lab.workdir, "bg.status.json")]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": PKG_PARENT}
    )
    assert done.returncode == 0, done.stderr

    def daemon_pid() -> int | None:
        try:
            with open(pid_file) as f:
                text = f.read().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() and text != "999999999" else None

    pid = wait_for(daemon_pid, timeout=10, what="the daemon's pid in the pid file")
    try:
        wait_for(lambda: r.has_vip(VIP), timeout=10, what="the VIP from the detached daemon")
        assert os.stat(pid_file).st_mode & 0o777 == 0o600  # -u 077
        with open(f"/proc/{pid}/limits") as f:
            core = next(line for line in f if line.startswith("Max core file size"))
        assert core.split()[4:6] == ["unlimited", "unlimited"], core  # -m
        # A second daemon on the same pid file is refused: a live process holds it.
        second = subprocess.run(
            ["ip", "netns", "exec", r.ns, *fastvrrp_argv("-n", "-G", "-f", r.conf_path, "-p", pid_file)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": PKG_PARENT},
        )
        assert second.returncode == 1 and f"held by running process {pid}" in second.stderr
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: gone(pid), timeout=10, what="the detached daemon to stop")
    assert not os.path.exists(pid_file)
    assert not r.has_vip(VIP)


def test_default_pid_file_is_keepalived_s(lab, one_router):
    """No -p: /run/keepalived.pid, seen in a private /run (a tmpfs in the daemon's own mount namespace, so
    the host's /run is untouched) through /proc/PID/root."""
    _lan, r = one_router
    status = os.path.join(lab.workdir, "default.status.json")
    inner = " ".join(fastvrrp_argv("-n", "-G", "-f", r.conf_path, "--status-file", status))
    p = lab.spawn(
        r.ns,
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"mount -t tmpfs none /run && exec {inner}",
        ],
        "default-pid",
        env={"PYTHONPATH": PKG_PARENT},
    )
    pid_file = f"/proc/{p.pid}/root/run/keepalived.pid"

    def content() -> str | None:
        try:
            with open(pid_file) as f:
                return f.read()
        except OSError:
            return None

    assert wait_for(content, timeout=10, what="/run/keepalived.pid") == f"{p.pid}\n"
    wait_for(lambda: r.has_vip(VIP), timeout=10, what="the VIP")
    assert not os.path.exists("/run/keepalived.pid") or open("/run/keepalived.pid").read() != f"{p.pid}\n"
    assert p.stop() == 0


def test_address_monitoring_logs_every_address_change(lab, one_router):
    """-a: the addresses present at start, then each one added or removed (keepalived's wording)."""
    _lan, r = one_router
    p = spawn(lab, r, "-n", "-l", "-G", "-a")
    wait_for(lambda: "started:" in p.log(), timeout=10, what="the daemon started")
    assert f"Netlink reflector reports IP {r.addr4} added to eth0" in p.log()
    lab.sh(r.ns, "ip addr add 198.51.100.7/24 dev lo")
    wait_for(lambda: "reports IP 198.51.100.7 added to lo" in p.log(), timeout=5, what="the added address")
    lab.sh(r.ns, "ip addr del 198.51.100.7/24 dev lo")
    wait_for(lambda: "reports IP 198.51.100.7 removed from lo" in p.log(), timeout=5, what="the removal")
    # The daemon's own use of address events goes on: a VIP removed under a MASTER is put back.
    wait_for(lambda: "Entering MASTER STATE" in p.log() and r.has_vip(VIP), timeout=10, what="MASTER")
    lab.sh(r.ns, f"ip addr del {VIP}/24 dev eth0")
    wait_for(lambda: "was removed while MASTER: putting it back" in p.log(), timeout=5, what="the VIP back")
    assert f"reports IP {VIP} removed from eth0" in p.log()
    wait_for(lambda: r.has_vip(VIP), timeout=5, what="the VIP on eth0 again")
    assert p.stop() == 0


def test_dont_release_vrrp_leaves_the_vip_and_sends_no_priority_zero(lab, one_router):
    """-V, as keepalived -V behaves: a stopping master neither resigns nor removes its VIP."""
    lan, r = one_router
    with lan.tap() as tap:
        p = spawn(lab, r, "-n", "-l", "-G", "-V")
        wait_for(lambda: "Entering MASTER STATE" in p.log() and r.has_vip(VIP), timeout=10, what="MASTER")
        wait_for(lambda: len(tap.adverts(51, r.addr4)) >= 3, timeout=5, what="adverts")
        t = time.time()
        assert p.stop() == 0
        time.sleep(3 * A / 1000)  # a priority-0 advert would be on the wire at once; give it the time
        assert [e.priority for e in tap.adverts(51, r.addr4, after=t)].count(0) == 0
    assert r.has_vip(VIP), "-V leaves the VIP"


def test_a_start_the_system_refuses_is_on_stderr_without_console(lab):
    """An interface that is not there stops the start: exit 1, and the reason reaches stderr even without -l
    (it is in syslog too)."""
    lan = Lan(lab, routers=1, client=False)
    spec = InstanceSpec(vrid=51, priority=150, advert_int_ms=A, vips=(f"{VIP}/24",), interface="eth9")
    r = lan.router(1, "fastvrrp", [spec])
    r.write_config()
    p = spawn(lab, r, "-n", "-G")
    assert p.popen.wait(30) == 1
    assert "eth9" in p.log() and "fastvrrp: " in p.log()
