"""ScriptRunner and the trackers against real processes, files and the kernel's process events."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import uvloop

from fastvrrp.health.runner import ScriptRunner, insecure_reason
from fastvrrp.health.status import TrackerStatus
from fastvrrp.health.trackers import FileTracker, ProcessMonitor, ProcessTracker, ProcSpec, ScriptTracker
from fastvrrp.lab.namespaces import wait_for, wait_for_async

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (script users, proc connector)")


def run(coro):
    return uvloop.run(coro)


@pytest.fixture
def sdir():
    d = tempfile.mkdtemp(prefix="fvhealth-")  # /tmp: sticky, so root-owned entries under it are secure
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def script(d, name, body, mode=0o755):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write("#!/bin/sh\n" + body + "\n")
    os.chmod(p, mode)
    return p


def pg_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def pg_gone(pgid):
    # killed members are reaped by their (new) parent a moment later: poll with a deadline
    wait_for(lambda: not pg_alive(pgid), timeout=3, what=f"process group {pgid} gone")
    return True


def test_exit_codes_and_output(sdir):
    ok = script(sdir, "ok", "echo hello; exit 0")
    bad = script(sdir, "bad", "echo oops >&2; exit 3")
    r = ScriptRunner

    async def main():
        runner = r()
        return await runner.run(ok, 2000), await runner.run([bad, "x"], 2000)

    a, b = run(main())
    assert a.ok and a.rc == 0 and a.output == b"hello\n" and a.reason == "exit 0"
    assert not b.ok and b.rc == 3 and b"oops" in b.output and b.reason == "exit 3"


def test_hung_script_killed_at_timeout_with_its_group(sdir):
    # the script starts a grandchild in its group and hangs; both must be gone after the timeout
    hang = script(sdir, "hang", "sleep 30 &\nexec sleep 30")

    async def main():
        runner = ScriptRunner(kill_grace_ms=200)
        t0 = time.monotonic()
        res = await runner.run(hang, 300)
        return res, time.monotonic() - t0, runner

    res, took, runner = run(main())
    assert res.timed_out and res.rc is None and "timed out" in res.reason
    assert took < 2.0 and runner.timeouts == 1 and runner.running == 0
    assert pg_gone(res.pid)


def test_script_ignoring_sigterm_gets_sigkill(sdir):
    stubborn = script(sdir, "stubborn", "trap '' TERM\nwhile :; do sleep 0.05; done")
    res = run(ScriptRunner(kill_grace_ms=200).run(stubborn, 200))
    assert res.timed_out and pg_gone(res.pid)


def test_missing_and_not_executable(sdir):
    noexec = script(sdir, "noexec", "exit 0", mode=0o644)

    async def main():
        runner = ScriptRunner()
        return await runner.run(os.path.join(sdir, "nope"), 1000), await runner.run(noexec, 1000), runner

    a, b, runner = run(main())
    assert a.error == f"not found: {sdir}/nope" and not a.ok
    assert b.error == f"not executable: {noexec}"
    assert runner.start_errors == 2 and runner.started == 0


def test_script_security_refuses_non_root_owner_and_world_writable_dir(sdir, caplog):
    nobody = pwd.getpwnam("nobody")
    owned = script(sdir, "owned", "exit 0")
    os.chown(owned, nobody.pw_uid, nobody.pw_gid)
    wdir = os.path.join(sdir, "ww")
    os.mkdir(wdir)
    os.chmod(wdir, 0o777)
    inww = script(wdir, "inww", "exit 0")
    safe = script(sdir, "safe", "exit 0")
    assert "owned by uid" in insecure_reason(owned)
    assert "world-writable" in insecure_reason(inww)
    assert insecure_reason(safe) is None

    async def main():
        secure, lax = ScriptRunner(script_security=True), ScriptRunner(script_security=False)
        out = [await secure.run(owned, 1000), await secure.run(inww, 1000), await secure.run(safe, 1000)]
        out += [await lax.run(owned, 1000), await lax.run(owned, 1000)]
        return out, secure

    with caplog.at_level("WARNING", logger="fastvrrp.health.runner"):
        (a, b, c, d, e), secure = run(main())
    assert a.error.startswith("insecure: ") and "owned by uid" in a.error
    assert b.error.startswith("insecure: ") and "world-writable" in b.error
    assert c.ok and d.ok and e.ok and secure.refused_insecure == 2
    warned = [r for r in caplog.records if "would be refused" in r.getMessage()]
    assert len(warned) == 1  # warned once, not per run


def test_runs_as_script_user(sdir):
    who = script(sdir, "who", "id -u; id -g")
    res = run(ScriptRunner().run(who, 2000, user="nobody"))
    nobody = pwd.getpwnam("nobody")
    assert res.ok and res.output.split() == [str(nobody.pw_uid).encode(), str(nobody.pw_gid).encode()]


def test_bounded_concurrency_1000_trackers(sdir):
    """1000 trackers of a sleeping script: the number of live children never exceeds the bound (measured by
    the script itself through a counter directory, not by the runner's own bookkeeping)."""
    live = os.path.join(sdir, "live")
    os.mkdir(live)
    s = script(
        sdir,
        "slow",
        f"touch {live}/$$; n=$(ls {live} | wc -l); echo $n >> {sdir}/peaks; sleep 0.05; rm {live}/$$",
    )
    bound = 16

    async def main():
        runner = ScriptRunner(max_concurrent=bound)
        changes = []
        ts = [
            ScriptTracker(
                f"s{i}", s, runner, lambda n, st: changes.append(n), interval_ms=60_000, timeout_ms=5000
            )
            for i in range(1000)
        ]
        for t in ts:
            t.start()
        await wait_for_async(lambda: sum(t.runs for t in ts) >= 1000, 40, 0.05, raise_on_timeout=False)
        for t in ts:
            t.stop()
        return runner, ts, changes

    runner, ts, changes = run(main())
    assert sum(t.runs for t in ts) == 1000 and len(changes) == 1000
    peaks = [int(x) for x in open(os.path.join(sdir, "peaks")).read().split()]
    assert len(peaks) == 1000
    assert max(peaks) <= bound and runner.peak_running <= bound
    assert max(peaks) >= bound // 2  # the bound was actually reached: the test could fail


def test_script_tracker_rise_fall(sdir):
    flag = os.path.join(sdir, "flag")
    s = script(sdir, "chk", f"test -e {flag}")

    async def main():
        seen: list[tuple[str, TrackerStatus]] = []
        t = ScriptTracker(
            "chk", s, ScriptRunner(), lambda n, st: seen.append((n, st)), interval_ms=40, rise=2, fall=3
        )
        open(flag, "w").close()
        t.start()
        await wait_for_async(lambda: len(seen) == 1, 5, 0.01)
        assert seen[0][1].up is True
        os.unlink(flag)
        runs = t.runs
        await wait_for_async(lambda: len(seen) == 2, 5, 0.01)
        assert seen[1][1].up is False and t.runs - runs == 3 and seen[1][1].reason == "exit 1"
        open(flag, "w").close()
        runs = t.runs
        await wait_for_async(lambda: len(seen) == 3, 5, 0.01)
        assert seen[2][1].up is True and t.runs - runs == 2
        t.stop()

    run(main())


def test_script_tracker_missing_script_is_down_and_retried(sdir, caplog):
    path = os.path.join(sdir, "later")

    async def main():
        seen = []
        t = ScriptTracker(
            "later", path, ScriptRunner(), lambda n, st: seen.append(st), interval_ms=30, init_fail=True
        )
        t.start()
        await wait_for_async(lambda: t.runs >= 4, 10, 0.01)
        assert [s.up for s in seen] == [False]
        script(sdir, "later", "exit 0")
        await wait_for_async(lambda: len(seen) >= 2, 5, 0.01, raise_on_timeout=False)
        t.stop()
        return seen, t

    with caplog.at_level("WARNING", logger="fastvrrp.health.runner"):
        seen, t = run(main())
    assert seen[-1].up is True and t.failures["start"] >= 4
    assert len([r for r in caplog.records if "not found" in r.getMessage()]) == 1  # logged once


def test_file_tracker_write_create_delete_within_100ms(sdir):
    path = os.path.join(sdir, "weight")

    async def main():
        seen = []
        t = FileTracker("tf", path, lambda n, st: seen.append(st))
        t.start()
        assert t.status.value == 0 and t.status.reason == "file missing"
        delays = []
        for action, want in (("create", 5), ("write", -3), ("rename", 9), ("delete", 0)):
            t0 = time.monotonic()
            if action in ("create", "write"):
                with open(path, "w") as f:
                    f.write(f"{want}\n")
            elif action == "rename":
                with open(path + ".new", "w") as f:
                    f.write(f"{want}\n")
                os.rename(path + ".new", path)
            else:
                os.unlink(path)
            await wait_for_async(lambda w=want: t.status.value == w, 1.0, 0.002, what=action)
            delays.append(time.monotonic() - t0)
        reads = t.reads
        await asyncio.sleep(0.3)  # no polling: nothing re-reads the file while nothing happens
        assert t.reads == reads
        t.stop()
        return seen, delays

    seen, delays = run(main())
    assert [s.value for s in seen] == [0, 5, -3, 9, 0]
    assert max(delays) < 0.1


def test_file_tracker_init_file(sdir):
    path = os.path.join(sdir, "init")
    with open(path, "w") as f:
        f.write("4")

    async def main():
        a = FileTracker("a", path, lambda n, st: None, init_file=True, init_value=7)
        a.start()
        first = a.status.value
        b = FileTracker("b", path, lambda n, st: None, init_file=True, init_value=7, init_overwrite=True)
        b.start()
        await asyncio.sleep(0.05)
        a.stop(), b.stop()
        return first, b.status.value

    first, second = run(main())
    assert first == 4  # exists: left alone
    assert second == 7 and open(path).read().strip() == "7"


def comm_of(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


@pytest.mark.parametrize("fallback", [False, True], ids=["connector", "scan-fallback"])
def test_process_tracker_quorum(fallback):
    name = f"fvq{os.getpid() % 100000}"  # a unique comm: a copy of sleep under our own name
    exe = os.path.join(tempfile.gettempdir(), name)
    shutil.copy("/bin/sleep", exe)
    procs = []

    async def main():
        seen = []
        t = ProcessTracker(ProcSpec("p", (name,), quorum=2), lambda n, st: seen.append(st))
        mon = ProcessMonitor([t], fallback_scan_ms=50, force_fallback=fallback)
        mon.start()
        assert mon.mode == ("scan" if fallback else "connector")
        await wait_for_async(lambda: seen and seen[-1].up is False, 3, 0.005)
        procs.append(subprocess.Popen([exe, "30"]))
        await wait_for_async(lambda: len(t.pids) == 1, 3, 0.005)
        assert seen[-1].up is False
        procs.append(subprocess.Popen([exe, "30"]))
        await wait_for_async(lambda: seen[-1].up is True, 3, 0.005)
        assert t.pids == {p.pid for p in procs}
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        await wait_for_async(lambda: seen[-1].up is False, 3, 0.005)
        mon.stop()
        return seen, mon

    try:
        seen, mon = run(main())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        os.unlink(exe)
    assert [s.up for s in seen] == [False, True, False]
    if not fallback:
        assert mon.events > 0 and mon.scans == 1  # one initial scan, then events only


def test_process_tracker_terminate_delay_absorbs_a_restart():
    name = f"fvd{os.getpid() % 100000}"
    exe = os.path.join(tempfile.gettempdir(), name)
    shutil.copy("/bin/sleep", exe)
    procs = [subprocess.Popen([exe, "30"])]
    # Popen returns once the exec has begun, which can be before the kernel renames the process: the initial
    # /proc scan below must find it by its new name.
    wait_for(lambda: comm_of(procs[0].pid) == name, 2, 0.005, what="the new process's name")

    async def main():
        seen = []
        t = ProcessTracker(ProcSpec("p", (name,), terminate_delay_ms=1500), lambda n, st: seen.append(st))
        mon = ProcessMonitor([t])
        mon.start()
        assert [s.up for s in seen] == [True]
        procs[0].kill()
        procs[0].wait()
        await wait_for_async(lambda: not t.pids, 2, 0.005, raise_on_timeout=False)
        t_exit = time.monotonic()
        procs.append(subprocess.Popen([exe, "30"]))  # restarted within the delay: no down
        await wait_for_async(lambda: t.pids, 2, 0.005, raise_on_timeout=False)
        assert t.pids and time.monotonic() < t_exit + 1.5, "restart not seen within terminate_delay"
        await asyncio.sleep(t_exit + 1.5 + 0.3 - time.monotonic())  # past the delay: still no down
        mon.stop()
        return seen

    try:
        seen = run(main())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        os.unlink(exe)
    assert [s.up for s in seen] == [True]
