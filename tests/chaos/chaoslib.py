"""Faults for the chaos tests, and the wire analysis their verdicts rest on.

The faults are real: a partition is an nftables drop between two bridge ports, a flap is `ip link set`, a
stall is SIGSTOP, starvation is a cgroup CPU quota, a clock step is clock_settime(CLOCK_REALTIME). The
verdicts come from the wire (the kernel's receive stamps on the bridge, or the tap's monotonic read time when
the wall clock itself is the fault) and from the kernel's address table (`ip -j addr`, `ip -ts monitor
address`), not from the daemons' own account of what they did.

Timing margins are stated where they are used; they are generous because CI runs on two shared cores.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from fastvrrp.lab.namespaces import Lab, Proc, wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan, Router
from fastvrrp.lab.wiretap import Event, WireTap, canonical

# --- instances ---------------------------------------------------------------------------------------------


def split_pair(count: int, adver_int_ms: int, first_vrid: int = 51) -> tuple[list[InstanceSpec], ...]:
    """`count` v3 IPv4 instances for two routers: router 1 outranks router 2 on the even ones (200 vs 100),
    router 2 outranks router 1 on the odd ones, so each side is master of half the VRIDs. One /32 VIP each
    (198.51.100.VRID)."""
    one, two = [], []
    for k in range(count):
        vrid = first_vrid + k
        base = InstanceSpec(vrid=vrid, advert_int_ms=adver_int_ms, vips=(f"198.51.100.{vrid}/32",))
        hi, lo = (200, 100) if k % 2 == 0 else (100, 200)
        one.append(replace(base, priority=hi))
        two.append(replace(base, priority=lo))
    return one, two


def winner(r1: Router, r2: Router, vrid: int) -> Router:
    """The router with the higher configured priority for `vrid`."""
    p1 = next(i.priority for i in r1.instances if i.vrid == vrid)
    p2 = next(i.priority for i in r2.instances if i.vrid == vrid)
    return r1 if p1 > p2 else r2


def loser(r1: Router, r2: Router, vrid: int) -> Router:
    return r2 if winner(r1, r2, vrid) is r1 else r1


def wait_settled(r1: Router, r2: Router, timeout: float = 30.0) -> None:
    """Every instance is in the state its priority gives it: the higher one MASTER, the lower one BACKUP."""

    def settled() -> bool:
        for r in (r1, r2):
            if not r.alive():
                raise RuntimeError(f"{r.name} exited:\n{r.log()[-3000:]}")
        st1, st2 = r1.states(), r2.states()
        for spec in r1.instances:
            w = winner(r1, r2, spec.vrid)
            want1, want2 = ("MASTER", "BACKUP") if w is r1 else ("BACKUP", "MASTER")
            if st1.get(spec.iname) != want1 or st2.get(spec.iname) != want2:
                return False
        return True

    wait_for(settled, timeout=timeout, interval=0.05, what=f"{r1.name} and {r2.name} settled")


def vip_holders(lan: Lan, vips: Sequence[str]) -> dict[str, list[str]]:
    """Which router namespaces hold each VIP (the kernel's address table, one `ip -j addr` per namespace)."""
    held: dict[str, set[str]] = {}
    for ns in lan.router_ns:
        info = json.loads(lan.lab.sh(ns, "ip -j addr show") or "[]")
        held[ns] = {canonical(a["local"]) for link in info for a in link.get("addr_info", []) if "local" in a}
    return {v: [ns for ns in lan.router_ns if canonical(v) in held[ns]] for v in vips}


def vips_right(lan: Lan, r1: Router, r2: Router) -> dict[str, tuple[list[str], str]]:
    """The VIPs not held by exactly their winner: {vip: (holders, winner's namespace)}; {} when all right."""
    want = {}
    for spec in r1.instances:
        for v in spec.vip_addrs:
            want[v] = winner(r1, r2, spec.vrid).ns
    holders = vip_holders(lan, list(want))
    return {v: (h, want[v]) for v, h in holders.items() if h != [want[v]]}


# --- the wire ----------------------------------------------------------------------------------------------


def runs(adverts: Sequence[Event], gap_s: float, mono: bool = False) -> list[tuple[float, float]]:
    """The spans [first, last] of a source's adverts (priority > 0) no further apart than gap_s: the
    stretches during which it acted as master. mono: use the tap's monotonic read time instead of the
    kernel's wall-clock stamp (for tests that step the wall clock)."""
    out: list[list[float]] = []
    for e in adverts:
        if e.priority == 0:
            continue
        t = e.mono_ns / 1e9 if mono else e.t
        if out and t - out[-1][1] <= gap_s:
            out[-1][1] = t
        else:
            out.append([t, t])
    return [(a, b) for a, b in out]


def overlaps(
    tap: WireTap, vrid: int, src_a: str, src_b: str, adver_int_ms: float, after: float = 0.0
) -> list[tuple[float, float]]:
    """Windows in which both sources advertised `vrid` (each counted as master over its runs of adverts no
    more than 1.5 intervals apart): (start, end) in wall-clock seconds."""
    gap = 1.5 * adver_int_ms / 1000
    return overlap_windows(
        runs(tap.adverts(vrid, src_a, after), gap), runs(tap.adverts(vrid, src_b, after), gap)
    )


def time_runs(times: Sequence[float], gap_s: float) -> list[tuple[float, float]]:
    """runs() for plain sorted times (seconds)."""
    out: list[list[float]] = []
    for t in times:
        if out and t - out[-1][1] <= gap_s:
            out[-1][1] = t
        else:
            out.append([t, t])
    return [(a, b) for a, b in out]


def overlap_windows(
    ra: Sequence[tuple[float, float]], rb: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """Where two lists of master runs overlap: (start, end)."""
    out = []
    for (a0, a1), (b0, b1) in itertools.product(ra, rb):
        lo, hi = max(a0, b0), min(a1, b1)
        if hi > lo:
            out.append((lo, hi))
    return sorted(out)


def gaps(times: Sequence[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def max_gap(times: Sequence[float]) -> float:
    return max(gaps(times), default=0.0)


# --- faults ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def partition(lab: Lan, ports: tuple[str, str] = ("p1", "p2")) -> Iterator[None]:
    """Drop every frame the bridge forwards between two of its ports (nftables, bridge family, in the switch
    namespace): the routers keep their links up and the capture on the bridge still sees both sides. The
    heal deletes the table; leaving the block heals too."""
    a, b = ports
    ns = lab.switch
    rules = (
        "add table bridge chaos\n"
        "add chain bridge chaos cut { type filter hook forward priority 0; policy accept; }\n"
        f"add rule bridge chaos cut iifname {a} oifname {b} drop\n"
        f"add rule bridge chaos cut iifname {b} oifname {a} drop\n"
    )
    path = os.path.join(lab.lab.workdir, "partition.nft")
    with open(path, "w") as f:
        f.write(rules)
    lab.lab.sh(ns, f"nft -f {path}")
    try:
        yield
    finally:
        heal(lab)


def heal(lan: Lan) -> None:
    lan.lab.sh(lan.switch, "nft delete table bridge chaos", check=False)


class AddressMonitor:
    """`ip -ts monitor address` in a namespace: every address added or deleted, with the time `ip` read the
    netlink notification (gettimeofday; never earlier than the change itself, so "deleted before X" read from
    it is conservative)."""

    _LINE = re.compile(
        r"^\[(?P<ts>[^\]]+)\]\s*(?P<deleted>Deleted )?\d+: \S+\s+inet6? (?P<addr>[0-9a-f.:]+)/"
    )

    def __init__(self, lab: Lab, ns: str, name: str) -> None:
        self.lab, self.ns = lab, ns
        self.proc: Proc = lab.spawn(ns, ["ip", "-ts", "monitor", "address"], name)
        # Ready once it reports a change we make (no fixed sleep): a throwaway address on lo.
        probe = "203.0.113.254"

        def seen() -> bool:
            lab.sh(ns, f"ip addr replace {probe}/32 dev lo")
            return any(e[2] == probe for e in self.events())

        wait_for(seen, timeout=10, interval=0.1, what="ip monitor address ready")
        lab.sh(ns, f"ip addr del {probe}/32 dev lo")

    def events(self) -> list[tuple[float, bool, str]]:
        """(wall-clock seconds, deleted?, address) in the order `ip` printed them."""
        out = []
        for line in self.proc.log().splitlines():
            m = self._LINE.match(line)
            if m:
                ts = datetime.fromisoformat(m["ts"]).timestamp()
                out.append((ts, bool(m["deleted"]), canonical(m["addr"])))
        return out

    def stop(self) -> None:
        self.proc.stop(signal.SIGTERM, timeout=5)


@dataclass
class CpuQuota:
    """A cgroup CPU quota for one process (and its threads): `quota_us` of CPU per `period_us`. cgroup v1
    (cpu.cfs_quota_us / cpu.cfs_period_us) or v2 (cpu.max), whichever this machine mounts."""

    name: str
    quota_us: int
    period_us: int
    path: str = ""

    def __post_init__(self) -> None:
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # v2, unified
            with open("/sys/fs/cgroup/cgroup.controllers") as f:
                if "cpu" not in f.read().split():
                    raise RuntimeError("cgroup v2 without the cpu controller")
            with open("/sys/fs/cgroup/cgroup.subtree_control", "w") as f:
                f.write("+cpu")
            self.root, self.v2 = "/sys/fs/cgroup", True
        elif os.path.exists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"):
            self.root, self.v2 = "/sys/fs/cgroup/cpu", False
        else:
            raise RuntimeError("no cgroup cpu controller (neither v2 cpu.max nor v1 cpu.cfs_quota_us)")
        self.path = os.path.join(self.root, self.name)
        os.mkdir(self.path)
        try:
            if self.v2:
                self._write("cpu.max", f"{self.quota_us} {self.period_us}")
            else:
                self._write("cpu.cfs_period_us", str(self.period_us))
                self._write("cpu.cfs_quota_us", str(self.quota_us))
        except OSError:
            os.rmdir(self.path)  # a quota the kernel refuses (under 1 ms ...) leaves no group behind
            raise

    def _write(self, knob: str, value: str) -> None:
        with open(os.path.join(self.path, knob), "w") as f:
            f.write(value)

    def add(self, pid: int) -> None:
        self._write("cgroup.procs", str(pid))

    def stat(self) -> dict[str, int]:
        """cpu.stat: nr_periods, nr_throttled, throttled_time (v1, ns) / throttled_usec (v2) ..."""
        with open(os.path.join(self.path, "cpu.stat")) as f:
            return {k: int(v) for k, v in (line.split() for line in f if line.strip())}

    def throttled(self) -> int:
        return self.stat().get("nr_throttled", 0)

    def close(self) -> None:
        """Move any process left back to the root group and remove the group."""
        procs = os.path.join(self.path, "cgroup.procs")
        with contextlib.suppress(OSError), open(procs) as f:
            pids = [p for p in f.read().split() if p]
        for pid in pids:
            with contextlib.suppress(OSError), open(os.path.join(self.root, "cgroup.procs"), "w") as f:
                f.write(pid)
        wait_for(lambda: _rmdir(self.path), timeout=10, what=f"rmdir {self.path}")


def run_seconds(pid: int) -> float:
    """CPU time the process has run so far, all its threads, in the scheduler's nanoseconds
    (/proc/PID/task/*/schedstat): testbed.cpu_seconds counts clock ticks of 10 ms, too coarse for a need of
    about 1 % of a core sampled over 2 s."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total / 1e9


def cpu_need(pid: int, seconds: float = 2.0) -> float:
    """The share of a core the process used over the next `seconds` (0.02 = 2 %)."""
    c0, t0 = run_seconds(pid), time.monotonic()
    wait_for(lambda: time.monotonic() > t0 + seconds, timeout=seconds + 5, what="the CPU sample")
    return (run_seconds(pid) - c0) / (time.monotonic() - t0)


def quota_below(need: float, fraction: float, period_us: int) -> tuple[int, int]:
    """(quota_us, period_us) granting `fraction` of a measured `need` (share of a core): the kernel takes no
    quota under 1 ms nor a period over 1 s, so a small grant lengthens the period instead of rounding the
    quota up to the need. A fixed quota goes stale as the daemon gets cheaper (it once stopped throttling at
    all); one drawn from the need keeps the starvation what the test says it is."""
    share = need * fraction
    quota = int(period_us * share)
    if quota < 1000:
        quota, period_us = 1000, min(1_000_000, int(1000 / share)) if share > 0 else 1_000_000
    return quota, period_us


def _rmdir(path: str) -> bool:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


@contextlib.contextmanager
def wall_clock_offset() -> Iterator[ClockStepper]:
    """Step the machine's wall clock (CLOCK_REALTIME) inside the block; on leaving, whatever happened, it is
    put back to what it would read had it never been stepped: the time at entry plus the CLOCK_MONOTONIC
    time elapsed since (good to a few microseconds)."""
    stepper = ClockStepper(time.clock_gettime_ns(time.CLOCK_REALTIME), time.monotonic_ns())
    try:
        yield stepper
    finally:
        stepper.restore()


@dataclass
class ClockStepper:
    rt0_ns: int
    mono0_ns: int

    def true_now_ns(self) -> int:
        return self.rt0_ns + (time.monotonic_ns() - self.mono0_ns)

    def offset_ns(self) -> int:
        """How far the wall clock is from where it should be now."""
        return time.clock_gettime_ns(time.CLOCK_REALTIME) - self.true_now_ns()

    def step(self, seconds: float) -> None:
        """Set the wall clock `seconds` away from its true time."""
        time.clock_settime_ns(time.CLOCK_REALTIME, self.true_now_ns() + int(seconds * 1e9))

    def restore(self) -> None:
        time.clock_settime_ns(time.CLOCK_REALTIME, self.true_now_ns())


# --- kernel drop counters ----------------------------------------------------------------------------------


def link_drops(lab: Lab, ns: str) -> dict[str, tuple[int, int]]:
    """{interface: (rx dropped, tx dropped)} of a namespace's links with any drop (`ip -s -j link`): a veth
    counts a frame its peer's backlog refused as a tx drop of its own."""
    out = {}
    for link in json.loads(lab.sh(ns, "ip -s -j link") or "[]"):
        st = link.get("stats64", {})
        rx, tx = st.get("rx", {}).get("dropped", 0), st.get("tx", {}).get("dropped", 0)
        if rx or tx:
            out[link["ifname"]] = (rx, tx)
    return out


def softnet_drops() -> int:
    """Frames the host dropped for a full per-CPU backlog (/proc/net/softnet_stat, second column, all CPUs;
    not per namespace: other traffic on the machine counts too)."""
    with open("/proc/net/softnet_stat") as f:
        return sum(int(line.split()[1], 16) for line in f if line.strip())


# --- processes ---------------------------------------------------------------------------------------------


def fd_count(pid: int, reads: int = 5) -> int:
    """Open descriptors of `pid`: the least of a few reads 20 ms apart, so a descriptor that lives for one
    request (a netlink call's own event loop in the daemon's executor) does not count as held."""
    seen = []
    for k in range(reads):
        if k:
            time.sleep(0.02)
        seen.append(len(os.listdir(f"/proc/{pid}/fd")))
    return min(seen)


def proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def stop_process(r: Router) -> None:
    """SIGSTOP the daemon (every process of keepalived's tree) and wait until the kernel shows it stopped."""
    for pid in r.pids():
        os.kill(pid, signal.SIGSTOP)
    wait_for(lambda: all(proc_state(p) in "Tt" for p in r.pids()), timeout=5, what=f"{r.name} stopped")


def cont_process(r: Router) -> None:
    for pid in r.pids():
        os.kill(pid, signal.SIGCONT)


# --- capture with tcpdump ----------------------------------------------------------------------------------


class Tcpdump:
    """tcpdump writing VRRP frames seen on one interface of a namespace to a pcap file (kernel stamps, ns):
    for rates the Python tap cannot follow (tens of thousands of adverts a second). `dropped` says whether
    the kernel dropped any frame on the way to it (then its gaps prove nothing)."""

    def __init__(self, lab: Lab, ns: str, ifname: str, name: str) -> None:
        self.path = os.path.join(lab.workdir, f"{name}.pcap")
        argv = ["tcpdump", "-i", ifname, "-n", "-s", "64", "-B", "65536", "--time-stamp-precision=nano"]
        self.proc = lab.spawn(ns, [*argv, "-w", self.path, "ip proto 112"], name)
        wait_for(lambda: "listening on" in self.proc.log(), timeout=10, what="tcpdump listening")

    def stop(self, covered: float | None = None) -> int:
        """Stop it and return how many frames the kernel dropped before tcpdump read them. libpcap hands
        tcpdump a ring block when it is full or a second old and what is still in the ring at SIGINT is lost,
        so with `covered` (time.time()) it stops no earlier than 1.3 s after it (as fastvrrp.lab.density)."""
        if covered is not None:
            wait_for(
                lambda: time.time() >= covered + 1.3, timeout=10, interval=0.05, what="the last ring block"
            )
        self.proc.stop(signal.SIGINT, timeout=10)
        m = re.search(r"(\d+) packets? dropped by kernel", self.proc.log())
        assert m, self.proc.log()
        return int(m[1])

    def adverts(self) -> dict[tuple[str, int], list[tuple[float, int]]]:
        """{(IPv4 source, VRID): [(kernel stamp in s, priority), ...]} in capture order."""
        from fastvrrp.tools import pcap

        out: dict[tuple[str, int], list[tuple[float, int]]] = {}
        for rec in pcap.read_file(self.path):
            d = rec.data
            if len(d) < 14 + 20 + 8 or d[12:14] != b"\x08\x00":
                continue
            ihl = (d[14] & 0x0F) * 4
            if d[14 + 9] != 112:
                continue
            src = ".".join(str(b) for b in d[26:30])
            v = d[14 + ihl :]
            out.setdefault((src, v[1]), []).append((rec.t_ns / 1e9, v[2]))
        return out
