"""Notifications: keepalived's argument and FIFO line formats, order per instance, nothing blocks the loop.

Scripts are real shell scripts run as real processes through fastvrrp.health.runner.ScriptRunner.
"""

from __future__ import annotations

import asyncio
import os
import stat
import textwrap
import time

import uvloop

from fastvrrp.daemon import notify
from fastvrrp.health.runner import ScriptRunner
from fastvrrp.lab.namespaces import wait_for_async


def _runner(limit: int = 8) -> ScriptRunner:
    return ScriptRunner(max_concurrent=limit)


def _script(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


def _lines(path) -> list[str]:
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


# --- formats -----------------------------------------------------------------------------------------------


def test_fifo_line_format_matches_keepalived():
    assert notify.fifo_line("INSTANCE", "VI_1", "MASTER", 100) == b'INSTANCE "VI_1" MASTER 100\n'
    assert notify.fifo_line("GROUP", "VG_1", "BACKUP", 0) == b'GROUP "VG_1" BACKUP 0\n'


def test_notify_argv_appends_type_name_state_priority():
    cmd = notify.Command.of('/etc/keepalived/notify.sh "two words" x')
    assert cmd is not None
    assert notify.notify_argv(cmd, "INSTANCE", "VI_1", "FAULT", 90) == [
        "/etc/keepalived/notify.sh", "two words", "x", "INSTANCE", "VI_1", "FAULT", "90",
    ]  # fmt: skip


def test_scripts_from_parsed_config(tmp_path):
    from fastvrrp import config

    conf = tmp_path / "k.conf"
    conf.write_text(
        textwrap.dedent("""\
        global_defs {
            vrrp_notify_fifo /tmp/never-opened-fifo
        }
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 51
            priority 100
            virtual_ipaddress {
                192.0.2.100/24
            }
            notify_master "/bin/m.sh up"
            notify /bin/n.sh
            notify_priority_changes
        }
        """)
    )
    cfg, problems, _ = config.check(str(conf))
    assert cfg is not None, problems
    s = notify.Scripts.of(cfg.instance("VI_1"))
    assert s.master == notify.Command(("/bin/m.sh", "up"))
    assert s.notify == notify.Command(("/bin/n.sh",))
    assert s.backup is None and s.priority_changes
    nt = notify.Notifier.from_config(None, None, cfg.global_defs)  # type: ignore[arg-type]
    assert nt.fifo_paths == ["/tmp/never-opened-fifo"]


# --- scripts ------------------------------------------------------------------------------------------


def test_instance_scripts_run_with_keepalived_arguments(tmp_path):
    log = tmp_path / "log"
    m = _script(tmp_path, "m.sh", f'echo "master $*" >> {log}\n')
    n = _script(tmp_path, "n.sh", f'echo "notify $*" >> {log}\n')
    scripts = notify.Scripts(master=notify.Command((m, "arg1")), notify=notify.Command((n,)))

    async def main():
        nt = notify.Notifier(asyncio.get_running_loop(), _runner())
        await nt.start()
        nt.instance_state("VI_1", scripts, "MASTER", 100)
        nt.instance_state("VI_1", scripts, "BACKUP", 90)  # no notify_backup: only the generic one
        assert await nt.drain(5)
        await nt.close()

    uvloop.run(main())
    assert _lines(log) == ["master arg1", "notify INSTANCE VI_1 MASTER 100", "notify INSTANCE VI_1 BACKUP 90"]


def test_group_scripts_get_priority_zero(tmp_path):
    log = tmp_path / "log"
    n = _script(tmp_path, "n.sh", f'echo "$*" >> {log}\n')
    f = _script(tmp_path, "f.sh", f'echo "fault $*" >> {log}\n')
    scripts = notify.Scripts(fault=notify.Command((f, "VG_1")), notify=notify.Command((n,)))

    async def main():
        nt = notify.Notifier(asyncio.get_running_loop(), _runner())
        nt.group_state("VG_1", scripts, "FAULT")
        await nt.close()

    uvloop.run(main())
    assert _lines(log) == ["fault VG_1", "GROUP VG_1 FAULT 0"]


def test_order_per_instance_kept_behind_a_slow_script(tmp_path):
    """A slow notify for one transition delays the next notification of that instance, never reorders it."""
    log = tmp_path / "log"
    n = _script(tmp_path, "n.sh", f'[ "$3" = MASTER ] && sleep 0.3\necho "$3" >> {log}\n')
    scripts = notify.Scripts(notify=notify.Command((n,)))

    async def main():
        nt = notify.Notifier(asyncio.get_running_loop(), _runner(8))
        t0 = time.perf_counter()
        for st in ("MASTER", "BACKUP", "FAULT", "BACKUP", "MASTER", "STOP"):
            nt.instance_state("VI_1", scripts, st, 100)
        queued_s = time.perf_counter() - t0
        assert await nt.drain(10)
        await nt.close()
        return queued_s

    queued_s = uvloop.run(main())
    assert queued_s < 0.05  # queuing is immediate; the scripts run later
    assert _lines(log) == ["MASTER", "BACKUP", "FAULT", "BACKUP", "MASTER", "STOP"]


def test_slow_script_of_one_instance_does_not_delay_another_or_the_loop(tmp_path):
    log = tmp_path / "log"
    slow = _script(tmp_path, "slow.sh", f"sleep 1\necho slow >> {log}\n")
    fast = _script(tmp_path, "fast.sh", f"echo fast >> {log}\n")

    async def main():
        loop = asyncio.get_running_loop()
        nt = notify.Notifier(loop, _runner())
        ticks = []

        def tick():  # a 10 ms "advert timer": must keep its pace while scripts run
            ticks.append(time.monotonic())
            if len(ticks) < 40:
                loop.call_later(0.01, tick)

        tick()
        nt.instance_state("VI_1", notify.Scripts(master=notify.Command((slow,))), "MASTER", 100)
        nt.instance_state("VI_2", notify.Scripts(master=notify.Command((fast,))), "MASTER", 100)
        await wait_for_async(
            lambda: _lines(log) == ["fast"], 0.8, 0.01
        )  # done while VI_1's script still sleeps
        assert await nt.drain(5)
        await nt.close()
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        return max(gaps)

    worst_gap = uvloop.run(main())
    assert _lines(log) == ["fast", "slow"]
    assert worst_gap < 0.1, worst_gap


def test_deleted_is_fault_unless_notify_deleted(tmp_path):
    log = tmp_path / "log"
    n = _script(tmp_path, "n.sh", f'echo "$3" >> {log}\n')

    async def main():
        nt = notify.Notifier(asyncio.get_running_loop(), _runner())
        nt.instance_state("VI_1", notify.Scripts(notify=notify.Command((n,))), "DELETED", 100)
        nt.instance_state(
            "VI_2", notify.Scripts(notify=notify.Command((n,)), notify_deleted=True), "DELETED", 100
        )
        await nt.close()

    uvloop.run(main())
    # Two instances have two queues: their scripts may finish in either order.
    assert sorted(_lines(log)) == ["DELETED", "FAULT"]


def test_timeout_kills_hung_script_and_the_queue_moves_on(tmp_path):
    log = tmp_path / "log"
    n = _script(tmp_path, "n.sh", f'[ "$3" = MASTER ] && sleep 30\necho "$3" >> {log}\n')

    async def main():
        nt = notify.Notifier(asyncio.get_running_loop(), _runner(), timeout_ms=200)
        nt.instance_state("VI_1", notify.Scripts(notify=notify.Command((n,))), "MASTER", 100)
        nt.instance_state("VI_1", notify.Scripts(notify=notify.Command((n,))), "BACKUP", 100)
        assert await nt.drain(5)
        await nt.close()

    uvloop.run(main())
    assert _lines(log) == ["BACKUP"]


def test_missing_script_is_counted_and_later_ones_run(tmp_path):
    log = tmp_path / "log"
    ok = _script(tmp_path, "ok.sh", f'echo "$3" >> {log}\n')

    async def main():
        nt = notify.Notifier(asyncio.get_running_loop(), _runner())
        s = notify.Scripts(
            master=notify.Command((str(tmp_path / "absent.sh"),)), notify=notify.Command((ok,))
        )
        nt.instance_state("VI_1", s, "MASTER", 100)
        await nt.close()
        return nt.scripts_failed

    assert uvloop.run(main()) == 1
    assert _lines(log) == ["MASTER"]


# --- FIFO ----------------------------------------------------------------------------------------------


def test_fifo_created_script_reads_lines_and_fifo_removed_on_close(tmp_path):
    fifo = tmp_path / "notify.fifo"
    out = tmp_path / "fifo.out"
    reader = _script(
        tmp_path,
        "reader.sh",
        f'echo "started $1" > {out}\nwhile read -r line; do echo "$line" >> {out}; done < "$1"\n',
    )

    async def main():
        nt = notify.Notifier(asyncio.get_running_loop(), _runner(), str(fifo), reader)
        await nt.start()
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
        s = notify.Scripts(priority_changes=True)
        nt.instance_state("VI_1", s, "BACKUP", 100)
        nt.instance_state("VI_1", s, "MASTER", 100)
        nt.instance_event("VI_1", s, "MASTER_PRIORITY", 80)
        nt.instance_event("VI_1", notify.NO_SCRIPTS, "BACKUP_PRIORITY", 70)  # not asked for: no line
        nt.instance_event("VI_1", s, "MASTER_RX_LOWER_PRI", 80)
        nt.group_state("VG_1", s, "MASTER")
        nt.instance_state("VI_1", s, "STOP", 80)
        await wait_for_async(lambda: len(_lines(out)) >= 7, 5, 0.01)
        await nt.close()

    uvloop.run(main())
    assert _lines(out) == [
        f"started {fifo}",
        'INSTANCE "VI_1" BACKUP 100',
        'INSTANCE "VI_1" MASTER 100',
        'INSTANCE "VI_1" MASTER_PRIORITY 80',
        'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 80',
        'GROUP "VG_1" MASTER 0',
        'INSTANCE "VI_1" STOP 80',
    ]
    assert not fifo.exists()  # we made it, we remove it


def test_existing_fifo_is_kept_and_a_full_fifo_never_blocks(tmp_path):
    fifo = tmp_path / "given.fifo"
    os.mkfifo(fifo)

    async def main():
        nt = notify.Notifier(asyncio.get_running_loop(), None, str(fifo))
        await nt.start()
        t0 = time.perf_counter()
        for i in range(5000):  # ~150 KiB: more than the 64 KiB pipe buffer, and nobody reads
            nt.instance_state(f"VI_{i}", notify.NO_SCRIPTS, "MASTER", 100)
        took = time.perf_counter() - t0
        pending = len(nt._fifos[0].pending)
        # A reader arrives: everything, in order, is delivered.
        rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        got = bytearray()

        def read_some():
            try:
                got.extend(os.read(rfd, 1 << 16))
            except BlockingIOError:
                pass
            return got.count(b"\n") >= 5000

        await wait_for_async(read_some, 5, 0.01)
        os.close(rfd)
        await nt.close()
        return took, pending, bytes(got)

    took, pending, got = uvloop.run(main())
    assert took < 0.5
    assert pending > 0
    lines = got.decode().splitlines()
    assert lines[0] == 'INSTANCE "VI_0" MASTER 100' and lines[-1] == 'INSTANCE "VI_4999" MASTER 100'
    assert len(lines) == 5000
    assert fifo.exists()  # not ours to remove
