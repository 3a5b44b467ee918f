"""ScriptRunner: run commands for trackers and notify scripts, bounded, killed on time, never stuck.

    runner = ScriptRunner(max_concurrent=32, script_security=False, default_user=None)
    result = await runner.run("/usr/local/bin/check arg", timeout_ms=2000, user=None, group=None)
    result.ok / result.rc / result.timed_out / result.error / result.reason / result.output

- At most `max_concurrent` children exist at once (an asyncio.Semaphore); the rest wait their turn.
- Each child is a session and process-group leader (setsid), so a timeout kills the whole group: SIGTERM,
  then SIGKILL after `kill_grace_ms`. A hung script is a failed run (timed_out), never a stuck loop. When a
  child exits by itself, whatever it left behind in its group is killed as well.
- `user`/`group` (keepalived's script_user / `user` in vrrp_script): the child drops to them before exec.
- Script security (keepalived's enable_script_security): a script run as root whose file or any directory
  on its path a non-root user could modify is refused (`error` says which part and why; logged once). With
  security off the same finding is logged once as a warning and the script runs.
- Output (stdout and stderr together, first `output_cap` bytes) is kept in the result and logged at most
  once per `log_every_ms` per command.
"""

from __future__ import annotations

import asyncio
import grp
import logging
import os
import pwd
import shlex
import signal
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger("fastvrrp.health.runner")

_HAVE_PIDFD = hasattr(os, "pidfd_open") and hasattr(os, "posix_spawn")
_DEFAULTED = tuple(sorted(signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}))


@dataclass(frozen=True, slots=True)
class ScriptResult:
    rc: int | None  # exit code (None: timed out, killed by a signal, or never started)
    timed_out: bool = False
    error: str | None = None  # could not start: why ("not found: /x", "not executable: /x", "insecure: ...")
    signal: int | None = None  # killed by this signal (not by us)
    output: bytes = b""
    duration_ms: int = 0
    pid: int | None = None

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def reason(self) -> str:
        if self.error:
            return self.error
        if self.timed_out:
            return f"timed out after {self.duration_ms} ms"
        if self.signal is not None:
            return f"killed by signal {self.signal}"
        return f"exit {self.rc}"


class _Collect(asyncio.SubprocessProtocol):
    """Keeps the first `cap` bytes of output and resolves `exited` when the child has been reaped."""

    def __init__(self, cap: int, exited: asyncio.Future) -> None:
        self.cap = cap
        self.buf = bytearray()
        self.exited = exited

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        room = self.cap - len(self.buf)
        if room > 0:
            self.buf += data[:room]

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


def _ids(user: str | None, group: str | None) -> tuple[int | None, int | None, str | None]:
    """(uid, gid, error) for a user and optional group; the group defaults to the user's."""
    uid = gid = None
    if user is not None:
        try:
            pw = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
        except KeyError:
            return None, None, f"unknown user: {user}"
        uid, gid = pw.pw_uid, pw.pw_gid
    if group is not None:
        try:
            gid = (grp.getgrnam(group) if not group.isdigit() else grp.getgrgid(int(group))).gr_gid
        except KeyError:
            return None, None, f"unknown group: {group}"
    return uid, gid, None


def insecure_reason(path: str, uid: int = 0, gid: int = 0) -> str | None:
    """Why `path` is unsafe to run as uid/gid, or None. Every component of the resolved path (the file and
    each directory above it) must be modifiable only by root or by the user the script runs as: owned by
    root (or that user), not group-writable unless the group is root's (or the run group), and not
    world-writable, except a sticky directory (like /tmp) whose next component is owned by root/the user.
    """
    real = os.path.realpath(path)
    trusted_uids = {0, uid}
    trusted_gids = {0, gid}
    parts = real.split("/")
    prefixes = ["/"] + ["/".join(parts[: i + 1]) for i in range(1, len(parts))]
    prev_sticky_ww = False
    for p in prefixes:
        try:
            st = os.stat(p)
        except OSError as e:
            return f"cannot stat {p}: {e.strerror}"
        mode = st.st_mode
        if prev_sticky_ww and st.st_uid not in trusted_uids:
            return f"{p} is owned by uid {st.st_uid} inside a world-writable sticky directory"
        if st.st_uid not in trusted_uids:
            return f"{p} is owned by uid {st.st_uid}"
        if mode & stat.S_IWGRP and st.st_gid not in trusted_gids:
            return f"{p} is writable by group {st.st_gid}"
        ww = bool(mode & stat.S_IWOTH)
        sticky = bool(mode & stat.S_ISVTX) and stat.S_ISDIR(mode)
        if ww and not sticky:
            return f"{p} is world-writable"
        if ww and p == real:
            return f"{p} is world-writable"
        prev_sticky_ww = ww and sticky
    return None


def _resolve(argv0: str, path_env: str) -> str | None:
    if "/" in argv0:
        return argv0
    for d in path_env.split(":"):
        cand = os.path.join(d or ".", argv0)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def _drop_privileges(uid: int | None, gid: int | None):  # type: ignore[no-untyped-def]
    def pre() -> None:  # runs in the child between fork and exec
        if gid is not None:
            os.setgroups([gid])
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)

    return pre


class ScriptRunner:
    def __init__(
        self,
        max_concurrent: int = 32,
        script_security: bool = False,
        default_user: str | None = None,
        default_group: str | None = None,
        kill_grace_ms: int = 500,
        output_cap: int = 4096,
        log_every_ms: int = 10_000,
        env: dict[str, str] | None = None,
    ) -> None:
        self.max_concurrent = max_concurrent
        self._sem = asyncio.Semaphore(max_concurrent)
        self.script_security = script_security
        self.default_user = default_user
        self.default_group = default_group
        self.kill_grace_ms = kill_grace_ms
        self.output_cap = output_cap
        self.log_every_ms = log_every_ms
        self.env = (
            dict(env)
            if env is not None
            else {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        )
        # plain integer counters (read by the metrics collector)
        self.started = 0
        self.running = 0
        self.peak_running = 0
        self.timeouts = 0
        self.start_errors = 0
        self.refused_insecure = 0
        self._logged: dict[tuple[str, str], str] = {}  # (command, topic) -> last message logged
        self._last_output_log: dict[str, float] = {}

    def _once(self, key: str, topic: str, level: int, msg: str) -> None:
        """Log `msg` only when it differs from what was last logged for (key, topic)."""
        if self._logged.get((key, topic)) != msg:
            self._logged[(key, topic)] = msg
            log.log(level, msg)

    def _check(self, argv: Sequence[str], uid: int | None, gid: int | None) -> tuple[str | None, str | None]:
        """(resolved path, error)."""
        if not argv:
            return None, "empty command"
        path = _resolve(argv[0], self.env.get("PATH", ""))
        if path is None:
            return None, f"not found: {argv[0]}"
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None, f"not found: {path}"
        except OSError as e:
            return None, f"cannot stat {path}: {e.strerror}"
        if not stat.S_ISREG(st.st_mode):
            return None, f"not a regular file: {path}"
        if not st.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
            return None, f"not executable: {path}"
        why = insecure_reason(path, uid or 0, gid or 0)
        if why is not None:
            if self.script_security:
                return None, f"insecure: {why}"
            self._once(
                path,
                "insecure",
                logging.WARNING,
                f"script {path} would be refused with enable_script_security: {why}",
            )
        return path, None

    async def run(
        self,
        cmd: str | Sequence[str],
        timeout_ms: int,
        user: str | None = None,
        group: str | None = None,
    ) -> ScriptResult:
        argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        key = cmd if isinstance(cmd, str) else " ".join(cmd)
        user = user if user is not None else self.default_user
        group = group if group is not None else self.default_group
        uid, gid, err = _ids(user, group)
        if uid == os.geteuid() and (gid is None or gid == os.getegid()):
            uid = gid = None  # already that user: no need to switch (and no preexec_fn, which is slower)
        path = None
        if err is None:
            path, err = self._check(argv, uid, gid)
        if err is not None:
            self.start_errors += 1
            if err.startswith("insecure"):
                self.refused_insecure += 1
                self._once(key, "start", logging.ERROR, f"refusing to run {key!r}: {err}")
            else:
                self._once(key, "start", logging.WARNING, f"cannot run {key!r}: {err}")
            return ScriptResult(None, error=err)
        self._logged.pop((key, "start"), None)
        async with self._sem:
            full = [path, *argv[1:]]
            if uid is None and gid is None and _HAVE_PIDFD:
                return await self._spawn_fast(key, full, timeout_ms)  # type: ignore[arg-type]
            return await self._spawn(key, full, timeout_ms, uid, gid)  # type: ignore[arg-type]

    async def _spawn_fast(self, key: str, argv: list[str], timeout_ms: int) -> ScriptResult:
        """posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK), no copy of our page tables, unlike fork) plus a
        pidfd on the loop for the exit. Several times cheaper per run than the fork-based subprocess path
        for a large Python process; used whenever no user switch is needed."""
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        rfd, wfd = os.pipe2(os.O_CLOEXEC)
        try:
            pid = os.posix_spawn(
                argv[0],
                argv,
                self.env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, wfd, 1),
                    (os.POSIX_SPAWN_DUP2, wfd, 2),
                ],
                setsid=True,
                # the script starts with no signal blocked and none ignored, whatever the spawning thread's
                # mask was at that moment (a CI run once caught it with every signal blocked)
                setsigmask=(),
                setsigdef=_DEFAULTED,
            )
        except OSError as e:
            os.close(rfd)
            os.close(wfd)
            self.start_errors += 1
            msg = f"could not start: {e.strerror or e}"
            self._once(key, "start", logging.WARNING, f"cannot run {key!r}: {msg}")
            return ScriptResult(None, error=msg, duration_ms=int((time.monotonic() - t0) * 1000))
        os.close(wfd)
        os.set_blocking(rfd, False)
        pidfd = os.pidfd_open(pid)
        self.started += 1
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        buf = bytearray()
        exited: asyncio.Future = loop.create_future()

        def readable() -> None:
            try:
                data = os.read(rfd, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(rfd)  # EOF (or error): stop watching; the exit decides the end
                return
            room = self.output_cap - len(buf)
            if room > 0:
                buf.extend(data[:room])

        def gone() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(rfd, readable)
        loop.add_reader(pidfd, gone)
        status = 0
        try:
            timed_out = await self._await_exit(exited, pid, timeout_ms)
        except asyncio.CancelledError:
            _killpg(pid, signal.SIGKILL)
            raise
        finally:
            loop.remove_reader(pidfd)
            # The exit is known (or we are cancelled): reap it, then kill what it left in its group.
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = 0
            _killpg(pid, signal.SIGKILL)
            os.close(pidfd)
            readable()  # whatever is still in the pipe
            loop.remove_reader(rfd)
            os.close(rfd)
            self.running -= 1
        return self._result(key, os.waitstatus_to_exitcode(status), timed_out, bytes(buf), t0, pid)

    async def _spawn(
        self, key: str, argv: list[str], timeout_ms: int, uid: int | None, gid: int | None
    ) -> ScriptResult:
        loop = asyncio.get_running_loop()
        exited: asyncio.Future = loop.create_future()
        t0 = time.monotonic()
        kwargs = {}
        if uid is not None or gid is not None:
            kwargs["preexec_fn"] = _drop_privileges(uid, gid)
        try:
            transport, proto = await loop.subprocess_exec(
                lambda: _Collect(self.output_cap, exited),
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
                **kwargs,
            )
        except OSError as e:
            self.start_errors += 1
            msg = f"could not start: {e.strerror or e}"
            self._once(key, "start", logging.WARNING, f"cannot run {key!r}: {msg}")
            return ScriptResult(None, error=msg, duration_ms=int((time.monotonic() - t0) * 1000))
        self.started += 1
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        pid = transport.get_pid()
        try:
            timed_out = await self._await_exit(exited, pid, timeout_ms)
        except asyncio.CancelledError:
            _killpg(pid, signal.SIGKILL)
            transport.close()
            self.running -= 1
            raise
        # Anything the script left running in its group goes too (it was started for this run only).
        _killpg(pid, signal.SIGKILL)
        rc = transport.get_returncode()
        transport.close()
        self.running -= 1
        return self._result(key, rc, timed_out, bytes(proto.buf), t0, pid)

    async def _await_exit(self, exited: asyncio.Future, pid: int, timeout_ms: int) -> bool:
        """Wait for the child's exit; at the timeout SIGTERM its group, after the grace SIGKILL it.
        Returns whether it timed out."""
        try:
            await asyncio.wait_for(asyncio.shield(exited), timeout_ms / 1000)
            return False
        except TimeoutError:
            self.timeouts += 1
            _killpg(pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(exited), self.kill_grace_ms / 1000)
            except TimeoutError:
                _killpg(pid, signal.SIGKILL)
                await exited
            return True

    def _result(
        self, key: str, rc: int | None, timed_out: bool, out: bytes, t0: float, pid: int
    ) -> ScriptResult:
        sig = -rc if rc is not None and rc < 0 else None
        if sig is not None or timed_out:
            rc = None
        res = ScriptResult(
            rc,
            timed_out=timed_out,
            signal=None if timed_out else sig,
            output=out,
            duration_ms=int((time.monotonic() - t0) * 1000),
            pid=pid,
        )
        if out:
            self._log_output(key, res)
        return res

    def _log_output(self, key: str, res: ScriptResult) -> None:
        now = time.monotonic()
        last = self._last_output_log.get(key)
        if last is not None and (now - last) * 1000 < self.log_every_ms:
            return
        self._last_output_log[key] = now
        text = res.output.decode(errors="replace").strip().replace("\n", " | ")
        log.info("script %r (%s) said: %s", key, res.reason, text[:400])


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
