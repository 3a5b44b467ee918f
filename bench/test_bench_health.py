"""Health checks at scale: CPU seconds per second of wall time for
- 1,000 vrrp_script trackers at 1 s running /bin/true (through ScriptRunner, 32 at once), and
- 1,000 in-process TCP checks at 1 s against a local listener,
each measured over ~10 s, with the peak number of child processes (sampled from /proc every 10 ms).
Numbers go to benchmark.extra_info and are printed."""

from __future__ import annotations

import asyncio
import os
import resource
import time

import pytest
import uvloop

from fastvrrp.health.checks import CheckSpec, CheckTracker, TcpCheck
from fastvrrp.health.runner import ScriptRunner
from fastvrrp.health.trackers import ScriptTracker

N = 1000
SECONDS = float(os.environ.get("FV_BENCH_HEALTH_S", "10"))


def _children() -> int:
    n = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                n += len(f.read().split())
        except OSError:
            pass
    return n


async def _measure(make, warmup: float = 2.0):
    peak = 0
    stop = False

    async def sampler():
        nonlocal peak
        while not stop:
            peak = max(peak, _children())
            await asyncio.sleep(0.01)

    trackers = make()
    for t in trackers:
        t.start()
    await asyncio.sleep(warmup)  # let the first round (all at once) settle
    samp = asyncio.get_running_loop().create_task(sampler())
    r0s, r0c, w0 = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
        time.monotonic(),
    )
    runs0 = sum(t.runs for t in trackers)
    await asyncio.sleep(SECONDS)
    r1s, r1c, w1 = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
        time.monotonic(),
    )
    runs1 = sum(t.runs for t in trackers)
    stop = True
    await samp
    for t in trackers:
        t.stop()
    wall = w1 - w0
    return {
        "self_cpu_per_s": round((r1s.ru_utime + r1s.ru_stime - r0s.ru_utime - r0s.ru_stime) / wall, 3),
        "children_cpu_per_s": round((r1c.ru_utime + r1c.ru_stime - r0c.ru_utime - r0c.ru_stime) / wall, 3),
        "runs_per_s": round((runs1 - runs0) / wall, 1),
        "peak_children": peak,
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="root")
def test_bench_1000_script_trackers(benchmark):
    async def main():
        runner = ScriptRunner(max_concurrent=32)

        def make():
            return [
                ScriptTracker(f"s{i}", "/bin/true", runner, lambda n, s: None, interval_ms=1000)
                for i in range(N)
            ]

        out = await _measure(make)
        out["peak_running"] = runner.peak_running
        out["timeouts"] = runner.timeouts
        return out

    res = benchmark.pedantic(lambda: uvloop.run(main()), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    print("\n1000 script trackers (/bin/true @1s):", res)
    assert res["peak_children"] <= 32 + 1 and res["peak_running"] <= 32
    assert res["runs_per_s"] > 0.8 * N  # keeping up with the schedule


def test_bench_1000_tcp_checks(benchmark, own_loopback):
    async def main():
        srv = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, backlog=4096)
        port = srv.sockets[0].getsockname()[1]

        def make():
            return [
                CheckTracker(
                    CheckSpec(f"t{i}", TcpCheck("127.0.0.1", port), interval_ms=1000, timeout_ms=900),
                    lambda n, s: None,
                )
                for i in range(N)
            ]

        out = await _measure(make)
        srv.close()
        return out

    res = benchmark.pedantic(lambda: uvloop.run(main()), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    print("\n1000 TCP checks @1s (server in the same process):", res)
    assert res["peak_children"] == 0
    assert res["runs_per_s"] > 0.9 * N
