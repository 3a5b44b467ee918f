"""A VRRP test bed in namespaces: a LAN, routers running keepalived or fastvrrp, and failover measurement.

Used by the interop tests, the side-by-side benchmarks and the demo. Everything is built on
`fastvrrp.lab.namespaces.Lab`, which tracks every namespace and PID and removes them on close. The
capture on the bridge is `fastvrrp.lab.wiretap.WireTap` (re-exported here); its
queries take time.time() seconds, like Event.t.

    lab = Lab()
    lan = Lan(lab, routers=2, client=True)            # switch ns with br0, r1/r2 (.1/.2), client (.50)
    spec = InstanceSpec(vrid=51, version=3, advert_int_ms=100, vips=("192.0.2.100/24",))
    r1 = lan.router(1, "keepalived", [replace(spec, priority=200)])
    r2 = lan.router(2, "fastvrrp", [spec])
    with lan.tap() as tap:
        r1.start(); r1.wait_state("MASTER")
        r2.start(); r2.wait_state("BACKUP")
        fo = measure_failover(tap, old=r1, new=r2, mode="crash")

Addresses: 192.0.2.0/24 and 2001:db8::/64 on the LAN, VIPs from the same ranges or 198.51.100.0/24 and
203.0.113.0/24 - nothing else, and only inside the lab's namespaces.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from fastvrrp.lab.namespaces import Lab, Proc, wait_for
from fastvrrp.lab.wiretap import Event, WireTap, canonical

LAN4 = "192.0.2.{}/24"
LAN6 = "2001:db8::{}/64"
CLIENT_HOST = 50
KINDS = ("keepalived", "fastvrrp")
_STATE_RE = re.compile(r"\((?P<inst>[^)\s]+)\) Entering (?P<state>[A-Z]+) STATE")


# --- RFC timing ------------------------------------------------------------------------------------------
def skew_ms(priority: int, adver_int_ms: float, version: int = 3) -> float:
    """Skew_Time: v3 (RFC 5798 6.1) scales with the interval; v2 (RFC 3768 6.1) is (256-prio)/256 s."""
    if version == 2:
        return (256 - priority) * 1000.0 / 256
    return (256 - priority) * adver_int_ms / 256


def master_down_ms(priority: int, adver_int_ms: float, version: int = 3) -> float:
    """Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time (RFC 5798 6.1, RFC 3768 6.1)."""
    return 3 * adver_int_ms + skew_ms(priority, adver_int_ms, version)


# --- configuration ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InstanceSpec:
    """One vrrp_instance, rendered as keepalived.conf (fastvrrp reads the same file)."""

    vrid: int = 51
    priority: int = 100
    version: int = 3
    advert_int_ms: int = 1000
    vips: tuple[str, ...] = ("192.0.2.100/24",)
    name: str = ""
    interface: str = "eth0"
    state: str = "BACKUP"
    nopreempt: bool = False
    unicast_src: str | None = None
    unicast_peers: tuple[str, ...] = ()
    auth_pass: str | None = None
    extra: tuple[str, ...] = ()  # more lines inside the vrrp_instance block (track_script, notify ...)

    @property
    def iname(self) -> str:
        return self.name or f"VI_{self.vrid}"

    @property
    def family(self) -> int:
        return 6 if ":" in self.vips[0] else 4

    @property
    def vip_addrs(self) -> tuple[str, ...]:
        return tuple(v.split("/")[0] for v in self.vips)

    def skew_ms(self) -> float:
        return skew_ms(self.priority, self.advert_int_ms, self.version)

    def master_down_ms(self) -> float:
        return master_down_ms(self.priority, self.advert_int_ms, self.version)

    def render(self) -> str:
        if self.version == 2 and self.advert_int_ms % 1000:
            raise ValueError("VRRPv2 advertises whole seconds (RFC 3768 5.3.7)")
        if self.version == 3 and self.advert_int_ms % 10:
            raise ValueError("VRRPv3 advertises centiseconds (RFC 5798 5.2.7)")
        lines = [
            f"vrrp_instance {self.iname} {{",
            f"    state {self.state}",
            f"    interface {self.interface}",
            f"    virtual_router_id {self.vrid}",
            f"    version {self.version}",
            f"    priority {self.priority}",
            f"    advert_int {_seconds(self.advert_int_ms)}",
        ]
        if self.nopreempt:
            lines.append("    nopreempt")
        if self.auth_pass is not None:
            lines += [
                "    authentication {",
                "        auth_type PASS",
                f"        auth_pass {self.auth_pass}",
                "    }",
            ]
        if self.unicast_src:
            lines.append(f"    unicast_src_ip {self.unicast_src}")
        if self.unicast_peers:
            lines += ["    unicast_peer {", *(f"        {p}" for p in self.unicast_peers), "    }"]
        lines += [f"    {x}" for x in self.extra]
        lines += ["    virtual_ipaddress {", *(f"        {v}" for v in self.vips), "    }", "}"]
        return "\n".join(lines) + "\n"


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}".rstrip("0").rstrip(".")


def render_config(
    instances: Sequence[InstanceSpec], router_id: str, global_lines: Sequence[str] = (), before: str = ""
) -> str:
    """global_defs, then `before` (top-level blocks the instances refer to), then the instances."""
    head = ["global_defs {", f"    router_id {router_id}", *(f"    {g}" for g in global_lines), "}", ""]
    return "\n".join(head) + before + "\n".join(i.render() for i in instances)


def many_instances(count: int, priority: int, adver_int_ms: int, version: int = 3) -> list[InstanceSpec]:
    """`count` (<= 255) v4 instances on one interface, VRIDs 1..count, one /32 VIP each."""
    out = []
    for vrid in range(1, count + 1):
        vip = f"198.51.100.{vrid}/32" if vrid < 255 else "203.0.113.255/32"
        out.append(
            InstanceSpec(
                vrid=vrid, priority=priority, version=version, advert_int_ms=adver_int_ms, vips=(vip,)
            )
        )
    return out


# --- processes -------------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def process_tree(pid: int) -> list[int]:
    """pid and its descendants: `ip netns exec` execs, so pid is the daemon; keepalived forks a VRRP child."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime of the given processes, from /proc/PID/stat (fields 14 and 15)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # fields[0] is field 3 (state)
    return total / _TICK


def cpu_times(pids: Iterable[int]) -> tuple[float, float]:
    """(own, reaped) CPU seconds of the given processes: utime + stime (fields 14, 15), and cutime + cstime
    (fields 16, 17), the CPU of children they have already waited for. Short-lived children such as
    tracking scripts only show up in the second figure, once their parent has reaped them."""
    own = reaped = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        own += int(fields[11]) + int(fields[12])
        reaped += int(fields[13]) + int(fields[14])
    return own / _TICK, reaped / _TICK


def rss_kib(pids: Iterable[int]) -> int:
    """Sum of VmRSS (KiB) of the given processes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


class Router:
    """One VRRP daemon (keepalived or fastvrrp) in its own namespace, configured from InstanceSpecs."""

    def __init__(
        self,
        lab: Lab,
        ns: str,
        kind: str,
        name: str,
        instances: Sequence[InstanceSpec],
        *,
        addr4: str,
        addr6: str,
        ifname: str = "eth0",
        keepalived_bin: str = "keepalived",
        python: str = sys.executable,
        global_lines: Sequence[str] = (),
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self.lab, self.ns, self.kind, self.name = lab, ns, kind, name
        self.instances = list(instances)
        self.addr4, self.addr6, self.ifname = addr4, addr6, ifname
        self.keepalived_bin, self.python = keepalived_bin, python
        self.global_lines = list(global_lines)
        self.blocks = ""  # top-level blocks appended to the config (vrrp_script, vrrp_sync_group ...)
        self.extra_args: list[str] = []  # more fastvrrp command-line options (--metrics ...)
        self.keepalived_args: list[str] = []  # more keepalived command-line options (-V ...)
        self.env: dict[str, str] = {}  # more environment for the daemon (NOTIFY_SOCKET ...)
        # How its Python starts fastvrrp: fastvrrp.lab.faulty runs it with a fault put in on purpose.
        self.main: list[str] = ["-m", "fastvrrp"]
        # Top-level blocks placed before the instances: keepalived resolves a track_script name while it
        # reads the instance, so a vrrp_script it tracks must come first ("track script X not found").
        self.blocks_before = ""
        self.proc: Proc | None = None
        self._log_from = 0
        base = os.path.join(lab.workdir, name)
        self.conf_path = base + ".conf"
        self.pidfiles = (base + ".pid", base + ".vrrp.pid", base + ".check.pid")
        self.ll6 = self._link_local()

    def __repr__(self) -> str:
        return f"Router({self.name}, {self.kind}, {self.ns})"

    # --- addresses on the wire
    def _link_local(self) -> str:
        info = json.loads(self.lab.sh(self.ns, f"ip -j -6 addr show dev {self.ifname} scope link") or "[]")
        for link in info:
            for a in link.get("addr_info", []):
                if a.get("scope") == "link" and "local" in a:
                    return a["local"]
        return ""

    def source(self, family: int) -> str:
        """Source of this router's adverts: primary v4 address, or v6 link-local (RFC 5798 5.1.2.1)."""
        return self.addr4 if family == 4 else self.ll6

    # --- lifecycle
    def write_config(self) -> str:
        text = render_config(self.instances, self.name, self.global_lines, self.blocks_before) + self.blocks
        with open(self.conf_path, "w") as f:
            f.write(text)
        return self.conf_path

    def argv(self) -> list[str]:
        pid, vpid, cpid = self.pidfiles
        if self.kind == "keepalived":
            # -G: no syslog; -R: no respawn, so a crashed VRRP child stays dead (crash() kills the tree).
            return [
                self.keepalived_bin,
                "-n",
                "-l",
                "-D",
                "-G",
                "-R",
                "-f",
                self.conf_path,
                "-p",
                pid,
                "-r",
                vpid,
                "-c",
                cpid,
                "--vrrp",
                *self.keepalived_args,
            ]
        status_file = os.path.join(self.lab.workdir, f"{self.name}.status.json")
        # -G as for keepalived above: the log is the console's; the host's syslog gets nothing from tests.
        return [
            self.python, *self.main, "-n", "-l", "-D", "-G", "-f", self.conf_path, "-p", pid,
            "--status-file", status_file, "--control", self.control_path, *self.extra_args,
        ]  # fmt: skip

    @property
    def control_path(self) -> str:
        """This router's control socket (every router of a lab shares the file system)."""
        return os.path.join(self.lab.workdir, f"{self.name}.control.sock")

    def ctl(self, *argv: str, check: bool = True) -> tuple[int, str, str]:
        """`fastvrrp ctl --control <this router's socket> ARGV...`: (exit status, stdout, stderr)."""
        import subprocess

        p = subprocess.run(
            [self.python, "-m", "fastvrrp", "ctl", "--control", self.control_path, *argv],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.dirname(__file__)))},
        )
        if check and p.returncode != 0:
            raise RuntimeError(f"fastvrrp ctl {' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
        return p.returncode, p.stdout, p.stderr

    def start(self) -> Proc:
        if self.proc is not None and self.proc.alive():
            raise RuntimeError(f"{self.name} is already running")
        for p in self.pidfiles:  # a stale pidfile makes keepalived refuse to start
            if os.path.exists(p):
                os.unlink(p)
        self.write_config()
        log_path = os.path.join(self.lab.workdir, f"{self.name}.log")
        self._log_from = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        env = dict(self.env)
        if self.kind == "fastvrrp":
            # Import the same fastvrrp the caller uses, whatever the working directory.
            pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            env["PYTHONPATH"] = pkg_parent + os.pathsep + os.environ.get("PYTHONPATH", "")
        self.proc = self.lab.spawn(self.ns, self.argv(), self.name, env=env)
        return self.proc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid) if self.alive() and self.proc else []

    def stop(self, timeout: float = 10.0) -> int | None:
        """Graceful stop (SIGTERM): a priority-0 advert, VIPs removed, exit. Returns the exit code."""
        if self.proc is None:
            return None
        return self.proc.stop(signal.SIGTERM, timeout=timeout)

    def crash(self) -> None:
        """SIGKILL the whole process tree, children first: no priority-0 advert, VIPs stay behind."""
        if not self.alive() or self.proc is None:
            return
        tree = self.pids()
        for pid in reversed(tree):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.popen.wait(10)

    def link(self, up: bool) -> None:
        self.lab.sh(self.ns, f"ip link set {self.ifname} {'up' if up else 'down'}")

    def link_down(self) -> None:
        self.link(False)

    def link_up(self) -> None:
        self.link(True)

    # --- observation
    def log(self) -> str:
        """This run's log (since the last start)."""
        if self.proc is None:
            return ""
        try:
            with open(self.proc.log_path, errors="replace") as f:
                f.seek(self._log_from)
                return f.read()
        except OSError:
            return ""

    def transitions(self, instance: str | None = None) -> list[str]:
        inst = instance or self.instances[0].iname
        return [m["state"] for m in _STATE_RE.finditer(self.log()) if m["inst"] == inst]

    def transitions_count(self) -> int:
        """How many state entries (any instance) this run has logged."""
        return sum(1 for _ in _STATE_RE.finditer(self.log()))

    def states(self) -> dict[str, str]:
        """Last logged state of every instance that logged one."""
        out: dict[str, str] = {}
        for m in _STATE_RE.finditer(self.log()):
            out[m["inst"]] = m["state"]
        return out

    def state(self, instance: str | None = None) -> str | None:
        t = self.transitions(instance)
        return t[-1] if t else None

    def wait_state(self, state: str, instance: str | None = None, timeout: float = 10.0) -> str:
        def check() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.name} ({self.kind}) exited:\n{self.log()[-3000:]}")
            return self.state(instance) == state

        wait_for(check, timeout=timeout, what=f"{self.name} ({self.kind}) {instance or ''} to enter {state}")
        return state

    def wait_all(self, state: str, timeout: float = 30.0) -> None:
        """Every configured instance's last logged state is `state`."""
        names = {i.iname for i in self.instances}

        def check() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.name} ({self.kind}) exited:\n{self.log()[-3000:]}")
            st = self.states()
            return all(st.get(n) == state for n in names)

        wait_for(
            check, timeout=timeout, interval=0.1, what=f"all {len(names)} instances of {self.name} in {state}"
        )

    def addresses(self) -> set[str]:
        """Every address on the router's interface (ip -j addr, i.e. netlink)."""
        info = json.loads(self.lab.sh(self.ns, f"ip -j addr show dev {self.ifname}") or "[]")
        return {a["local"] for link in info for a in link.get("addr_info", []) if "local" in a}

    def has_vip(self, vip: str) -> bool:
        return canonical(vip) in {canonical(a) for a in self.addresses()}

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pids())


# --- topology --------------------------------------------------------------------------------------------
class Lan:
    """A switch namespace with a bridge, N router namespaces (.1, .2 ...) and an optional client (.50)."""

    def __init__(self, lab: Lab, routers: int = 2, client: bool = True, bridge: str = "br0") -> None:
        self.lab, self.bridge = lab, bridge
        self.switch = lab.ns("sw")
        lab.bridge(self.switch, bridge)  # mcast_snooping off (docs/kernel-notes.md#bridge-multicast-snooping)
        self.router_ns: list[str] = []
        self.routers: list[Router] = []
        for i in range(1, routers + 1):
            ns = lab.ns(f"r{i}")
            self._attach(ns, f"p{i}", i)
            self.router_ns.append(ns)
        self.client: str | None = None
        if client:
            self.client = lab.ns("cl")
            self._attach(self.client, "pc", CLIENT_HOST)

    def _attach(self, ns: str, port: str, host: int) -> None:
        self.lab.veth(ns, "eth0", self.switch, port, self.bridge)
        self.lab.addr(ns, "eth0", LAN4.format(host))
        self.lab.addr(ns, "eth0", LAN6.format(host))

    def router(
        self,
        index: int,
        kind: str,
        instances: Sequence[InstanceSpec],
        keepalived_bin: str = "keepalived",
        **kw,
    ) -> Router:
        """A Router of `kind` in namespace r<index> (addresses .<index>); not started."""
        r = Router(
            self.lab,
            self.router_ns[index - 1],
            kind,
            f"r{index}-{kind}-{len(self.routers)}",
            instances,
            addr4=LAN4.format(index).split("/")[0],
            addr6=LAN6.format(index).split("/")[0],
            keepalived_bin=keepalived_bin,
            **kw,
        )
        self.routers.append(r)
        return r

    def who_has(self, vip: str) -> list[str]:
        """The router namespaces that currently hold `vip` on an interface."""
        out = []
        for ns in self.router_ns:
            info = json.loads(self.lab.sh(ns, "ip -j addr show") or "[]")
            held = {canonical(a["local"]) for link in info for a in link.get("addr_info", []) if "local" in a}
            if canonical(vip) in held:
                out.append(ns)
        return out

    def tap(self) -> WireTap:
        """A capture on the bridge (not started): every frame between the routers and the client."""
        return WireTap(self.switch, self.bridge)

    def ping(self, vip: str, interval_s: float = 0.005) -> Proc:
        """A continuous ping from the client to `vip` (the tap sees it as kind PING)."""
        if self.client is None:
            raise RuntimeError("this LAN has no client")
        fam = "-6" if ":" in vip else "-4"
        return self.lab.spawn(
            self.client,
            ["ping", fam, "-n", "-q", "-i", str(interval_s), vip.split("/")[0]],
            f"ping-{len(self.lab.procs)}",
        )


# --- analysis --------------------------------------------------------------------------------------------
def advert_segments(adverts: Sequence[Event], gap_s: float) -> dict[str, list[tuple[float, float]]]:
    """Per source: the spans [first, last] of runs of adverts (priority > 0) no further apart than gap_s."""
    spans: dict[str, list[list[float]]] = {}
    for e in adverts:
        if e.priority == 0:
            continue
        runs = spans.setdefault(e.src, [])
        if runs and e.t - runs[-1][1] <= gap_s:
            runs[-1][1] = e.t
        else:
            runs.append([e.t, e.t])
    return {k: [(a, b) for a, b in v] for k, v in spans.items()}


def dual_master_windows(adverts: Sequence[Event], adver_int_ms: float) -> list[tuple[float, float, str, str]]:
    """Time windows in which two sources both advertised for one VRID: (start, end, src_a, src_b).

    A source counts as master from its first advert to its last one of a run (gaps up to 1.5 intervals).
    The protocol allows a short overlap on preemption (RFC 5798 6.4.3: the old master steps down when
    the higher-priority advert arrives), about one interval; a crash or a priority-0 handover allows none.
    """
    seg = advert_segments(adverts, 1.5 * adver_int_ms / 1000)
    out = []
    srcs = sorted(seg)
    for i, a in enumerate(srcs):
        for b in srcs[i + 1 :]:
            for a0, a1 in seg[a]:
                for b0, b1 in seg[b]:
                    lo, hi = max(a0, b0), min(a1, b1)
                    if hi > lo:
                        out.append((lo, hi, a, b))
    return sorted(out)


@dataclass(frozen=True)
class Failover:
    """One measured failover. Times in ms; expected_ms is the RFC value for the mode."""

    mode: str  # crash | graceful
    kind_old: str
    kind_new: str
    version: int
    adver_int_ms: int
    priority_new: int
    last_old_t: float
    first_new_t: float
    failover_ms: float  # new master's first advert - old master's last advert
    expected_ms: float  # crash: Master_Down_Interval; graceful: Skew_Time (RFC 5798 6.1, 6.4.2)
    garp_ms: float | None  # first gratuitous ARP / NA for the VIP - the first advert (negative: before)
    ping_gap_ms: float | None  # the client's longest reply gap across the failover
    last_old_priority: int = 0

    @property
    def deviation_ms(self) -> float:
        return self.failover_ms - self.expected_ms


def measure_failover(
    tap: WireTap,
    old: Router,
    new: Router,
    mode: str = "crash",
    instance: InstanceSpec | None = None,
    ping: bool = False,
    isolate: bool = False,
    timeout: float | None = None,
) -> Failover:
    """Stop master `old` (crash = SIGKILL, graceful = SIGTERM); time the takeover by `new` on the wire.

    `tap` must be running (and `ping` a Lan.ping to the first VIP, if ping=True). The failover is the new
    master's first advert after the old master's last one (its priority-0 advert when graceful).
    """
    if mode not in ("crash", "graceful"):
        raise ValueError(mode)
    inst = instance or new.instances[0]
    old_inst = next(i for i in old.instances if i.vrid == inst.vrid)
    fam, vrid, vip = inst.family, inst.vrid, inst.vip_addrs[0]
    old_src, new_src = old.source(fam), new.source(fam)
    timeout = (
        timeout
        if timeout is not None
        else master_down_ms(inst.priority, old_inst.advert_int_ms, inst.version) / 1000 + 5
    )
    t_action = time.time()
    if mode == "crash":
        old.crash()
        if isolate:
            # A killed daemon in a namespace leaves its VIP configured, and that kernel keeps answering
            # pings; taking the link down makes the crash look like a dead box (call old.link_up() later).
            old.link_down()
    else:
        old.stop()
    first = wait_for(
        lambda: tap.first_advert_from(new_src, vrid, after=t_action),
        timeout=timeout,
        interval=0.005,
        what=f"first advert from {new.name} after {mode} of {old.name}",
    )
    last = tap.last_advert_from(old_src, vrid, before=first.t)
    if last is None:
        raise RuntimeError(f"no advert from {old.name} ({old_src}) was captured before the failover")
    # The interval the backup learned is the old master's (RFC 5798 6.4.2 Master_Adver_Interval).
    a_ms = old_inst.advert_int_ms
    expected = (
        master_down_ms(inst.priority, a_ms, inst.version)
        if mode == "crash"
        else skew_ms(inst.priority, a_ms, inst.version)
    )
    garp = None
    try:
        g = wait_for(
            lambda: tap.first_garp(vip, after=last.t), timeout=1.0, interval=0.005, what="gratuitous ARP/NA"
        )
        garp = (g.t - first.t) * 1000
    except TimeoutError:
        pass
    gap = None
    if ping:
        # The window ends well after the takeover, once the client hears the VIP again.
        end = first.t + 0.05
        try:
            wait_for(lambda: tap.ping_gap(vip, t_action, end), timeout=3.0, interval=0.01, what="ping reply")
            gap = (tap.ping_gap(vip, t_action, end) or 0.0) * 1000
        except TimeoutError:
            pass
    return Failover(
        mode=mode,
        kind_old=old.kind,
        kind_new=new.kind,
        version=inst.version,
        adver_int_ms=a_ms,
        priority_new=inst.priority,
        last_old_t=last.t,
        first_new_t=first.t,
        failover_ms=(first.t - last.t) * 1000,
        expected_ms=expected,
        garp_ms=garp,
        ping_gap_ms=gap,
        last_old_priority=last.priority,
    )


@dataclass
class Summary:
    """Median and worst of a list of failovers (what the benchmarks report)."""

    values_ms: list[float] = field(default_factory=list)
    expected_ms: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.values_ms)

    @property
    def worst(self) -> float:
        # Worst = furthest from the RFC value, either way.
        return max(self.values_ms, key=lambda v: abs(v - self.expected_ms))

    @property
    def median_dev(self) -> float:
        return self.median - self.expected_ms

    @property
    def worst_dev(self) -> float:
        return self.worst - self.expected_ms


def wait_heard(
    tap: WireTap, src: str, vrid: int, after: float, count: int = 2, timeout: float = 10.0
) -> None:
    """Wait until `count` adverts from `src` for `vrid` were captured after `after` (a restarted backup has
    then received at least one, so its Master_Down_Timer runs from a real advert)."""
    wait_for(
        lambda: len(tap.adverts(vrid, src, after)) >= count,
        timeout=timeout,
        interval=0.005,
        what=f"{count} adverts from {src} vrid {vrid}",
    )
