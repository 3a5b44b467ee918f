"""Health tracking in the running daemons, keepalived and fastvrrp side by side (measurements, not tests).

1. Reaction: how long from "the service stopped" to the peer's first advert as master.

   Two routers on a bridge, VRRPv3, A = 100 ms: r1 priority 200 tracks the service with weight -150
   (interval 1 s, fall 2, rise 1), r2 priority 100, both preempting. When the service stops:
     a. the tracker decides: the FALL-th failing check after the stop starts at
            sched = t_check - t_stop,  in [(FALL - 1) * I, FALL * I)   (fixed-rate checks, phase uniform)
     b. r1's effective priority drops to 50 and its adverts carry it. RFC 5798 has no "priority changed"
        event: the next advert on Adver_Timer (6.4.3) carries it, or one sent at once (keepalived and
        fastvrrp may do either; `react` below shows which).
     c. r2 (priority 100, Preempt_Mode True) discards every advert with the lower priority (6.4.2, "If
        Preempt_Mode is True and the Priority in the ADVERTISEMENT is less than the local Priority, then
        discard"), so its Master_Down_Timer is no longer reset and fires Master_Down_Interval after the
        *last* priority-200 advert:  MDI = 3 * A + (256 - 100) * A / 256 = 360.9375 ms  (6.1).
   The last priority-200 advert went out at most one interval before the decision (it is periodic), so
       total = t_new_master_advert - t_stop = sched + e + MDI - g,  g in [0, A)
   where e is the check's own run time and g the age of the last priority-200 advert at the decision.
   Over all phases: total in [(FALL - 1) * I + MDI - A, FALL * I + MDI) = [1260.9, 2360.9) ms plus e,
   mean (FALL - 1/2) * I + MDI - A/2 = 1810.9 ms. The stop times are placed at evenly spread phases of the
   check schedule ((i + 1/2) / REPS of an interval after a logged check), so both implementations see the
   same phases and the median should sit near that mean.
   Reported per implementation (median and worst of REPS): total, sched, react = first lowered advert -
   deciding check start, takeover = r2's first advert - r1's last priority-200 advert (RFC: exactly MDI),
   and excess = total - sched - MDI, the part an implementation adds (RFC: in (-A, 0] plus e).
   Cases: (a) vrrp_script testing a flag file (the stop = removing the file; the script logs each run's
   start time), keepalived and fastvrrp; (b) fastvrrp's in-process HTTP_GET check against a real HTTP
   server in the client namespace (the stop = killing the server; its request log gives the schedule).
   keepalived has no in-process check for VRRP, so (b) is fastvrrp alone.

2. Cost: one router, 1,000 VRRPv3 instances at A = 1 s on four interfaces, each its own link (eth0, eth1:
   IPv4, VRIDs 1..250 each; eth2, eth3: IPv6, VRIDs 1..250 each; one VIP each), every instance tracking its
   own tracker at 1 s: a vrrp_script running /bin/true (1,000 scripts), or a vrrp_check TCP_CHECK against a
   listener in the client namespace (fastvrrp only). A baseline with no trackers shows the VRRP part.
   After every instance is MASTER and a settling pause, CPU seconds per second of wall time over WINDOW_S
   seconds: the daemon's own processes (utime + stime) and the children they reaped (cutime + cstime, where
   the scripts' CPU lands). The process tree is sampled every 50 ms from the start: peak (and mean) child
   processes. Runs are counted too, so a daemon that falls behind its schedule cannot look cheap: scripts
   from the kernel's fork events (proc connector), TCP checks from the listener's accept count.
   Targets from the issue, judged in test_cost_targets (fails while one is missed): fastvrrp's scripts no
   more CPU than keepalived's for the same work (per run, while keeping >= 95 % of the schedule);
   in-process checks at least 10x less CPU than keepalived's scripts.

Run with `make bench`; FASTVRRP_BENCH_REPS (10) and FASTVRRP_BENCH_WINDOW (10 s) override the defaults.
"""

# ruff: noqa: F811
from __future__ import annotations

import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

from bench.conftest import print_table
from fastvrrp.lab.namespaces import Proc, wait_for
from fastvrrp.lab.testbed import (
    InstanceSpec,
    Lan,
    Router,
    cpu_times,
    master_down_ms,
    process_tree,
    rss_kib,
    wait_heard,
)

pytestmark = [pytest.mark.interop, pytest.mark.netns]

REPS = int(os.environ.get("FASTVRRP_BENCH_REPS", "10"))
WINDOW_S = float(os.environ.get("FASTVRRP_BENCH_WINDOW", "10"))

# --- reaction parameters (section 1 of the docstring)
A_MS = 100
INTERVAL_MS = 1000
FALL = 2
P_MASTER, P_BACKUP, WEIGHT = 200, 100, -150
P_LOW = P_MASTER + WEIGHT
VRID = 51
VIP = "192.0.2.100"
HTTP_PORT = 8080
MDI_MS = master_down_ms(P_BACKUP, A_MS)  # the backup's Master_Down_Interval, RFC 5798 6.1
LOW_MS = (FALL - 1) * INTERVAL_MS + MDI_MS - A_MS
HIGH_MS = FALL * INTERVAL_MS + MDI_MS
MEAN_MS = (FALL - 0.5) * INTERVAL_MS + MDI_MS - A_MS / 2

# --- cost parameters (section 2)
PER_IF = 250
IFACES = 4
COST_A_MS = 1000
SETTLE_S = 6.0  # keepalived repeats its gratuitous ARPs 5 s after MASTER (vrrp_garp_master_delay)
TCP_PORT = 8081
KEEP_UP = 0.95  # a tracker runner doing fewer runs than this share of its schedule has fallen behind

REACTION: dict[str, dict[str, Any]] = {}
COST: dict[str, dict[str, Any]] = {}

SERVER_PY = r"""
import http.server, sys, time
addr, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(log, "a") as f:
            f.write(f"{time.time():.6f}\n")
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer((addr, port), H).serve_forever()
"""

# Accepts and closes; writes how many it accepted (at most twice a second) so the checks made can be counted.
LISTENER_PY = r"""
import os, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(4096)
n, last = 0, 0.0
while True:
    c, _ = s.accept()
    c.close()
    n += 1
    now = time.monotonic()
    if now - last >= 0.5:
        last = now
        with open(sys.argv[3] + ".tmp", "w") as f:
            f.write(str(n))
        os.replace(sys.argv[3] + ".tmp", sys.argv[3])
"""


def _write(path: str, text: str, mode: int = 0o644) -> str:
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def _times(path: str) -> list[float]:
    try:
        with open(path) as f:
            return [float(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


# --- 1. reaction -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reaction:
    total_ms: float  # r2's first advert as master - the stop
    sched_ms: float  # start of the deciding (FALL-th failing) check - the stop
    react_ms: float  # r1's first lowered advert - the deciding check's start
    takeover_ms: float  # r2's first advert - r1's last priority-200 advert (RFC 5798 6.1: MDI)

    @property
    def excess_ms(self) -> float:
        return self.total_ms - self.sched_ms - MDI_MS


class Service:
    """The tracked service: a flag file a script tests, or an HTTP server; each logs its checks' times."""

    def __init__(self, lab, lan: Lan, kind: str) -> None:
        self.lab, self.lan, self.kind = lab, lan, kind
        self.log = os.path.join(lab.workdir, f"checks-{kind}.log")
        self.flag = os.path.join(lab.workdir, "service-ok")
        self.server: Proc | None = None
        if kind == "script":
            # The run's start time first (date is a separate process: ~1 ms), then the test itself.
            self.script = _write(
                os.path.join(lab.workdir, "chk.sh"),
                f"#!/bin/sh\ndate +%s.%N >> {self.log}\ntest -f {self.flag}\n",
                0o755,
            )
        else:
            self.server_py = _write(os.path.join(lab.workdir, "http_server.py"), SERVER_PY)

    def block(self) -> str:
        common = f"    interval {INTERVAL_MS // 1000}\n    fall {FALL}\n    rise 1\n    weight {WEIGHT}\n"
        if self.kind == "script":
            return f"vrrp_script svc {{\n    script {self.script}\n{common}}}\n"
        return (
            "vrrp_check svc {\n    HTTP_GET {\n        url {\n            path /health\n"
            "            status_code 200\n        }\n"
            f"        connect_ip 192.0.2.50\n        connect_port {HTTP_PORT}\n        connect_timeout 1\n"
            f"    }}\n{common}}}\n"
        )

    def up(self) -> None:
        if self.kind == "script":
            open(self.flag, "w").close()
            return
        assert self.lan.client is not None
        self.server = self.lab.spawn(
            self.lan.client,
            [sys.executable, self.server_py, "192.0.2.50", str(HTTP_PORT), self.log],
            f"http-{len(self.lab.procs)}",
        )

    def down(self) -> None:
        if self.kind == "script":
            os.unlink(self.flag)
        elif self.server is not None:
            self.server.stop(signal.SIGKILL)  # the port closes at once: the next probe is refused

    def runs(self) -> list[float]:
        return _times(self.log)

    def deciding_check(self, t_stop: float) -> float:
        """Start of the FALL-th check after t_stop. Scripts log every run; the HTTP server logs only the
        checks it answered, so after the stop the schedule is extrapolated (CheckTracker is fixed-rate)."""
        runs = self.runs()
        if self.kind == "script":
            after = [t for t in runs if t >= t_stop]
            if len(after) >= FALL:
                return after[FALL - 1]
            raise RuntimeError(f"only {len(after)} script runs logged after the stop")
        last = max(t for t in runs if t < t_stop)
        k = 1
        while last + k * INTERVAL_MS / 1000 < t_stop:
            k += 1
        return last + (k + FALL - 1) * INTERVAL_MS / 1000


def run_reaction(lab, keepalived_bin: str, kind: str, service: str, reps: int) -> list[Reaction]:
    lan = Lan(lab, routers=2, client=(service == "http"))
    svc = Service(lab, lan, service)

    def spec(prio: int, *extra: str) -> InstanceSpec:
        return InstanceSpec(
            vrid=VRID, priority=prio, advert_int_ms=A_MS, vips=(VIP + "/24",), extra=extra, version=3
        )

    r1 = lan.router(
        1, kind, [spec(P_MASTER, "track_script {", "    svc", "}")], keepalived_bin=keepalived_bin
    )
    r1.blocks_before = svc.block()
    r2 = lan.router(2, kind, [spec(P_BACKUP)], keepalived_bin=keepalived_bin)
    src1, src2 = r1.source(4), r2.source(4)
    out: list[Reaction] = []
    svc.up()
    with lan.tap() as tap:
        r1.start()
        r1.wait_state("MASTER", timeout=20)
        r2.start()
        r2.wait_state("BACKUP", timeout=20)
        for i in range(reps):
            # Place the stop at phase (i + 1/2) / reps of the check interval (a deliberate offset from the
            # last logged check, not a wait for a condition): the same spread of phases for every daemon.
            wait_for(
                lambda: svc.runs() and svc.runs()[-1] > time.time() - 2, timeout=5, what="a recent check"
            )
            wait_heard(tap, src1, VRID, after=time.time(), count=2)
            last = svc.runs()[-1]
            target = last + (i + 0.5) / reps * INTERVAL_MS / 1000
            while target < time.time() + 0.01:
                target += INTERVAL_MS / 1000
            time.sleep(target - time.time())
            t_stop = time.time()
            svc.down()
            new = wait_for(
                lambda t_stop=t_stop: tap.first_advert_from(src2, VRID, after=t_stop),
                timeout=(FALL * INTERVAL_MS + MDI_MS) / 1000 + 5,
                interval=0.005,
                what=f"{r2.name}'s first advert after the service stopped",
            )
            low = tap.first_advert_from(src1, VRID, after=t_stop)
            low_ev = next((e for e in tap.adverts(VRID, src1, after=t_stop) if e.priority == P_LOW), None)
            hi = [
                e for e in tap.adverts(VRID, src1, after=t_stop - 5) if e.priority == P_MASTER and e.t < new.t
            ]
            assert low is not None and low_ev is not None and hi, "r1's lowered priority never went out"
            t_check = svc.deciding_check(t_stop)
            out.append(
                Reaction(
                    total_ms=(new.t - t_stop) * 1000,
                    sched_ms=(t_check - t_stop) * 1000,
                    react_ms=(low_ev.t - t_check) * 1000,
                    takeover_ms=(new.t - hi[-1].t) * 1000,
                )
            )
            r2.wait_state("MASTER", timeout=5)
            r1.wait_state("BACKUP", timeout=5)
            svc.up()  # rise 1: priority 200 again at the next check, and r1 preempts (6.4.2)
            r1.wait_state("MASTER", timeout=10)
            r2.wait_state("BACKUP", timeout=10)
    return out


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), max(values)


@pytest.mark.parametrize(
    "kind,service",
    [("keepalived", "script"), ("fastvrrp", "script"), ("fastvrrp", "http")],
    ids=["script-keepalived", "script-fastvrrp", "http-fastvrrp"],
)
def test_reaction(benchmark, lab, keepalived_bin, kind, service):
    if service == "http" and (why := vrrp_check_unsupported()):
        pytest.skip(why)
    reps = benchmark.pedantic(
        run_reaction, args=(lab, keepalived_bin, kind, service, REPS), rounds=1, iterations=1
    )
    assert len(reps) == REPS
    total_med, total_worst = _stats([r.total_ms for r in reps])
    result = {
        "rfc_window_ms": [round(LOW_MS, 1), round(HIGH_MS, 1)],
        "rfc_mean_ms": round(MEAN_MS, 1),
        "mdi_ms": MDI_MS,
        "total_median_ms": round(total_med, 1),
        "total_worst_ms": round(total_worst, 1),
        "sched_median_ms": round(statistics.median(r.sched_ms for r in reps), 1),
        "react_median_ms": round(statistics.median(r.react_ms for r in reps), 1),
        "react_worst_ms": round(max(r.react_ms for r in reps), 1),
        "takeover_median_ms": round(statistics.median(r.takeover_ms for r in reps), 1),
        "takeover_worst_dev_ms": round(max((r.takeover_ms - MDI_MS for r in reps), key=abs), 1),
        "excess_median_ms": round(statistics.median(r.excess_ms for r in reps), 1),
        "excess_worst_ms": round(max(r.excess_ms for r in reps), 1),
        "total_ms": [round(r.total_ms, 1) for r in reps],
        "sched_ms": [round(r.sched_ms, 1) for r in reps],
        "react_ms": [round(r.react_ms, 1) for r in reps],
        "takeover_ms": [round(r.takeover_ms, 1) for r in reps],
    }
    benchmark.extra_info.update(result)
    REACTION[f"{service} {kind}"] = result
    # A takeover before the backup's Master_Down_Interval ran out would be a protocol error (6.4.2).
    assert min(r.takeover_ms for r in reps) >= MDI_MS - 5, result["takeover_ms"]
    # The tracker cannot decide before FALL checks failed.
    assert min(r.sched_ms for r in reps) >= (FALL - 1) * INTERVAL_MS - 5, result["sched_ms"]


_CHECK_SUPPORT: list[str | None] = []


def vrrp_check_unsupported() -> str | None:
    """None if the config reader accepts a vrrp_check block (fastvrrp -t), else its complaint."""
    if not _CHECK_SUPPORT:
        text = (
            "vrrp_check c {\n TCP_CHECK {\n  connect_ip 192.0.2.50\n  connect_port 80\n }\n}\n"
            "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n priority 100\n"
            " track_script {\n  c\n }\n virtual_ipaddress {\n  192.0.2.100/24\n }\n}\n"
        )
        path = f"/tmp/fvbench-check-{os.getpid()}.conf"
        _write(path, text)
        try:
            p = subprocess.run(
                [sys.executable, "-m", "fastvrrp", "-t", "-f", path],
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            os.unlink(path)
        msg = (p.stdout + p.stderr).strip()
        _CHECK_SUPPORT.append(None if p.returncode == 0 else f"the config reader refuses vrrp_check: {msg}")
    return _CHECK_SUPPORT[0]


# --- 2. cost ---------------------------------------------------------------------------------------------
def _vip(k: int, v: int) -> str:
    return (
        f"198.51.100.{v}/32",
        f"203.0.113.{v}/32",
        f"2001:db8:2::{v:x}/128",
        f"2001:db8:3::{v:x}/128",
    )[k]


def build_many(lab, lan: Lan, kind: str, tracker: str, keepalived_bin: str) -> Router:
    ns = lan.router_ns[0]
    for k in range(1, IFACES):
        # Each interface its own link (the peer end stays unbridged): on one shared segment eth2 and eth3
        # would hear each other's adverts for the same VRIDs (IPv6 link-local sources are not dropped as
        # martians, unlike IPv4 sources that are local) and half of them would rightly stay BACKUP.
        lab.veth(ns, f"eth{k}", lan.switch, f"q{k}")
    lab.addr(ns, "eth1", "192.0.2.11/24")  # the IPv4 instances on eth1 need a primary address (5.1.1.1)
    specs, blocks = [], []
    for k in range(IFACES):
        for v in range(1, PER_IF + 1):
            name = f"t{k}_{v}"
            extra = ("track_script {", f"    {name}", "}") if tracker != "none" else ()
            specs.append(
                InstanceSpec(
                    vrid=v, priority=100, version=3, advert_int_ms=COST_A_MS, vips=(_vip(k, v),),
                    name=f"VI_{k}_{v}", interface=f"eth{k}", extra=extra,
                )
            )  # fmt: skip
            if tracker == "script":
                blocks.append(f"vrrp_script {name} {{\n    script /bin/true\n    interval 1\n}}\n")
            elif tracker == "tcp":
                blocks.append(
                    f"vrrp_check {name} {{\n    TCP_CHECK {{\n        connect_ip 192.0.2.50\n"
                    f"        connect_port {TCP_PORT}\n        connect_timeout 1\n    }}\n"
                    "    interval 1\n}\n"
                )
    r = lan.router(1, kind, specs, keepalived_bin=keepalived_bin)
    r.blocks_before = "".join(blocks)
    return r


class TreeSampler:
    """Counts the daemon's child processes (its process tree minus its own processes) every 50 ms."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.own: set[int] = set()
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            if self.router.proc is None or not self.router.alive():
                continue
            tree = process_tree(self.router.proc.pid)
            self.samples.append((time.monotonic(), len([p for p in tree if p not in self.own_pids()])))

    def own_pids(self) -> set[int]:
        if not self.own and self.router.proc is not None:
            self.own = own_pids(self.router)
        return self.own

    def peak(self, after: float = 0.0) -> int:
        return max((n for t, n in self.samples if t >= after), default=0)

    def mean(self, after: float = 0.0) -> float:
        window = [n for t, n in self.samples if t >= after]
        return sum(window) / len(window) if window else 0.0


class ForkCounter:
    """Counts the processes a set of parents creates, from the kernel's process events (proc connector:
    NETLINK_CONNECTOR, CN_IDX_PROC; this process must be in the initial network namespace). A daemon that
    fell behind its 1,000 runs a second would otherwise look cheap; this shows the runs it really made."""

    _NLH = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
    _CN = struct.Struct("=IIIIHH")  # cn_msg: idx, val, seq, ack, len, flags
    _EV = struct.Struct("=IIQ")  # proc_event: what, cpu, timestamp_ns
    _FORK = struct.Struct("=IIII")  # parent pid, parent tgid, child pid, child tgid

    def __init__(self) -> None:
        self.parents: set[int] = set()
        self.count = 0
        self.lost = 0
        self._stop = threading.Event()
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 11)  # NETLINK_CONNECTOR
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((0, 1))  # CN_IDX_PROC
        listen = struct.pack("=I", 1)  # PROC_CN_MCAST_LISTEN
        cn = self._CN.pack(1, 1, 0, 0, len(listen), 0)
        self.sock.send(
            self._NLH.pack(self._NLH.size + len(cn) + len(listen), 3, 0, 0, os.getpid()) + cn + listen
        )
        self.sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def _run(self) -> None:
        hdr = self._NLH.size + self._CN.size
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # ENOBUFS: events lost; counted, so the figure is known to be a lower bound
                self.lost += 1
                continue
            off = 0
            while off + hdr + self._EV.size <= len(data):
                ln = self._NLH.unpack_from(data, off)[0]
                if ln < hdr:
                    break
                what = self._EV.unpack_from(data, off + hdr)[0]
                q = off + hdr + self._EV.size
                if what == 1 and q + self._FORK.size <= off + ln:  # PROC_EVENT_FORK
                    _pp, ptgid, cpid, ctgid = self._FORK.unpack_from(data, q)
                    if cpid == ctgid and ptgid in self.parents:  # a process, not a thread
                        self.count += 1
                off += (ln + 3) & ~3


def _accepted(lab) -> int:
    try:
        with open(os.path.join(lab.workdir, "accepted")) as f:
            return int(f.read() or 0)
    except (OSError, ValueError):
        return 0


def own_pids(r: Router) -> set[int]:
    """The daemon's own processes: fastvrrp is one; keepalived --vrrp is a parent and its VRRP child."""
    assert r.proc is not None
    pids = {r.proc.pid}
    if r.kind == "keepalived":
        try:
            with open(r.pidfiles[1]) as f:
                pids.add(int(f.read().split()[0]))
        except (OSError, ValueError, IndexError):
            pass
    return pids


def measure_cost(lab, keepalived_bin: str, kind: str, tracker: str) -> dict[str, Any]:
    lan = Lan(lab, routers=1, client=(tracker == "tcp"))
    if tracker == "tcp":
        assert lan.client is not None
        listener = _write(os.path.join(lab.workdir, "listener.py"), LISTENER_PY)
        accepted = os.path.join(lab.workdir, "accepted")
        lab.spawn(lan.client, [sys.executable, listener, "192.0.2.50", str(TCP_PORT), accepted], "listener")
    r = build_many(lab, lan, kind, tracker, keepalived_bin)
    sampler = TreeSampler(r)
    forks = ForkCounter()
    t_start = time.monotonic()
    r.start()
    sampler.start()
    try:
        if kind == "keepalived":
            wait_for(lambda: os.path.exists(r.pidfiles[1]), timeout=30, what="keepalived's VRRP child")
        r.wait_all("MASTER", timeout=120)
        startup_s = time.monotonic() - t_start
        time.sleep(SETTLE_S)  # a fixed settling pause before a fixed window (start-up bursts excluded)
        own = own_pids(r)
        sampler.own = own
        forks.parents = own
        transitions0 = r.transitions_count()
        (c0, k0), n0, a0, w0 = cpu_times(own), forks.count, _accepted(lab), time.monotonic()
        time.sleep(WINDOW_S)
        (c1, k1), n1, a1, w1 = cpu_times(own), forks.count, _accepted(lab), time.monotonic()
        assert r.alive(), r.log()[-3000:]
        flaps = r.transitions_count() - transitions0
        rss = rss_kib(own)
    finally:
        sampler.stop()
        forks.close()
    span = w1 - w0
    return {
        "instances": PER_IF * IFACES,
        "startup_s": round(startup_s, 2),
        "daemon_cpu_per_s": round((c1 - c0) / span, 3),
        "children_cpu_per_s": round((k1 - k0) / span, 3),
        "spawns_per_s": round((n1 - n0) / span, 1),
        # Checks the listener accepted (its count is up to 0.5 s old at either end of the window).
        "tcp_accepts_per_s": round((a1 - a0) / span, 1),
        "proc_events_lost": forks.lost,
        "cpu_per_s": round((c1 - c0 + k1 - k0) / span, 3),
        "peak_children_window": sampler.peak(after=w0),
        "mean_children_window": round(sampler.mean(after=w0), 2),
        "peak_children_startup": sampler.peak(),
        "rss_mib": round(rss / 1024, 1),
        "own_processes": len(own),
        "transitions_in_window": flaps,
        "window_s": round(span, 2),
    }


COST_CASES = [
    ("keepalived", "none"),
    ("fastvrrp", "none"),
    ("keepalived", "script"),
    ("fastvrrp", "script"),
    ("fastvrrp", "tcp"),
]


@pytest.mark.parametrize("kind,tracker", COST_CASES, ids=[f"{t}-{k}" for k, t in COST_CASES])
def test_cost(benchmark, lab, keepalived_bin, kind, tracker):
    if tracker == "tcp" and (why := vrrp_check_unsupported()):
        pytest.skip(why)
    result = benchmark.pedantic(
        measure_cost, args=(lab, keepalived_bin, kind, tracker), rounds=1, iterations=1
    )
    benchmark.extra_info.update(result)
    COST[f"{tracker} {kind}"] = result
    base = COST.get(f"none {kind}")
    if base is not None and tracker != "none":
        result["tracker_cpu_per_s"] = round(result["cpu_per_s"] - base["cpu_per_s"], 3)
        runs = result["spawns_per_s"] or result["tcp_accepts_per_s"]
        if runs > 0:
            result["tracker_cpu_ms_per_run"] = round(result["tracker_cpu_per_s"] / runs * 1000, 3)
    if result["spawns_per_s"] > 0:
        # Little's law: the mean number of children alive / the spawn rate = how long each one lives from
        # spawn to reap. With a bounded runner, bound / that lifetime is the most runs a second it can make.
        result["child_lifetime_ms"] = round(result["mean_children_window"] / result["spawns_per_s"] * 1000, 1)
    benchmark.extra_info.update(result)
    # The daemon worked through the window (an idle or dead process would read as a spectacular win).
    assert result["cpu_per_s"] > 0, result
    if tracker == "script":
        assert result["children_cpu_per_s"] > 0, result  # the scripts did run
    if tracker == "tcp":
        assert result["peak_children_window"] == 0, result  # in-process: nothing forked


def cost_ratios() -> dict[str, str]:
    """The issue's two targets, from whatever cost cases ran: fastvrrp's scripts use no more CPU than
    keepalived's (for the same work: per run, and keeping the schedule of 1,000 runs a second); in-process
    checks use at least 10x less CPU than keepalived's scripts. Whole daemon (VRRP included) and trackers
    only (minus the same daemon's no-tracker baseline)."""
    out: dict[str, str] = {}
    ka, fs, ft = COST.get("script keepalived"), COST.get("script fastvrrp"), COST.get("tcp fastvrrp")
    for name, r in (("keepalived", ka), ("fastvrrp", fs)):
        if r:
            n = PER_IF * IFACES
            verdict = "kept up" if r["spawns_per_s"] >= KEEP_UP * n else "FELL BEHIND"
            out[f"{name} script runs/s"] = f"{r['spawns_per_s']:.0f} of {n} scheduled ({verdict})"
    if ka and fs:
        r = fs["cpu_per_s"] / max(ka["cpu_per_s"], 1e-9)
        out["fastvrrp scripts / keepalived scripts (CPU/s)"] = f"{r:.2f}"
        if "tracker_cpu_ms_per_run" in ka and "tracker_cpu_ms_per_run" in fs:
            r = fs["tracker_cpu_ms_per_run"] / max(ka["tracker_cpu_ms_per_run"], 1e-9)
            out["fastvrrp scripts / keepalived scripts (CPU per run)"] = (
                f"{r:.2f} (target <= 1: {'met' if r <= 1 else 'NOT met'})"
            )
    if ka and ft:
        r = ka["cpu_per_s"] / max(ft["cpu_per_s"], 1e-9)
        line = f"{r:.1f}x (target >= 10x: {'met' if r >= 10 else 'NOT met'})"
        if "tracker_cpu_per_s" in ka and "tracker_cpu_per_s" in ft:
            line += f"; trackers only {ka['tracker_cpu_per_s'] / max(ft['tracker_cpu_per_s'], 1e-9):.1f}x"
        out["keepalived scripts / fastvrrp TCP checks (CPU)"] = line
    return out


def test_cost_targets(benchmark):
    """The verdict on the issue's targets, separate from the measurements so that those are always
    recorded; fails while a target is not reached."""
    ka, fs, ft = COST.get("script keepalived"), COST.get("script fastvrrp"), COST.get("tcp fastvrrp")
    if not ka or not (fs or ft):
        pytest.skip("needs the keepalived script case and a fastvrrp tracker case from this run")
    ratios = benchmark.pedantic(cost_ratios, rounds=1, iterations=1)
    benchmark.extra_info.update(ratios)
    problems = []
    if fs:
        if fs["spawns_per_s"] < KEEP_UP * PER_IF * IFACES:
            problems.append("fastvrrp fell behind its script schedule")
        if fs.get("tracker_cpu_ms_per_run", 0) > ka.get("tracker_cpu_ms_per_run", 0):
            problems.append("fastvrrp spends more CPU per script run than keepalived")
    if ft and ka["cpu_per_s"] < 10 * ft["cpu_per_s"]:
        problems.append("in-process TCP checks are not 10x cheaper than keepalived's scripts")
    assert not problems, (problems, ratios)


# --- report ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def report(request):
    yield
    lines: list[str] = []
    if REACTION:
        lines += [
            "",
            f"Reaction: service stop -> peer's first advert as master, VRRPv3 A={A_MS} ms, check interval "
            f"{INTERVAL_MS} ms, fall {FALL}, {REPS} reps (ms)",
            f"RFC 5798: total = sched + MDI - g (g in [0, A)), MDI = {MDI_MS:.1f}; over all phases "
            f"[{LOW_MS:.1f}, {HIGH_MS:.1f}), mean {MEAN_MS:.1f}; "
            f"excess = total - sched - MDI in (-{A_MS}, 0]",
            f"{'case':<22}{'total med':>10}{'worst':>8}{'sched med':>10}{'react med':>10}{'worst':>8}"
            f"{'takeover med':>13}{'excess med':>11}{'worst':>8}",
        ]
        for case, r in REACTION.items():
            lines.append(
                f"{case:<22}{r['total_median_ms']:10.1f}{r['total_worst_ms']:8.1f}{r['sched_median_ms']:10.1f}"
                f"{r['react_median_ms']:10.1f}{r['react_worst_ms']:8.1f}{r['takeover_median_ms']:13.1f}"
                f"{r['excess_median_ms']:11.1f}{r['excess_worst_ms']:8.1f}"
            )
        k, f = REACTION.get("script keepalived"), REACTION.get("script fastvrrp")
        if k and f:
            lines.append(
                f"{'ratio f/k (script)':<22}{f['total_median_ms'] / k['total_median_ms']:10.3f}"
                f"{f['total_worst_ms'] / k['total_worst_ms']:8.3f}"
            )
    if COST:
        lines += [
            "",
            f"Cost: {PER_IF * IFACES} VRRPv3 instances at {COST_A_MS} ms, one tracker each at 1 s; CPU s/s "
            f"over {WINDOW_S:.0f} s (daemon = utime+stime, children = reaped cutime+cstime;",
            "  trackers = cpu/s minus the no-tracker baseline; runs/s = scripts spawned or TCP checks seen;",
            "  life = mean children alive / spawns per second: spawn to reap)",
            f"{'case':<22}{'cpu/s':>8}{'daemon':>8}{'children':>9}{'trackers':>9}{'runs/s':>8}{'ms/run':>7}"
            f"{'peak ch.':>9}{'life ms':>8}"
            f"{'(start)':>8}{'start s':>8}{'RSS MiB':>8}{'flaps':>6}",
        ]
        for case, r in COST.items():
            trk = r.get("tracker_cpu_per_s")
            lines.append(
                f"{case:<22}{r['cpu_per_s']:8.3f}{r['daemon_cpu_per_s']:8.3f}{r['children_cpu_per_s']:9.3f}"
                f"{(f'{trk:.3f}' if trk is not None else '-'):>9}"
                f"{(r['spawns_per_s'] or r['tcp_accepts_per_s']):8.1f}"
                f"{(f'{r[ms]:.3f}' if (ms := 'tracker_cpu_ms_per_run') in r else '-'):>7}"
                f"{r['peak_children_window']:9d}"
                f"{(f'{r[lt]:.1f}' if (lt := 'child_lifetime_ms') in r else '-'):>8}"
                f"{r['peak_children_startup']:8d}{r['startup_s']:8.1f}{r['rss_mib']:8.1f}"
                f"{r['transitions_in_window']:6d}"
            )
        lines += [f"{k}: {v}" for k, v in cost_ratios().items()]
    if not lines:
        return
    print_table(request, lines)
