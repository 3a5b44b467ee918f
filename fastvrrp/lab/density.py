"""A density lab: thousands of VRRP instances over several L2 segments, and a cheap observer of their adverts.

    lab = Lab()
    net = DensityLan(lab, instances=1000, routers=2)          # 4 segments (bridges br0..br3) of 250 VRIDs
    r1 = net.router(1, "fastvrrp", net.instances(priority=200, adver_int_ms=10))
    r2 = net.router(2, "fastvrrp", net.instances(priority=100, adver_int_ms=10))
    with net.observer() as obs:                               # tcpdump per bridge, kernel-filtered
        up = start_and_wait(r1)                               # exec -> every instance in its initial state
        ...
        t0 = time.time(); time.sleep(20); t1 = time.time()
    report = obs.analyse(t0, t1, adver_int_ms=10, master=r1)

Topology. Segment s (0-based) is bridge br<s> in the switch namespace; router i has interface eth<s> on it
with 192.0.2.(8s+i)/29, so segment 0 carries the addresses testbed.Lan gives (192.0.2.i) and up to 16
segments (4,000 instances) and 6 routers fit in 192.0.2.0/24. A segment holds VRIDs 1..250; instance
`VI_<s>_<vrid>` has one /32 VIP, 198.51.100.<vrid> on even segments and 203.0.113.<vrid> on odd ones: the
same /32 repeats on separate L2 segments, as it may in a real network.

Observer. One tcpdump per bridge, in the switch namespace, with the BPF filter `ip proto 112` run by the
kernel, 40-byte snapshots (Ethernet + IPv4 + the first 6 bytes of VRRP: VRID, priority, interval) and
nanosecond kernel timestamps written to a pcap file: no per-frame work in Python while the routers run.
The files are decoded after the window. Its CPU is reported (`Capture.cpu_seconds`) so a run can state it;
the kernel's share of a tap (the filter and the copy into the ring) runs in the sender's softirq and is
charged to whichever process sent the frame, equally for both implementations.

Analysis (`analyse`, pure functions below, unit-tested): adverts sent by the master as a share of the
expected N * window / A, the largest gap between consecutive adverts of each (segment, VRID) from the master
(edges of the window included by taking the last advert before and the first after), adverts from any other
source (a backup advertising: two masters), and per-router transitions from the logs.
"""

from __future__ import annotations

import bisect
import functools
import math
import os
import re
import signal
import struct
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from fastvrrp.lab.namespaces import Lab, Proc, wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan, Router, cpu_seconds, master_down_ms, rss_kib

SEGMENT_SIZE = 250
MAX_SEGMENTS = 16
MAX_ROUTERS = 6
VIP_NETS = ("198.51.100.{}/32", "203.0.113.{}/32")
K = TypeVar("K")
_STATE_RE = re.compile(rb"\((?P<inst>[^)\s]+)\) Entering (?P<state>[A-Z]+) STATE")


def byte_compile() -> None:
    """Write the bytecode of every fastvrrp module, as installing the package does (pip, a distribution's
    package), so that a start-up measured is an installed daemon's: without it (a source tree run with
    PYTHONDONTWRITEBYTECODE=1) each exec compiles some 80 modules first, about 90 ms on the lab machine
    (docs/costs.md#start-up)."""
    import compileall
    import io
    from contextlib import redirect_stdout

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with redirect_stdout(io.StringIO()) as out:
        if not compileall.compile_dir(package, quiet=1):
            raise RuntimeError(f"byte-compiling {package} failed: {out.getvalue()[-2000:]}")


def segments_for(instances: int, per_segment: int = SEGMENT_SIZE) -> int:
    """How many segments of `per_segment` VRIDs hold `instances`."""
    return max(1, math.ceil(instances / per_segment))


def segment_addr(segment: int, host: int) -> str:
    """Router `host`'s address on `segment` (no prefix)."""
    if not 0 <= segment < MAX_SEGMENTS or not 1 <= host <= MAX_ROUTERS:
        raise ValueError(f"segment {segment} / host {host} outside the plan (16 segments x 6 hosts)")
    return f"192.0.2.{8 * segment + host}"


def instance_name(segment: int, vrid: int) -> str:
    return f"VI_{segment}_{vrid}"


def density_instances(
    count: int,
    priority: int,
    adver_int_ms: int,
    version: int = 3,
    owner: tuple[int, int] | None = None,
    per_segment: int = SEGMENT_SIZE,
) -> list[InstanceSpec]:
    """`count` v4 instances over segments_for(count) interfaces, VRIDs 1..per_segment on each.

    owner=(segment, host): VRID 1 of that segment is configured as an address owner (priority 255, state
    MASTER; RFC 5798 6.4.1: it advertises at once), as keepalived and fastvrrp take priority 255 to mean.
    """
    out = []
    for i in range(count):
        seg, vrid = divmod(i, per_segment)
        vrid += 1
        prio, state = priority, "BACKUP"
        if owner is not None and owner[0] == seg and vrid == 1:
            prio, state = 255, "MASTER"
        out.append(
            InstanceSpec(
                vrid=vrid,
                priority=prio,
                version=version,
                advert_int_ms=adver_int_ms,
                vips=(VIP_NETS[seg % 2].format(vrid),),
                state=state,
                name=instance_name(seg, vrid),
                interface=f"eth{seg}",
            )
        )
    return out


class DensityLan(Lan):
    """testbed.Lan with one bridge per segment; routers have eth0..eth<k-1>, no client."""

    def __init__(self, lab: Lab, instances: int, routers: int = 2, per_segment: int = SEGMENT_SIZE) -> None:
        if not 1 <= routers <= MAX_ROUTERS or not 1 <= per_segment <= SEGMENT_SIZE:
            raise ValueError(f"1..{MAX_ROUTERS} routers, 1..{SEGMENT_SIZE} instances per segment")
        self.per_segment = per_segment
        self.segments = segments_for(instances, per_segment)
        if self.segments > MAX_SEGMENTS:
            raise ValueError(f"at most {MAX_SEGMENTS * SEGMENT_SIZE} instances")
        self.count = instances
        self.lab, self.bridge, self.client = lab, "br0", None
        self.bridges = [f"br{s}" for s in range(self.segments)]
        self.switch = lab.ns("sw")
        for br in self.bridges:
            lab.bridge(self.switch, br)
        self.router_ns, self.routers = [], []
        for i in range(1, routers + 1):
            ns = lab.ns(f"r{i}")
            for s, br in enumerate(self.bridges):
                lab.veth(ns, f"eth{s}", self.switch, f"p{i}s{s}", br)
                lab.addr(ns, f"eth{s}", segment_addr(s, i) + "/29")
            self.router_ns.append(ns)

    def instances(
        self, priority: int, adver_int_ms: int, version: int = 3, owner_host: int | None = None
    ) -> list[InstanceSpec]:
        owner = (0, owner_host) if owner_host is not None else None
        return density_instances(self.count, priority, adver_int_ms, version, owner, self.per_segment)

    def host_of(self, src: str) -> int | None:
        """The router index whose address `src` is, on any segment."""
        last = int(src.rsplit(".", 1)[1]) if src.startswith("192.0.2.") else -1
        host = last % 8
        return host if last >= 0 and 1 <= host <= MAX_ROUTERS else None

    def analyse(self, capture: Capture, t0: float, t1: float, adver_int_ms: int, master: int, mdi_ms: float):
        """capture.analyse for this lab's instances."""
        return capture.analyse(t0, t1, adver_int_ms, master, self.count, mdi_ms, self.per_segment)

    def observer(self, snaplen: int = 40) -> Capture:
        return Capture(self.lab, self.switch, self.bridges, snaplen=snaplen)


# --- the observer ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Advert:
    """One VRRP advert seen on a segment: kernel receive time (CLOCK_REALTIME ns), source, VRID, priority."""

    t_ns: int
    segment: int
    src_host: int  # last octet of the IPv4 source
    vrid: int
    priority: int


class Capture:
    """One tcpdump per bridge (started by start(), stopped by stop()); `adverts()` decodes the files."""

    DELIVERY_S = 1.3

    def __init__(self, lab: Lab, ns: str, bridges: Sequence[str], snaplen: int = 40) -> None:
        self.lab, self.ns, self.bridges, self.snaplen = lab, ns, list(bridges), snaplen
        self.paths = [os.path.join(lab.workdir, f"cap-{br}.pcap") for br in self.bridges]
        self.procs: list[Proc] = []
        self.dropped: dict[str, int] = {}
        self._cpu = 0.0

    def start(self, timeout: float = 15.0) -> Capture:
        """Start the captures; returns once every tcpdump listens. tcpdump's default promiscuous mode is
        needed: a bridge passes the frames it forwards between ports to its own taps only when promiscuous."""
        for br, path in zip(self.bridges, self.paths, strict=True):
            argv = [
                "tcpdump", "-i", br, "-n", "-s", str(self.snaplen), "-B", "32768",
                "--time-stamp-precision=nano", "-w", path, "ip proto 112",
            ]  # fmt: skip
            self.procs.append(self.lab.spawn(self.ns, argv, f"tcpdump-{br}-{len(self.lab.procs)}"))
        for p in self.procs:
            wait_for(functools.partial(_listening, p), timeout=timeout, what="tcpdump listening")
            if not p.alive():
                raise RuntimeError(f"tcpdump exited: {p.log()[-2000:]}")
        return self

    def cpu_seconds(self) -> float:
        """CPU used by the capture processes so far (after stop(): their total)."""
        live = [p.pid for p in self.procs if p.alive()]
        return self._cpu + cpu_seconds(live) if live else self._cpu

    def stop(self, covered: float | None = None) -> None:
        """Stop every tcpdump (SIGINT: it flushes its file and reports kernel drops).

        tcpdump asks libpcap for a 1,000 ms delivery timeout: a ring block reaches tcpdump when it is full or
        a second old, and what is still in the ring at SIGINT is lost. With `covered` (time.time()), stop no
        earlier than DELIVERY_S after it, so that everything up to `covered` is in the files.
        """
        if not self.procs:
            return
        if covered is not None:
            # Waited on the monotonic clock: a step of the wall clock must not stretch (or skip) the wait.
            left = min(max(covered + self.DELIVERY_S - time.time(), 0.0), self.DELIVERY_S)
            end = time.monotonic() + left
            wait_for(
                lambda: time.monotonic() >= end,
                timeout=self.DELIVERY_S + 5,
                interval=0.05,
                what="the capture's last ring block",
            )
        self._cpu = cpu_seconds([p.pid for p in self.procs if p.alive()])
        for p in self.procs:
            p.stop(signal.SIGINT, timeout=10)
        for br, p in zip(self.bridges, self.procs, strict=True):
            m = re.search(r"(\d+) packets? dropped by kernel", p.log())
            self.dropped[br] = int(m.group(1)) if m else -1
        self.procs = []

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop(covered=time.time())

    def adverts(self, segments: Iterable[int] | None = None) -> Iterator[Advert]:
        """Every advert in the capture files (of `segments`), per segment in capture order, decoded as it
        goes: a 1,000 x 10 ms run captures millions."""
        for seg, path in enumerate(self.paths):
            if segments is not None and seg not in segments:
                continue
            with open(path, "rb") as f:
                yield from iter_pcap(f.read(), seg)

    def analyse(
        self,
        t0: float,
        t1: float,
        adver_int_ms: int,
        master: int,
        instances: int,
        mdi_ms: float,
        per_segment: int = SEGMENT_SIZE,
    ) -> DensityReport:
        return analyse(self.adverts(), t0, t1, adver_int_ms, master, instances, mdi_ms, per_segment)


def _listening(p: Proc) -> bool:
    return "listening on" in p.log() or not p.alive()


_GLOBAL = struct.Struct("<IHHiIII")
_REC = struct.Struct("<IIII")
PCAP_NS_MAGIC = 0xA1B23C4D
PCAP_US_MAGIC = 0xA1B2C3D4


def parse_pcap(data: bytes, segment: int) -> list[Advert]:
    """The IPv4 VRRP adverts of a little-endian Ethernet pcap (µs or ns stamps); other frames skipped."""
    return list(iter_pcap(data, segment))


def iter_pcap(data: bytes, segment: int) -> Iterator[Advert]:
    """parse_pcap, one advert at a time."""
    if len(data) < _GLOBAL.size:
        return
    magic = _GLOBAL.unpack_from(data)[0]
    if magic not in (PCAP_NS_MAGIC, PCAP_US_MAGIC):
        raise ValueError(f"not a little-endian pcap file (magic {magic:#x})")
    scale = 1 if magic == PCAP_NS_MAGIC else 1000
    pos, end = _GLOBAL.size, len(data)
    while pos + 16 <= end:
        sec, frac, incl, _orig = _REC.unpack_from(data, pos)
        pos += 16
        fr = data[pos : pos + incl]
        pos += incl
        # Ethernet type IPv4, IHL 5, protocol 112 (VRRP): bytes 14, 23; VRRP header from byte 34.
        if incl >= 37 and fr[12:14] == b"\x08\x00" and fr[23] == 112:
            ihl = (fr[14] & 0x0F) * 4
            v = 14 + ihl
            if incl >= v + 3:
                yield Advert(sec * 1_000_000_000 + frac * scale, segment, fr[29], fr[v + 1], fr[v + 2])


# --- analysis ---------------------------------------------------------------------------------------------
def largest_gaps(times: Mapping[K, Sequence[int]], t0_ns: int, t1_ns: int) -> dict[K, int]:
    """Per key, the longest time (ns) within [t0, t1] between consecutive stamps of its list (sorted).

    The last stamp before t0 and the first after t1 close the edges; with none, the window edge does (a key
    silent over the whole window has a gap of the whole window). Keys absent from `times` are not reported.
    """
    out: dict[K, int] = {}
    for key, ts in times.items():
        lo, hi = bisect.bisect_left(ts, t0_ns), bisect.bisect_right(ts, t1_ns)
        seq = [ts[lo - 1] if lo else t0_ns, *ts[lo:hi], ts[hi] if hi < len(ts) else t1_ns]
        out[key] = max(b - a for a, b in zip(seq, seq[1:], strict=False))
    return out


@dataclass
class DensityReport:
    instances: int
    adver_int_ms: int
    window_s: float
    mdi_ms: float
    master_adverts: int  # priority > 0, from the master, inside the window
    expected_adverts: float
    gaps_ms: dict[tuple[int, int], float]  # (segment, vrid) -> largest gap of the master's adverts
    other_adverts: dict[int, int]  # source host -> adverts with priority > 0 in the window (not the master)
    silent: int = 0  # instances the master never advertised in the window
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rate_share(self) -> float:
        return self.master_adverts / self.expected_adverts if self.expected_adverts else 0.0

    @property
    def largest_gap_ms(self) -> float:
        return max(self.gaps_ms.values(), default=math.inf)

    @property
    def worst_vrid(self) -> tuple[int, int] | None:
        return max(self.gaps_ms, key=self.gaps_ms.__getitem__) if self.gaps_ms else None

    @property
    def late_vrids(self) -> int:
        """Instances whose largest gap reached the backup's Master_Down_Interval."""
        return sum(1 for g in self.gaps_ms.values() if g >= self.mdi_ms)

    @property
    def backup_adverts(self) -> int:
        return sum(self.other_adverts.values())


def analyse(
    adverts: Iterable[Advert],
    t0: float,
    t1: float,
    adver_int_ms: int,
    master: int,
    instances: int,
    mdi_ms: float,
    per_segment: int = SEGMENT_SIZE,
) -> DensityReport:
    """A DensityReport over the window [t0, t1] (time.time() seconds) for `master` (router index)."""
    t0_ns, t1_ns = int(t0 * 1e9), int(t1 * 1e9)
    # Only the window's stamps are kept, with the last one before it and the first one after it per key.
    times: dict[tuple[int, int], list[int]] = defaultdict(list)
    before: dict[tuple[int, int], int] = {}
    after: dict[tuple[int, int], int] = {}
    others: dict[int, int] = defaultdict(int)
    latest = 0
    for a in adverts:
        t = a.t_ns
        latest = max(latest, t)
        if a.priority == 0:
            continue
        if a.src_host % 8 != master:
            if t0_ns <= t <= t1_ns:
                others[a.src_host % 8] += 1
            continue
        key = (a.segment, a.vrid)
        if t < t0_ns:
            if t > before.get(key, -1):
                before[key] = t
        elif t <= t1_ns:
            times[key].append(t)
        elif t < after.get(key, 1 << 63):
            after[key] = t
    if latest < t1_ns:
        raise ValueError("the capture ends before the window does (stopped too early?)")
    count = sum(len(ts) for ts in times.values())
    for key in {*before, *after, *times}:
        ts = times[key]
        ts.sort()
        if key in before:
            ts.insert(0, before[key])
        if key in after:
            ts.append(after[key])
    gaps = largest_gaps(times, t0_ns, t1_ns)
    keys = [divmod(i, per_segment) for i in range(instances)]
    gaps_ms = {(s, v + 1): gaps.get((s, v + 1), t1_ns - t0_ns) / 1e6 for s, v in keys}
    window = t1 - t0
    return DensityReport(
        instances=instances,
        adver_int_ms=adver_int_ms,
        window_s=window,
        mdi_ms=mdi_ms,
        master_adverts=count,
        expected_adverts=instances * window * 1000 / adver_int_ms,
        gaps_ms=gaps_ms,
        other_adverts=dict(others),
        silent=sum(1 for s, v in keys if (s, v + 1) not in times),
    )


# --- routers: start-up, logs, resources -----------------------------------------------------------------
class LogWatch:
    """Reads a router's log incrementally and remembers the first and last state of every instance."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.first: dict[bytes, bytes] = {}
        self.last: dict[bytes, bytes] = {}
        self.transitions = 0
        self._pos = 0
        self._tail = b""

    def poll(self) -> int:
        """Read what the log gained; return the number of transitions found so far."""
        if self.router.proc is None:
            return self.transitions
        with open(self.router.proc.log_path, "rb") as f:
            f.seek(max(self._pos, self.router._log_from))
            data = f.read()
        self._pos = max(self._pos, self.router._log_from) + len(data)
        data = self._tail + data
        cut = data.rfind(b"\n") + 1
        self._tail = data[cut:]
        for m in _STATE_RE.finditer(data, 0, cut):
            inst, state = m["inst"], m["state"]
            self.first.setdefault(inst, state)
            self.last[inst] = state
            self.transitions += 1
        return self.transitions

    def all_started(self) -> bool:
        return len(self.first) >= len(self.router.instances)

    def all_in(self, state: str) -> bool:
        st = state.encode()
        return len(self.last) >= len(self.router.instances) and all(v == st for v in self.last.values())


@dataclass
class Startup:
    exec_t: float  # time.time() just before the exec
    initial_s: float  # exec -> every instance logged its first state
    watch: LogWatch


def start_and_wait(router: Router, timeout: float = 120.0, interval: float = 0.01) -> Startup:
    """Start `router` and time exec -> every instance in its initial state (first state line logged)."""
    watch = LogWatch(router)
    t_exec, m_exec = time.time(), time.monotonic()
    router.start()

    def started() -> bool:
        if not router.alive():
            raise RuntimeError(f"{router.name} exited:\n{router.log()[-3000:]}")
        watch.poll()
        return watch.all_started()

    wait_for(started, timeout=timeout, interval=interval, what=f"{router.name}: every instance started")
    return Startup(t_exec, time.monotonic() - m_exec, watch)


def wait_all_state(watch: LogWatch, state: str, timeout: float = 120.0) -> None:
    r = watch.router

    def done() -> bool:
        if not r.alive():
            raise RuntimeError(f"{r.name} exited:\n{r.log()[-3000:]}")
        watch.poll()
        return watch.all_in(state)

    wait_for(done, timeout=timeout, interval=0.1, what=f"{r.name}: every instance in {state}")


def first_advert_after(
    adverts: Iterable[Advert], host: int, t: float, segment: int = 0, vrid: int = 1
) -> float | None:
    """Seconds from `t` to the first advert of (segment, vrid) from router `host`, None if there is none."""
    t_ns = int(t * 1e9)
    stamps = [
        a.t_ns
        for a in adverts
        if a.segment == segment and a.vrid == vrid and a.src_host % 8 == host and a.t_ns >= t_ns
    ]
    return (min(stamps) - t_ns) / 1e9 if stamps else None


@dataclass
class Usage:
    """CPU and memory of one router over a window."""

    cpu_s: float
    window_s: float
    rss_kib: int

    @property
    def cores(self) -> float:
        return self.cpu_s / self.window_s if self.window_s else 0.0


class UsageMeter:
    """cpu_seconds of each router's process tree between begin() and end(); RSS at end()."""

    def __init__(self, routers: Sequence[Router]) -> None:
        self.routers = list(routers)
        self._pids = [r.pids() for r in self.routers]
        self._t0 = 0.0
        self._c0: list[float] = []

    def begin(self) -> None:
        self._pids = [r.pids() for r in self.routers]
        self._c0 = [cpu_seconds(p) for p in self._pids]
        self._t0 = time.monotonic()

    def end(self) -> list[Usage]:
        c1 = [cpu_seconds(p) for p in self._pids]
        span = time.monotonic() - self._t0
        return [Usage(b - a, span, rss_kib(p)) for a, b, p in zip(self._c0, c1, self._pids, strict=True)]


# --- one side-by-side scenario ----------------------------------------------------------------------------
@dataclass
class Window:
    """One measurement window of a pair: what the wire showed and what the routers spent."""

    report: DensityReport
    master: Usage
    backup: Usage
    transitions: int  # state entries logged by both routers inside the window
    scrapes: int = 0  # /metrics scrapes completed in the window (the scrape window only)

    def us_per_advert(self, usage: Usage) -> float:
        sent = self.report.master_adverts
        return usage.cpu_s / sent * 1e6 if sent else math.inf


@dataclass
class PairResult:
    """A master (priority 200, VRID 1 of segment 0 an owner at 255) and a backup (100) of one kind."""

    kind: str
    count: int
    adver_int_ms: int
    startup_master_s: float  # exec -> every instance in its initial state
    startup_backup_s: float
    owner_first_advert_s: float | None  # exec -> the owner's first advert on the wire
    steady: Window
    scraped: Window | None = None
    observer_cpu_s: float = 0.0
    dropped: dict[str, int] = field(default_factory=dict)
    captured_s: float = 0.0


METRICS_ADDR = "127.0.0.1:9180"
_SCRAPER = """
import signal, sys, urllib.request
n = 0
stop = False
def _stop(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, _stop)
while not stop:
    urllib.request.urlopen(sys.argv[1], timeout=10).read()
    n += 1
print("scrapes", n, flush=True)
"""


def _window(
    net: DensityLan, obs: Capture, routers: Sequence[Router], watches: Sequence[LogWatch], seconds: float
) -> tuple[float, float, list[Usage], int]:
    meter = UsageMeter(routers)
    before = sum(w.poll() for w in watches)
    meter.begin()
    t0, m0 = time.time(), time.monotonic()
    wait_for(lambda: time.monotonic() - m0 >= seconds, timeout=seconds + 10, interval=0.05, what="the window")
    t1 = time.time()
    if not 0.9 * seconds <= t1 - t0 <= 1.1 * seconds + 1:
        raise RuntimeError(f"the wall clock stepped during the window ({t1 - t0:.3f} s for {seconds} s)")
    usage = meter.end()
    return t0, t1, usage, sum(w.poll() for w in watches) - before


def start_pair(master: Router, backup: Router, count: int, settle_s: float) -> tuple[Startup, Startup]:
    """Start `master` and wait for every instance in MASTER, then `backup` and wait for every one in BACKUP,
    then until `settle_s` seconds after the master converged."""
    boot = max(60.0, count / 20)
    up_m = start_and_wait(master, timeout=boot)
    wait_all_state(up_m.watch, "MASTER", timeout=boot)
    converged = time.monotonic()
    up_b = start_and_wait(backup, timeout=boot)
    wait_all_state(up_b.watch, "BACKUP", timeout=boot)
    wait_for(lambda: time.monotonic() - converged >= settle_s, timeout=settle_s + 5, what="settling")
    return up_m, up_b


def run_pair(
    lab: Lab,
    kind: str,
    count: int,
    adver_int_ms: int,
    window_s: float,
    *,
    keepalived_bin: str = "keepalived",
    settle_s: float = 6.0,
    scrape_window_s: float = 0.0,
) -> PairResult:
    """Start the master, then the backup, wait `settle_s` after the master converged (keepalived repeats its
    gratuitous ARPs 5 s after becoming master), then measure a steady window of `window_s` seconds; with
    scrape_window_s (fastvrrp), a second window in which a client in the master's namespace scrapes its
    --metrics endpoint back to back."""
    net = DensityLan(lab, instances=count, routers=2)
    mdi = master_down_ms(100, adver_int_ms)
    master = net.router(
        1, kind, net.instances(200, adver_int_ms, owner_host=1), keepalived_bin=keepalived_bin
    )
    backup = net.router(2, kind, net.instances(100, adver_int_ms), keepalived_bin=keepalived_bin)
    if scrape_window_s and kind == "fastvrrp":
        master.extra_args += ["--metrics", METRICS_ADDR]
    with net.observer() as obs:
        up_m, up_b = start_pair(master, backup, count, settle_s)
        watches = (up_m.watch, up_b.watch)
        t0, t1, use, trans = _window(net, obs, (master, backup), watches, window_s)
        scraped = None
        if scrape_window_s and kind == "fastvrrp":
            url = f"http://{METRICS_ADDR}/metrics"
            scraper = lab.spawn(master.ns, [master.python, "-c", _SCRAPER, url], "scraper")
            s0, s1, s_use, s_trans = _window(net, obs, (master, backup), watches, scrape_window_s)
            scraper.stop(signal.SIGTERM, timeout=15)
            m = re.search(r"scrapes (\d+)", scraper.log())
            scraped = (s0, s1, s_use, s_trans, int(m.group(1)) if m else 0)
        last = time.time()
        observer_cpu = obs.cpu_seconds()
        obs.stop(covered=last)
    adverts = obs.adverts
    steady = Window(analyse(adverts(), t0, t1, adver_int_ms, 1, count, mdi), use[0], use[1], trans)
    second = None
    if scraped is not None:
        s0, s1, s_use, s_trans, n = scraped
        rep = analyse(adverts(), s0, s1, adver_int_ms, 1, count, mdi)
        second = Window(rep, s_use[0], s_use[1], s_trans, n)
    return PairResult(
        kind=kind,
        count=count,
        adver_int_ms=adver_int_ms,
        startup_master_s=up_m.initial_s,
        startup_backup_s=up_b.initial_s,
        owner_first_advert_s=first_advert_after(adverts((0,)), 1, up_m.exec_t),
        steady=steady,
        scraped=second,
        observer_cpu_s=observer_cpu,
        dropped=dict(obs.dropped),
        captured_s=last - up_m.exec_t,
    )
