"""keepalived's trackers on the event loop: vrrp_script, track_file, vrrp_track_process, track_interface.

Each reports through `on_change(tracker_name, TrackerStatus)` when its status changes (and once when it
first knows it); `.status` holds the latest. None of them knows anything about VRRP.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastvrrp.io.inotify import (
    IN_DELETE,
    IN_DELETE_SELF,
    IN_IGNORED,
    IN_ISDIR,
    IN_MOVE_SELF,
    IN_MOVED_FROM,
    IN_Q_OVERFLOW,
    Inotify,
    shared_inotify,
)
from fastvrrp.io.proc_connector import (
    PROC_EVENT_COMM,
    PROC_EVENT_EXEC,
    PROC_EVENT_EXIT,
    PROC_EVENT_FORK,
    ProcConnector,
)

from .runner import ScriptResult, ScriptRunner
from .status import RiseFall, TrackerStatus, parse_track_file_value

log = logging.getLogger("fastvrrp.health")

OnChange = Callable[[str, TrackerStatus], None]


def _call(on_change: OnChange, name: str, status: TrackerStatus) -> None:
    try:
        on_change(name, status)
    except Exception:  # a consumer's bug must not stop the tracker
        log.exception("on_change for tracker %s failed", name)


# --- vrrp_script -------------------------------------------------------------------------------------------


class ScriptTracker:
    """Runs a command every `interval_ms`; exit 0 is a success, anything else (exit code, signal, timeout,
    cannot start) a failure; rise/fall/init_fail as keepalived (status.RiseFall). A run never overlaps the
    previous one: the next starts at the later of (last start + interval) and (last end)."""

    def __init__(
        self,
        name: str,
        command: str | Sequence[str],
        runner: ScriptRunner,
        on_change: OnChange,
        *,
        interval_ms: int = 1000,
        timeout_ms: int | None = None,
        rise: int = 1,
        fall: int = 1,
        init_fail: bool = False,
        user: str | None = None,
        group: str | None = None,
    ) -> None:
        self.name = name
        self.command = command
        self.runner = runner
        self.on_change = on_change
        self.interval_ms = max(1, interval_ms)
        self.timeout_ms = timeout_ms if timeout_ms else self.interval_ms  # keepalived: default = interval
        self.user, self.group = user, group
        self.counter = RiseFall(rise, fall, init_fail)
        self.status = TrackerStatus(self.counter.up, reason="init_fail" if init_fail else "no result yet")
        self.last: ScriptResult | None = None
        self.runs = 0
        self.failures: dict[str, int] = {}  # by kind: exit, timeout, signal, start
        self.running = False  # a run is in progress (keepalived's script state "running")
        self._task: asyncio.Task | None = None

    @classmethod
    def from_config(cls, s, runner: ScriptRunner, on_change: OnChange) -> ScriptTracker:  # type: ignore[no-untyped-def]
        """From a fastvrrp.config.model.VrrpScript."""
        return cls(
            s.name,
            s.script,
            runner,
            on_change,
            interval_ms=s.interval_ms,
            timeout_ms=s.timeout_ms,
            rise=s.rise,
            fall=s.fall,
            init_fail=s.init_fail,
            user=s.user,
            group=s.group,
        )

    def start(self) -> None:
        if self.status.up is False:  # init_fail: say so at once
            _call(self.on_change, self.name, self.status)
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"vrrp_script {self.name}")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            self.running = True
            try:
                res = await self.runner.run(self.command, self.timeout_ms, self.user, self.group)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # never let one bad run end the tracker
                log.exception("vrrp_script %s: run failed", self.name)
                res = ScriptResult(None, error=f"internal error: {e}")
            finally:
                self.running = False
            self.feed(res)
            delay = t0 + self.interval_ms / 1000 - loop.time()
            await asyncio.sleep(max(0.0, delay))

    def feed(self, res: ScriptResult) -> None:
        self.runs += 1
        self.last = res
        if not res.ok:
            kind = (
                "start" if res.error else "timeout" if res.timed_out else "signal" if res.signal else "exit"
            )
            self.failures[kind] = self.failures.get(kind, 0) + 1
        changed = self.counter.feed(res.ok)
        if changed:
            self.status = TrackerStatus(self.counter.up, reason=res.reason)
            log.info("vrrp_script %s: %s (%s)", self.name, "up" if self.status.up else "down", res.reason)
            _call(self.on_change, self.name, self.status)


# --- track_file (inotify: fastvrrp.io.inotify) --------------------------------------------------------------


class FileTracker:
    """track_file: the integer in a file (status.parse_track_file_value), re-read when inotify on the file's
    directory says it was written (closed after writing), created, moved in, moved away or deleted. A missing
    file reads as 0. `init_file` writes `init_value` at start if the file does not exist, or always with
    `init_overwrite`."""

    def __init__(
        self,
        name: str,
        path: str,
        on_change: OnChange,
        *,
        init_file: bool = False,
        init_value: int = 0,
        init_overwrite: bool = False,
        inotify: Inotify | None = None,
    ) -> None:
        self.name = name
        self.path = os.path.abspath(path)
        self.on_change = on_change
        self.init_file, self.init_value, self.init_overwrite = init_file, init_value, init_overwrite
        self._inotify = inotify
        self.directory, self.basename = os.path.split(self.path)
        self.status = TrackerStatus(None, None, "not started")
        self.reads = 0

    @classmethod
    def from_config(cls, f, on_change: OnChange, inotify: Inotify | None = None) -> FileTracker:  # type: ignore[no-untyped-def]
        return cls(
            f.name,
            f.file,
            on_change,
            init_file=f.init_file,
            init_value=f.init_value,
            init_overwrite=f.init_overwrite,
            inotify=inotify,
        )

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._inotify is None:
            self._inotify = shared_inotify(loop)
        # Resolve symlinked directories once, as keepalived does, so events name the real directory.
        if os.path.isdir(self.directory):
            self.directory = os.path.realpath(self.directory)
            self.path = os.path.join(self.directory, self.basename)
        if self.init_file and (self.init_overwrite or not os.path.exists(self.path)):
            try:
                with open(self.path, "w") as f:
                    f.write(f"{self.init_value}\n")
            except OSError as e:
                log.error("track_file %s: cannot initialise %s: %s", self.name, self.path, e.strerror)
        try:
            self._inotify.watch(self.directory, self._event)
        except OSError as e:
            log.error(
                "track_file %s: cannot watch directory %s (%s): the value stays 0",
                self.name,
                self.directory,
                e.strerror,
            )
            self._set(0, f"directory not watchable: {e.strerror}")
            return
        self._read("initial read")

    def stop(self) -> None:
        if self._inotify is not None:
            self._inotify.unwatch(self.directory, self._event)

    def _event(self, name: str, mask: int) -> None:
        if mask & IN_Q_OVERFLOW:
            self._read("re-read after inotify overflow")
            return
        if mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED) and not name:
            log.error("track_file %s: directory %s went away; the value is now 0", self.name, self.directory)
            self._set(0, "directory removed")
            return
        if name != self.basename or mask & IN_ISDIR:
            return
        if mask & (IN_DELETE | IN_MOVED_FROM):
            self._set(0, "file removed")
        else:
            self._read("file written")

    def _read(self, why: str) -> None:
        self.reads += 1
        try:
            with open(self.path, "rb") as f:
                data = f.read(128)
        except FileNotFoundError:
            self._set(0, "file missing")
            return
        except OSError as e:
            self._set(0, f"unreadable: {e.strerror}")
            return
        self._set(parse_track_file_value(data), why)

    def _set(self, value: int, reason: str) -> None:
        if value == self.status.value:
            return
        self.status = TrackerStatus(value == 0, value, reason)
        log.info("track_file %s: value %d (%s)", self.name, value, reason)
        _call(self.on_change, self.name, self.status)


# --- vrrp_track_process (fastvrrp.io.proc_connector) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcSpec:
    name: str
    process: tuple[str, ...]
    param_match: str | None = None  # None: exact params; 'partial'; 'initial'
    full_command: bool = False
    quorum: int = 1
    quorum_max: int | None = None
    fork_delay_ms: int = 0
    terminate_delay_ms: int = 0

    @property
    def needs_cmdline(self) -> bool:
        return self.full_command or len(self.process) > 1 or self.param_match is not None

    def matches(self, comm: str, cmdline: Sequence[str] | None) -> bool:
        if not self.needs_cmdline:
            return comm == self.process[0][:15]  # the kernel keeps 15 characters of the name
        if not cmdline or cmdline[0] != self.process[0]:
            return False
        want, got = self.process[1:], list(cmdline[1:])
        if self.param_match == "partial":
            return got[: len(want)] == list(want)
        if self.param_match == "initial":
            if len(got) != len(want) or not want:
                return len(got) == len(want)
            return got[:-1] == list(want[:-1]) and got[-1].startswith(want[-1])
        return got == list(want)


def _read_proc(pid: int, want_cmdline: bool) -> tuple[str, list[str] | None] | None:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            comm = f.read().rstrip(b"\n").decode(errors="replace")
        cmd = None
        if want_cmdline:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                raw = f.read()
            cmd = [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]] if raw else []
        with open(f"/proc/{pid}/stat", "rb") as f:
            st = f.read()
        if st[st.rfind(b")") + 2 : st.rfind(b")") + 3] == b"Z":
            return None  # zombies are not running (keepalived ignores them too)
        return comm, cmd
    except OSError:
        return None


class ProcessTracker:
    """vrrp_track_process: up while quorum <= (matching processes) <= quorum_max. A change caused by a fork
    waits fork_delay, one caused by an exit waits terminate_delay (and is dropped if the count recovers
    meanwhile); changes seen by exec/comm events or scans apply at once. Fed by a ProcessMonitor."""

    def __init__(self, spec: ProcSpec, on_change: OnChange) -> None:
        self.spec = spec
        self.name = spec.name
        self.on_change = on_change
        self.pids: set[int] = set()
        self.status = TrackerStatus(None, reason="not started")
        self._pending: asyncio.TimerHandle | None = None

    @classmethod
    def from_config(cls, p, on_change: OnChange) -> ProcessTracker:  # type: ignore[no-untyped-def]
        return cls(
            ProcSpec(
                p.name,
                tuple(p.process),
                p.param_match,
                p.full_command,
                p.quorum,
                p.quorum_max,
                p.fork_delay_ms,
                p.terminate_delay_ms,
            ),
            on_change,
        )

    def quorum_ok(self) -> bool:
        n = len(self.pids)
        qmax = self.spec.quorum_max
        return n >= self.spec.quorum and (qmax is None or n <= qmax)

    def _evaluate(self, cause: str) -> None:
        want = self.quorum_ok()
        if self.status.up == want:
            if self._pending is not None:  # it came back before the delay ran out
                self._pending.cancel()
                self._pending = None
            return
        if self._pending is not None:
            return
        delay = {"fork": self.spec.fork_delay_ms, "exit": self.spec.terminate_delay_ms}.get(cause, 0)
        if delay > 0 and self.status.up is not None:
            loop = asyncio.get_running_loop()
            self._pending = loop.call_later(delay / 1000, self._apply, cause)
        else:
            self._apply(cause)

    def _apply(self, cause: str) -> None:
        self._pending = None
        up = self.quorum_ok()
        if up == self.status.up:
            return
        self.status = TrackerStatus(up, reason=f"{len(self.pids)} running ({cause})")
        log.info("vrrp_track_process %s: %s, %s", self.name, "up" if up else "down", self.status.reason)
        _call(self.on_change, self.name, self.status)

    def stop(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None


class ProcessMonitor:
    """Process events for every ProcessTracker: one proc connector (fastvrrp.io.proc_connector; needs
    CAP_NET_ADMIN, opened in the initial network namespace) plus one /proc scan at start. If the connector
    cannot be used at all we say so at ERROR and scan /proc every `fallback_scan_ms`."""

    def __init__(
        self, trackers: Iterable[ProcessTracker], fallback_scan_ms: int = 1000, force_fallback: bool = False
    ) -> None:
        self.trackers = list(trackers)
        self.fallback_scan_ms = fallback_scan_ms
        self.force_fallback = force_fallback
        self.want_cmdline = any(t.spec.needs_cmdline for t in self.trackers)
        self.connector: ProcConnector | None = None
        self.mode = "stopped"  # 'connector' | 'scan'
        self.scans = 0
        self._scan_task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def events(self) -> int:
        return self.connector.events if self.connector is not None else 0

    @property
    def malformed(self) -> int:
        return self.connector.malformed if self.connector is not None else 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        err = None
        if not self.force_fallback:
            try:
                self.connector = ProcConnector(self._on_event, self._events_lost)
            except OSError as e:
                err = e
        else:
            err = OSError("fallback forced")
        self.scan("initial")
        if self.connector is not None:
            self.mode = "connector"
            self.connector.start(self._loop)
        else:
            self.mode = "scan"
            log.error(
                "vrrp_track_process: the kernel process events connector is unavailable (%s); "
                "FALLING BACK to scanning /proc every %d ms",
                err,
                self.fallback_scan_ms,
            )
            self._scan_task = self._loop.create_task(self._scan_loop())

    def stop(self) -> None:
        if self.connector is not None:
            self.connector.close()
        if self._scan_task is not None:
            self._scan_task.cancel()
        for t in self.trackers:
            t.stop()
        self.mode = "stopped"

    # --- events ---------------------------------------------------------------------------------------
    def _events_lost(self) -> None:
        log.warning("vrrp_track_process: process events lost (ENOBUFS); rescanning /proc")
        self.scan("rescan")

    def _on_event(self, what: int, pid: int, parent: int) -> None:
        if what == PROC_EVENT_EXEC:
            self._update(pid, "exec")
        elif what == PROC_EVENT_COMM:
            self._update(pid, "comm")
        elif what == PROC_EVENT_FORK:  # a new process inherits what its parent matched
            for t in self.trackers:
                if parent in t.pids:
                    t.pids.add(pid)
                    t._evaluate("fork")
        elif what == PROC_EVENT_EXIT:
            for t in self.trackers:
                if pid in t.pids:
                    t.pids.discard(pid)
                    t._evaluate("exit")

    def _update(self, pid: int, cause: str) -> None:
        info = _read_proc(pid, self.want_cmdline)
        if info is None:
            cause = "exit"  # gone (or a zombie) by the time we looked: an exit, with its delay
        for t in self.trackers:
            hit = info is not None and t.spec.matches(info[0], info[1])
            if hit and pid not in t.pids:
                t.pids.add(pid)
                t._evaluate(cause)
            elif not hit and pid in t.pids:
                t.pids.discard(pid)
                t._evaluate(cause)

    def scan(self, cause: str = "scan") -> None:
        """Count matching processes from /proc (at start, after lost events, or periodically in fallback)."""
        self.scans += 1
        found: dict[int, set[int]] = {id(t): set() for t in self.trackers}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            info = _read_proc(pid, self.want_cmdline)
            if info is None:
                continue
            for t in self.trackers:
                if t.spec.matches(info[0], info[1]):
                    found[id(t)].add(pid)
        for t in self.trackers:
            t.pids = found[id(t)]
            t._evaluate(cause)

    async def _scan_loop(self) -> None:
        while True:
            await asyncio.sleep(self.fallback_scan_ms / 1000)
            try:
                self.scan("scan")
            except OSError as e:
                log.error("vrrp_track_process: /proc scan failed: %s", e)


# --- track_interface ---------------------------------------------------------------------------------------


class InterfaceTracker:
    """track_interface (and an instance's own interface): fed link events `push(ifindex, ifname, up)` from
    fastvrrp.io.netlink.LinkMonitor (one monitor may feed several consumers), reports per interface name.
    An interface that disappears, or is renamed away, is down; `missing()` marks every watched name not
    seen in the initial dump as down (call it after the monitor's start)."""

    def __init__(self, ifnames: Iterable[str], on_change: OnChange) -> None:
        self.watched = set(ifnames)
        self.on_change = on_change
        self.status: dict[str, TrackerStatus] = {}
        self._names: dict[int, str] = {}
        self.monitor: Any = None

    def push(self, ifindex: int, ifname: str, up: bool) -> None:
        old = self._names.get(ifindex)
        if old is not None and old != ifname:
            self._set(old, False, f"renamed to {ifname}")
        self._names[ifindex] = ifname
        self._set(ifname, up, "link up" if up else "link down")

    def removed(self, ifindex: int) -> None:
        name = self._names.pop(ifindex, None)
        if name is not None:
            self._set(name, False, "interface removed")

    def missing(self) -> None:
        for n in self.watched:
            if n not in self.status:
                self._set(n, False, "no such interface")

    def _set(self, name: str, up: bool, reason: str) -> None:
        if name not in self.watched:
            return
        cur = self.status.get(name)
        if cur is not None and cur.up == up:
            return
        st = self.status[name] = TrackerStatus(up, reason=reason)
        _call(self.on_change, name, st)

    def start_monitor(self, loop: asyncio.AbstractEventLoop, netns: str | None = None):  # type: ignore[no-untyped-def]
        """A LinkMonitor of our own feeding push(); the daemon may share its monitor instead."""
        from fastvrrp.io.netlink import LinkMonitor

        self.monitor = LinkMonitor(loop, self.push, netns=netns)
        self.monitor.start()
        self.missing()
        return self.monitor

    def stop(self) -> None:
        if self.monitor is not None:
            self.monitor.close()
            self.monitor = None


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000
