"""keepalived-compatible notifications: notify_* scripts, the generic `notify` script and notify FIFOs.

What an operator's existing scripts expect, as keepalived 2.x does it (keepalived.conf(5), vrrp_sync_group
and vrrp_instance sections):

- notify_master / notify_backup / notify_fault / notify_stop run the configured command as written (the
  command string is split into words; it is not given to a shell). notify_deleted replaces FAULT by DELETED
  for an instance removed by a reload; notify_master_rx_lower_pri runs when a master hears a lower priority.
- `notify` runs after the notify_* script with four more arguments: "INSTANCE"|"GROUP", the name, the target
  state ("MASTER"|"BACKUP"|"FAULT"|"STOP"|"DELETED") and the priority (the effective priority of an
  instance; 0 for a group).
- FIFO lines (global notify_fifo and vrrp_notify_fifo) are the same four values with the name in double
  quotes: `INSTANCE "VI_1" MASTER 100`, `GROUP "VG_1" BACKUP 0`, plus the events MASTER_RX_LOWER_PRI and,
  with notify_priority_changes, MASTER_PRIORITY / BACKUP_PRIORITY. One line per event, newline-terminated.
  The FIFO is created if missing, opened non-blocking, and its notify_fifo_script is started with the FIFO
  name as its last argument.

Ordering: the notifications of one instance (or group) are delivered in the order they happened: one queue
per name, consumed by one task that waits for each script before the next. FIFO lines are written at once,
in event order, so the FIFO's order is the daemon's order. Nothing here blocks the loop: scripts run through
the runner (bounded concurrency, timeouts, process groups); a full FIFO buffers in memory up to a bound.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import os
import shlex
import signal
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("fastvrrp.daemon.notify")

STATES = ("MASTER", "BACKUP", "FAULT", "STOP", "DELETED")  # what `notify` scripts may receive
EVENTS = ("MASTER_RX_LOWER_PRI", "MASTER_PRIORITY", "BACKUP_PRIORITY")  # FIFO-only event words
DEFAULT_TIMEOUT_MS = 30_000  # keepalived waits for no notify script; a hung one must not stall the queue
FIFO_BUFFER_MAX = 1 << 20  # bytes held for a FIFO nobody reads, beyond the kernel's pipe buffer


class Runner(Protocol):
    """What the notifier needs: fastvrrp.health.runner.ScriptRunner (argv list, bounded, timeouts)."""

    async def run(
        self, cmd: Sequence[str], timeout_ms: int, user: str | None = None, group: str | None = None
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class Command:
    """One configured script: the command (split into words like keepalived) and who runs it."""

    argv: tuple[str, ...]
    user: str | None = None
    group: str | None = None

    @classmethod
    def of(cls, script: Any) -> Command | None:
        """From a config Script (command, user, group), a plain string, or None."""
        if script is None:
            return None
        if isinstance(script, str):
            text, user, group = script, None, None
        else:
            text, user, group = script.command, script.user, script.group
        try:
            argv = tuple(shlex.split(text))
        except ValueError:  # unbalanced quote: keepalived would take the words as they are
            argv = tuple(text.split())
        return cls(argv, user, group) if argv else None


@dataclass(frozen=True, slots=True)
class Scripts:
    """The notification settings of one vrrp_instance or vrrp_sync_group."""

    master: Command | None = None
    backup: Command | None = None
    fault: Command | None = None
    stop: Command | None = None
    deleted: Command | None = None  # instances only
    master_rx_lower_pri: Command | None = None  # instances only
    notify: Command | None = None
    notify_deleted: bool = False  # send DELETED rather than FAULT when a reload removes the instance
    priority_changes: bool = False  # MASTER_PRIORITY / BACKUP_PRIORITY lines on the FIFOs

    @classmethod
    def of(cls, cfg: Any, priority_changes_default: bool = False) -> Scripts:
        """From an InstanceConfig or a SyncGroupConfig (fields notify_master ... notify_priority_changes)."""
        deleted = getattr(cfg, "notify_deleted", None)
        made = cls(
            master=Command.of(cfg.notify_master),
            backup=Command.of(cfg.notify_backup),
            fault=Command.of(cfg.notify_fault),
            stop=Command.of(cfg.notify_stop),
            deleted=Command.of(deleted),
            master_rx_lower_pri=Command.of(getattr(cfg, "notify_master_rx_lower_pri", None)),
            notify=Command.of(cfg.notify),
            notify_deleted=deleted is not None,
            priority_changes=bool(cfg.notify_priority_changes or priority_changes_default),
        )
        # Most instances have none: they share one object (a thousand instances, ~100 KiB less).
        return _NONE if made == _NONE else made

    def for_state(self, word: str) -> Command | None:
        return {
            "MASTER": self.master,
            "BACKUP": self.backup,
            "FAULT": self.fault,
            "STOP": self.stop,
            "DELETED": self.deleted,
        }.get(word)


NO_SCRIPTS = Scripts()
_NONE = NO_SCRIPTS


def fifo_line(kind: str, name: str, word: str, priority: int) -> bytes:
    """`INSTANCE "VI_1" MASTER 100\\n` (keepalived's FIFO format; a group's priority is 0)."""
    return f'{kind} "{name}" {word} {priority}\n'.encode()


def notify_argv(cmd: Command, kind: str, name: str, word: str, priority: int) -> list[str]:
    """The generic `notify` script's argv: its own words, then TYPE NAME STATE PRIORITY (unquoted)."""
    return [*cmd.argv, kind, name, word, str(priority)]


@dataclass(frozen=True, slots=True)
class FifoSpec:
    path: str
    script: Command | None = None


class _Fifo:
    """One notify FIFO: created if missing, opened O_RDWR|O_NONBLOCK (never blocks, needs no reader yet)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, spec: FifoSpec) -> None:
        self.loop = loop
        self.spec = spec
        self.fd = -1
        self.created = False
        self.pending = bytearray()
        self.writing = False
        self.dropped_lines = 0
        self.proc: asyncio.subprocess.Process | None = None

    def open(self) -> None:
        path = self.spec.path
        try:
            st = os.stat(path)
            if not stat.S_ISFIFO(st.st_mode):
                raise OSError(errno.EEXIST, f"{path} exists and is not a FIFO")
        except FileNotFoundError:
            os.mkfifo(path, 0o600)
            self.created = True
        # O_RDWR: an O_WRONLY|O_NONBLOCK open fails with ENXIO while no reader has it open (fifo(7)).
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    async def start_script(self) -> None:
        cmd = self.spec.script
        if cmd is None:
            return
        # A long-lived reader, not a notification: it is not run through the runner (which waits for exit).
        kw: dict[str, Any] = {}
        if cmd.user is not None:
            kw["user"] = cmd.user
        if cmd.group is not None:
            kw["group"] = cmd.group
        self.proc = await asyncio.create_subprocess_exec(
            *cmd.argv, self.spec.path, stdin=asyncio.subprocess.DEVNULL, start_new_session=True, **kw
        )

    def write(self, line: bytes) -> None:
        if self.fd < 0:
            return
        if self.pending:  # keep the order: behind what is already waiting
            self._queue(line)
            return
        try:
            n = os.write(self.fd, line)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            log.warning("notify fifo %s: %s", self.spec.path, exc)
            return
        if n < len(line):
            self._queue(line[n:])

    def _queue(self, data: bytes) -> None:
        if len(self.pending) + len(data) > FIFO_BUFFER_MAX:
            self.dropped_lines += 1
            return
        self.pending += data
        if not self.writing:
            self.loop.add_writer(self.fd, self._drain)
            self.writing = True

    def _drain(self) -> None:
        try:
            n = os.write(self.fd, self.pending)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("notify fifo %s: %s", self.spec.path, exc)
            n = len(self.pending)
        del self.pending[:n]
        if not self.pending and self.writing:
            self.loop.remove_writer(self.fd)
            self.writing = False

    async def close(self, grace_s: float) -> None:
        if self.writing:
            self.loop.remove_writer(self.fd)  # before close (uvloop aborts on a closed registered fd)
            self.writing = False
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        proc = self.proc
        if proc is not None and proc.returncode is None:
            # Our end closed: a reader that loops on the FIFO sees EOF; then ask it, then make it.
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    await asyncio.wait_for(proc.wait(), grace_s)
                    break
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, sig)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), grace_s)
        if self.created:
            with contextlib.suppress(OSError):
                os.unlink(self.spec.path)


@dataclass(slots=True)
class _Job:
    steps: tuple[tuple[list[str], Command], ...]


class Notifier:
    """Delivers notifications in order per instance/group without ever blocking the caller.

    `instance_state()`, `group_state()` and `instance_event()` are plain calls from the driver: they write
    the FIFO line now and queue the scripts; `close()` waits (bounded) for what is queued, e.g. the
    notify_stop scripts at shutdown, and closes the FIFOs.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        runner: Runner | None,
        fifo_path: str | None = None,
        fifo_script: Any = None,
        *,
        fifos: Sequence[FifoSpec] = (),
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        default_user: str | None = None,
        default_group: str | None = None,
        max_queue: int = 1000,
    ) -> None:
        self.loop = loop
        self.runner = runner
        specs = list(fifos)
        if fifo_path:
            specs.insert(0, FifoSpec(fifo_path, Command.of(fifo_script)))
        self._fifos = [_Fifo(loop, s) for s in specs]
        self.timeout_ms = timeout_ms
        self.default_user = default_user
        self.default_group = default_group
        self.max_queue = max_queue
        self._queues: dict[tuple[str, str], collections.deque[_Job]] = {}
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._started = False
        # Plain counters (exported by whoever wants them).
        self.scripts_run = 0
        self.scripts_failed = 0
        self.dropped = 0

    @classmethod
    def from_config(
        cls, loop: asyncio.AbstractEventLoop, runner: Runner | None, gd: Any, **kw: Any
    ) -> Notifier:
        """The global notify_fifo and vrrp_notify_fifo (each with its script) of a config GlobalDefs."""
        specs = []
        for fifo, script in (
            (gd.notify_fifo, gd.notify_fifo_script),
            (gd.vrrp_notify_fifo, gd.vrrp_notify_fifo_script),
        ):
            if fifo is not None and fifo.command:
                specs.append(FifoSpec(fifo.command, Command.of(script)))
        kw.setdefault("default_user", gd.script_user)
        kw.setdefault("default_group", gd.script_group)
        return cls(loop, runner, fifos=specs, **kw)

    async def start(self) -> None:
        """Create and open the FIFOs and start their reader scripts. Errors are logged, not raised."""
        self._started = True
        for f in self._fifos:
            try:
                f.open()
                await f.start_script()
            except OSError as exc:
                log.error("notify fifo %s: %s", f.spec.path, exc)

    @property
    def fifo_paths(self) -> list[str]:
        return [f.spec.path for f in self._fifos]

    @property
    def fifo_dropped_lines(self) -> int:
        return sum(f.dropped_lines for f in self._fifos)

    # --- what the driver calls ---------------------------------------------------------------------------

    def instance_state(self, name: str, scripts: Scripts, state: str, priority: int) -> None:
        """An instance entered `state` (MASTER BACKUP FAULT STOP DELETED) with this effective priority."""
        if state == "DELETED" and not scripts.notify_deleted:
            state = "FAULT"  # keepalived: a removed instance reports FAULT unless notify_deleted is set
        self._state("INSTANCE", name, scripts, state, priority)

    def group_state(self, name: str, scripts: Scripts, state: str) -> None:
        """A sync group entered `state`; keepalived reports priority 0 for groups."""
        self._state("GROUP", name, scripts, state, 0)

    def instance_event(self, name: str, scripts: Scripts, event: str, priority: int) -> None:
        """MASTER_RX_LOWER_PRI (runs notify_master_rx_lower_pri), or a priority change (FIFO only, if
        notify_priority_changes): MASTER_PRIORITY / BACKUP_PRIORITY."""
        if event == "MASTER_RX_LOWER_PRI":
            self._write_fifos(fifo_line("INSTANCE", name, event, priority))
            cmd = scripts.master_rx_lower_pri
            if cmd is not None:
                self._enqueue(("INSTANCE", name), ((list(cmd.argv), cmd),))
        elif event in ("MASTER_PRIORITY", "BACKUP_PRIORITY"):
            if scripts.priority_changes:
                self._write_fifos(fifo_line("INSTANCE", name, event, priority))
        else:
            raise ValueError(f"unknown notify event {event!r}")

    async def drain(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued script has run; False if the timeout came first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout_s: float = 5.0) -> None:
        """Let queued scripts finish (bounded), then stop the workers and close the FIFOs."""
        await self.drain(timeout_s)
        for task in list(self._workers.values()):
            task.cancel()
        for task in list(self._workers.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers.clear()
        self._queues.clear()
        self._idle.set()
        for f in self._fifos:
            await f.close(grace_s=1.0)

    # --- internals ---------------------------------------------------------------------------------------

    def _state(self, kind: str, name: str, scripts: Scripts, state: str, priority: int) -> None:
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        steps: list[tuple[list[str], Command]] = []
        specific = scripts.for_state(state)
        if specific is not None:  # notify_* first, then the generic notify (keepalived.conf(5))
            steps.append((list(specific.argv), specific))
        if scripts.notify is not None:
            steps.append((notify_argv(scripts.notify, kind, name, state, priority), scripts.notify))
        self._write_fifos(fifo_line(kind, name, state, priority))
        if steps:
            self._enqueue((kind, name), tuple(steps))

    def _write_fifos(self, line: bytes) -> None:
        for f in self._fifos:
            f.write(line)

    def _enqueue(self, key: tuple[str, str], steps: tuple[tuple[list[str], Command], ...]) -> None:
        if self.runner is None:
            log.warning("%s %s: no script runner, notification not run", *key)
            return
        q = self._queues.get(key)
        if q is None:
            q = self._queues[key] = collections.deque()
        if len(q) >= self.max_queue:
            self.dropped += 1
            log.warning("%s %s: %d notifications waiting, dropping one", key[0], key[1], len(q))
            return
        q.append(_Job(steps))
        self._idle.clear()
        if key not in self._workers:
            self._workers[key] = self.loop.create_task(self._work(key, q))

    async def _work(self, key: tuple[str, str], q: collections.deque[_Job]) -> None:
        assert self.runner is not None
        try:
            while q:
                job = q[0]
                for argv, cmd in job.steps:
                    user = cmd.user if cmd.user is not None else self.default_user
                    group = cmd.group if cmd.group is not None else self.default_group
                    try:
                        res = await self.runner.run(argv, self.timeout_ms, user=user, group=group)
                    except asyncio.CancelledError:
                        raise
                    except Exception:  # a broken script must not stop later notifications
                        log.exception("%s %s: notify script %s failed to run", key[0], key[1], argv[0])
                        self.scripts_failed += 1
                        continue
                    self.scripts_run += 1
                    if not _succeeded(res):
                        self.scripts_failed += 1
                        why = getattr(res, "reason", None) or f"exit {getattr(res, 'rc', '?')}"
                        log.warning("%s %s: %s: %s", key[0], key[1], " ".join(argv), why)
                q.popleft()
        finally:
            if self._workers.get(key) is asyncio.current_task():
                del self._workers[key]
            if not q:
                self._queues.pop(key, None)
            if not self._workers:
                self._idle.set()


def _succeeded(res: Any) -> bool:
    """ScriptResult.ok (fastvrrp.health.runner); anything else with a zero exit code."""
    ok = getattr(res, "ok", None)
    if isinstance(ok, bool):
        return ok
    return getattr(res, "rc", getattr(res, "returncode", None)) == 0
