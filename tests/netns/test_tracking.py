"""Health checks and tracking in the running daemon: trackers move priority (seen in the adverts on the wire)
or put an instance in FAULT, so a dead service moves its address; notify scripts and the notify FIFO report
every change in order."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import time

import pytest

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

A = 100
VIP = "192.0.2.100"


def spec(prio: int, *extra: str, **kw) -> InstanceSpec:
    return InstanceSpec(vrid=51, priority=prio, advert_int_ms=A, vips=(f"{VIP}/24",), extra=extra, **kw)


def prios_after(tap, src: str, t: float) -> set[int]:
    return {e.priority for e in tap.adverts(51, src, after=t)}


def test_script_weight_moves_the_vip_and_back(lab):
    lan = Lan(lab, routers=2, client=False)
    flag = os.path.join(lab.workdir, "service-ok")
    open(flag, "w").close()
    chk = lab.script("chk.sh", f"test -f {flag}")
    m = lan.router(1, "fastvrrp", [spec(200, "track_script {", "    chk", "}")])
    m.blocks = (
        f"vrrp_script chk {{\n    script {chk}\n    interval 1\n    weight -150\n    fall 1\n    rise 1\n}}\n"
    )
    b = lan.router(2, "fastvrrp", [spec(100)])
    with lan.tap() as tap:
        m.start()
        b.start()
        m.wait_state("MASTER", timeout=10)
        b.wait_state("BACKUP", timeout=10)
        t = time.time()
        os.unlink(flag)  # the service dies: the check fails, priority 200 - 150 = 50 < 100
        wait_for(lambda: 50 in prios_after(tap, m.addr4, t), timeout=5, what="priority 50 on the wire")
        b.wait_state("MASTER", timeout=5)
        m.wait_state("BACKUP", timeout=5)
        wait_for(lambda: lan.who_has(VIP) == [b.ns], timeout=5, what="VIP moved to the healthy node")
        t2 = time.time()
        open(flag, "w").close()  # the service is back: 200 again, and preemption brings the VIP home
        m.wait_state("MASTER", timeout=5)
        assert 200 in prios_after(tap, m.addr4, t2)
        wait_for(lambda: lan.who_has(VIP) == [m.ns], timeout=5, what="VIP back")
    assert "VRRP_Script chk: failed" in m.log()


def test_weight_zero_fault_and_notify_order_and_fifo(lab):
    lan = Lan(lab, routers=2, client=False)
    flag = os.path.join(lab.workdir, "ok")
    open(flag, "w").close()
    out = os.path.join(lab.workdir, "notify.out")
    fifo = os.path.join(lab.workdir, "notify.fifo")
    note = lab.script("note.sh", f'echo "$@" >> {out}')
    chk = lab.script("chk0.sh", f"test -f {flag}")
    m = lan.router(
        1,
        "fastvrrp",
        [spec(200, "track_script {", "    chk0", "}", f"notify {note}", f'notify_master "{note} M"')],
    )
    m.global_lines = [f"vrrp_notify_fifo {fifo}"]
    m.blocks = f"vrrp_script chk0 {{\n    script {chk}\n    interval 1\n    weight 0\n}}\n"
    b = lan.router(2, "fastvrrp", [spec(100)])
    m.start()
    wait_for(lambda: os.path.exists(fifo), timeout=10, what="the FIFO")
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        b.start()
        m.wait_state("MASTER", timeout=10)
        os.unlink(flag)  # weight 0: a failed check means FAULT (keepalived)
        m.wait_state("FAULT", timeout=5)
        b.wait_state("MASTER", timeout=5)
        wait_for(lambda: m.ns not in lan.who_has(VIP), timeout=3, what="VIP released in FAULT")
        open(flag, "w").close()
        m.wait_state("MASTER", timeout=10)  # back to BACKUP, then preempts
        assert m.stop() == 0
        want = [
            "INSTANCE VI_51 BACKUP 200",
            "M",
            "INSTANCE VI_51 MASTER 200",
            "INSTANCE VI_51 FAULT 200",
            "INSTANCE VI_51 BACKUP 200",
            "M",
            "INSTANCE VI_51 MASTER 200",
            "INSTANCE VI_51 STOP 200",
        ]
        wait_for(
            lambda: os.path.exists(out) and len(open(out).read().split("\n")) > len(want),
            timeout=5,
            what="notify output",
        )
        assert open(out).read().split("\n")[: len(want)] == want
        data = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        lines = data.decode().splitlines()
        assert lines == [
            'INSTANCE "VI_51" BACKUP 200',
            'INSTANCE "VI_51" MASTER 200',
            'INSTANCE "VI_51" FAULT 200',
            'INSTANCE "VI_51" BACKUP 200',
            'INSTANCE "VI_51" MASTER 200',
            'INSTANCE "VI_51" STOP 200',
        ]
    finally:
        os.close(fd)


def test_track_file_value_times_weight(lab):
    lan = Lan(lab, routers=2, client=False)
    path = os.path.join(lab.workdir, "prio.track")
    m = lan.router(1, "fastvrrp", [spec(150, "track_file {", "    tf", "}")])
    m.blocks = f"vrrp_track_file tf {{\n    file {path}\n    weight -10\n}}\n"
    b = lan.router(2, "fastvrrp", [spec(100)])
    with lan.tap() as tap:
        m.start()
        b.start()
        m.wait_state("MASTER", timeout=10)  # a missing file reads as 0
        t = time.time()
        with open(path, "w") as f:
            f.write("3\n")  # 150 + 3 * -10 = 120: still master, advertised on the wire
        wait_for(lambda: 120 in prios_after(tap, m.addr4, t), timeout=3, what="priority 120")
        t = time.time()
        with open(path, "w") as f:
            f.write("8\n")  # 150 - 80 = 70 < 100: the backup preempts
        wait_for(lambda: 70 in prios_after(tap, m.addr4, t), timeout=3, what="priority 70")
        b.wait_state("MASTER", timeout=5)
        os.unlink(path)  # deleted: reads 0 again, 150 preempts back
        m.wait_state("MASTER", timeout=5)


def test_track_process_quorum(lab):
    lan = Lan(lab, routers=1, client=False)
    name = f"fvsvc{os.getpid() % 10000}"
    exe = os.path.join(lab.workdir, name)
    shutil.copy("/bin/sleep", exe)
    m = lan.router(1, "fastvrrp", [spec(200, "track_process {", "    svc", "}")])
    m.blocks = f"vrrp_track_process svc {{\n    process {name}\n    weight 0\n    quorum 1\n}}\n"
    m.start()
    m.wait_state("FAULT", timeout=10)  # the process is not running
    proc = subprocess.Popen([exe, "300"], start_new_session=True)
    try:
        m.wait_state("MASTER", timeout=10)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        m.wait_state("FAULT", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_track_interface_down_means_fault(lab):
    lan = Lan(lab, routers=1, client=False)
    ns = lan.router_ns[0]
    lab.sh(ns, "ip link add name up0 type veth peer name up1")
    lab.sh(ns, "ip link set up0 up")
    lab.sh(ns, "ip link set up1 up")
    m = lan.router(1, "fastvrrp", [spec(200, "track_interface {", "    up0", "}")])
    m.start()
    m.wait_state("MASTER", timeout=10)
    lab.sh(ns, "ip link set up1 down")  # the uplink loses carrier
    m.wait_state("FAULT", timeout=5)
    wait_for(lambda: lan.who_has(VIP) == [], timeout=3, what="VIP released")
    lab.sh(ns, "ip link set up1 up")
    m.wait_state("MASTER", timeout=10)


def test_hung_script_is_killed_at_its_timeout(lab):
    lan = Lan(lab, routers=1, client=False)
    # /bin/sh may be dash, whose exec has no -a: the sleep's own argument marks the hung process
    marker = f"300.{os.getpid() % 10000}"
    hang = lab.script("hang.sh", f"exec sleep {marker}")
    m = lan.router(1, "fastvrrp", [spec(200, "track_script {", "    hang", "}")])
    m.blocks = f"vrrp_script hang {{\n    script {hang}\n    interval 2\n    timeout 1\n    weight 0\n}}\n"
    m.start()
    m.wait_state("FAULT", timeout=10)  # a hung check is a failed check

    def hung_left() -> list[int]:
        found = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if f.read().split(b"\0")[:2] == [b"sleep", marker.encode()]:
                            found.append(int(pid))
                except OSError:
                    pass
        return found

    # Each run is killed at 1 s: a run seen hanging is gone within its timeout (plus slack).
    wait_for(hung_left, timeout=5, interval=0.05, what="a run of the hung script")
    wait_for(lambda: not hung_left(), timeout=3, interval=0.05, what="hung script killed")
    assert m.state() == "FAULT"


def test_script_security_refuses_a_script_others_can_modify(lab):
    lan = Lan(lab, routers=1, client=False)
    bad = lab.script("bad.sh", "exit 0")
    nobody = 65534
    os.chown(bad, nobody, nobody)  # owned by a non-root user: that user could change what root runs
    os.chmod(bad, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    m = lan.router(1, "fastvrrp", [spec(200, "track_script {", "    bad", "}")])
    m.global_lines = ["enable_script_security"]
    m.blocks = f"vrrp_script bad {{\n    script {bad}\n    interval 1\n    weight 0\n}}\n"
    m.start()
    m.wait_state("FAULT", timeout=10)
    wait_for(lambda: "insecure" in m.log(), timeout=5, what="the refusal in the log")
    assert m.log().count(f"refusing to run {bad!r}") == 1  # logged once, not per interval


def test_in_process_http_and_tcp_checks_move_the_vip(lab):
    """vrrp_check (no fork): an HTTP_GET with weight -150 and a TCP_CHECK with weight 0 against real servers
    on the master's own box; stopping each moves the VIP after `fall` checks, starting it brings it back
    after `rise` (preemption)."""
    import sys

    lan = Lan(lab, routers=2, client=False)
    ns1 = lan.router_ns[0]
    www = os.path.join(lab.workdir, "www")
    os.makedirs(www)
    with open(os.path.join(www, "health"), "w") as f:
        f.write("ready\n")
    http_argv = [sys.executable, "-m", "http.server", "8080", "--bind", "192.0.2.1", "-d", www]
    tcp_code = (
        "import socket,time;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
        "s.bind(('192.0.2.1',9090));s.listen(64);time.sleep(600)"
    )
    http = lab.spawn(ns1, http_argv, "http")
    tcp = lab.spawn(ns1, [sys.executable, "-c", tcp_code], "tcp")
    m = lan.router(1, "fastvrrp", [spec(200, "track_script {", "    web", "    db", "}")])
    m.blocks = (
        "vrrp_check web {\n    HTTP_GET {\n        url {\n            path /health\n"
        "            status_code 200\n            regex ready\n        }\n"
        "        connect_ip 192.0.2.1\n        connect_port 8080\n"
        "        connect_timeout 1\n    }\n    interval 1\n    rise 2\n    fall 2\n    weight -150\n}\n"
        "vrrp_check db {\n    TCP_CHECK {\n        connect_ip 192.0.2.1\n        connect_port 9090\n"
        "        connect_timeout 1\n    }\n    interval 1\n    fall 1\n    rise 1\n}\n"
    )
    b = lan.router(2, "fastvrrp", [spec(100)])
    with lan.tap() as tap:
        for r in (m, b):
            r.start()
        m.wait_state("MASTER", timeout=15)
        b.wait_state("BACKUP", timeout=10)
        t = time.time()
        http.stop()  # the web service dies: 2 failed checks, 200 - 150 = 50 < 100
        wait_for(lambda: 50 in prios_after(tap, m.addr4, t), timeout=6, what="priority 50 on the wire")
        b.wait_state("MASTER", timeout=5)
        wait_for(lambda: lan.who_has(VIP) == [b.ns], timeout=5, what="VIP on the healthy node")
        http = lab.spawn(ns1, http_argv, "http2")
        m.wait_state("MASTER", timeout=8)  # 2 good checks, then preemption
        wait_for(lambda: lan.who_has(VIP) == [m.ns], timeout=5, what="VIP back")
        tcp.stop()  # weight 0: the TCP service down is FAULT
        m.wait_state("FAULT", timeout=5)
        wait_for(lambda: lan.who_has(VIP) == [b.ns], timeout=5, what="VIP moved on FAULT")
    assert "VRRP_Check web: failed" in m.log()


def test_notify_master_rx_lower_pri_is_rate_limited(lab):
    """keepalived's notify_master_rx_lower_pri: run when the master hears a lower priority - here a flood of
    them, which must not become a flood of scripts (one per advert interval at most)."""
    import socket

    from fastvrrp import _wire
    from fastvrrp.io.sockets import open_rx_tx_in_netns

    lan = Lan(lab, routers=2, client=False)
    out = os.path.join(lab.workdir, "lower.out")
    note = lab.script("lower.sh", f'echo "$@" >> {out}')
    m = lan.router(1, "fastvrrp", [spec(200, f'notify_master_rx_lower_pri "{note} low"')])
    m.start()
    m.wait_state("MASTER", timeout=10)
    socks = open_rx_tx_in_netns(lan.router_ns[1], "eth0", socket.AF_INET, primary_ip="192.0.2.2")
    try:
        msg = _wire.build_advert(
            version=3,
            family=4,
            vrid=51,
            priority=100,
            adver_int_ms=A,
            addresses=[socket.inet_aton(VIP)],
            src=socket.inet_aton("192.0.2.2"),
            dst=socket.inet_aton("224.0.0.18"),
        )
        t0 = time.time()
        while time.time() - t0 < 1.0:  # ~200 lower-priority adverts in one second
            socks.tx.sendto(msg, ("224.0.0.18", 0))
            time.sleep(0.005)
    finally:
        socks.close()
    wait_for(lambda: os.path.exists(out), timeout=5, what="the notify script")

    def running() -> bool:
        """A run of the notify script is still going (its command line names it)."""
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if note.encode() in f.read():
                        return True
            except OSError:
                pass
        return False

    # Every queued run has finished (no fixed wait: a loaded machine may take longer): no run going, and
    # the output unchanged since the poll before (a queued run starts as the one before it ends).
    seen = [-1]

    def settled() -> bool:
        n = len(open(out).read().splitlines())
        done = not running() and n == seen[0]
        seen[0] = n
        return done

    wait_for(settled, timeout=10, interval=0.1, what="the queued notify scripts to finish")
    runs = open(out).read().splitlines()
    assert set(runs) == {"low"}
    assert 3 <= len(runs) <= 12, len(runs)  # ~one per 100 ms interval, not ~200
    assert m.state() == "MASTER"
