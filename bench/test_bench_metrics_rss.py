"""RSS of a scraped master (issue 11 item 4: at most 40 MiB with 1,000 instances, flat): a fastvrrp master of
1,000 VRRPv3 instances at 10 ms on the density lab (fastvrrp/lab/density.py) with `--metrics`, scraped
SCRAPES times a little more than the renderer's 1 s cache apart (each scrape a new rendering), gzip-encoded
as Prometheus asks, every third one plain. RSS (VmRSS) is read before the first scrape and after each one;
the mappings that hold it (smaps: the brk heap, anonymous mappings, files) are reported before and after.

    python -m pytest -q -s bench/test_bench_metrics_rss.py
    # 4,000 instances: FASTVRRP_RSS_INSTANCES=4000 FASTVRRP_RSS_INTERVAL_MS=100 before the same command

Fails when RSS after a scrape exceeds the issue's limit (LIMIT_MIB: 40 MiB with 1,000 instances, 64 MiB with
4,000), or grows more than 1 MiB from the 2nd scrape to the last.
"""

from __future__ import annotations

import os
import socket
import time
import zlib

import pytest

from bench.conftest import print_table
from fastvrrp.io.nsexec import call_in_netns
from fastvrrp.lab.density import METRICS_ADDR, DensityLan, byte_compile, start_and_wait, wait_all_state
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import rss_kib

pytestmark = [pytest.mark.netns]

COUNT = int(os.environ.get("FASTVRRP_RSS_INSTANCES", "1000"))
A_MS = int(os.environ.get("FASTVRRP_RSS_INTERVAL_MS", "10"))
SCRAPES = int(os.environ.get("FASTVRRP_RSS_SCRAPES", "20"))
LIMIT_MIB = {1000: 40.0, 4000: 64.0}  # issue 11: at most 40 MiB with 1,000 instances, 64 MiB with 4,000
GROWTH_KIB = 1024  # from the 2nd scrape to the last
SETTLE_S = 8.0  # after every instance is MASTER, before the first RSS reading


def scrape(url_addr: str, gzip: bool) -> bytes:
    """One GET /metrics (what Prometheus sends: Accept-Encoding gzip when `gzip`); the decoded body."""
    host, port = url_addr.rsplit(":", 1)
    enc = "Accept-Encoding: gzip\r\n" if gzip else ""
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"GET /metrics HTTP/1.1\r\nHost: {url_addr}\r\n{enc}Connection: close\r\n\r\n".encode())
        chunks = []
        while got := s.recv(1 << 16):
            chunks.append(got)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"scrape answered {head[:60]!r}")
    return zlib.decompress(body, 31) if b"Content-Encoding: gzip" in head else body


def smaps(pid: int) -> dict[str, int]:
    """Rss (KiB) of the process's mappings by kind: the brk heap, anonymous and file mappings, stacks."""
    out = {"heap": 0, "anon": 0, "file": 0, "stack": 0}
    kind = "anon"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):  # a mapping's header line
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
                kind = (
                    "heap"
                    if name == "[heap]"
                    else "stack"
                    if name.startswith("[stack")
                    else "file"
                    if name.startswith("/")
                    else "anon"
                )
            elif first == "Rss:":
                out[kind] += int(line.split()[1])
    return out


def test_scraped_master_rss(lab, request, benchmark):
    byte_compile()
    net = DensityLan(lab, instances=COUNT, routers=1)
    boot = max(60.0, COUNT / 20)
    r1 = net.router(1, "fastvrrp", net.instances(200, A_MS))
    r1.extra_args = ["--metrics", METRICS_ADDR]  # the loopback of r1's namespace
    up = start_and_wait(r1, timeout=boot)
    wait_all_state(up.watch, "MASTER", timeout=boot)
    (pid,) = r1.pids()
    base = up.watch.poll()
    settled = time.monotonic()
    # Past the second burst of gratuitous ARPs 5 s after MASTER (garp_master_delay): what that burst
    # allocates is the daemon's own, not the scrapes'.
    wait_for(lambda: time.monotonic() - settled >= SETTLE_S, timeout=SETTLE_S + 10, what="settling")
    before, maps_before = rss_kib([pid]), smaps(pid)
    after: list[int] = []
    size = 0

    def scrapes() -> None:
        nonlocal size
        for i in range(SCRAPES):
            body = call_in_netns(r1.ns, scrape, METRICS_ADDR, i % 3 != 2)
            size = len(body)
            if body.count(b"fastvrrp_instance_state{") != COUNT:
                raise AssertionError(f"scrape {i}: not {COUNT} instances")
            after.append(rss_kib([pid]))
            t = time.monotonic()
            wait_for(
                lambda t=t: time.monotonic() - t >= 1.2, timeout=10, interval=0.05, what="the cache to age"
            )

    # One round (a benchmark, so that `make bench` runs it); the figures that matter are the RSS readings.
    benchmark.pedantic(scrapes, rounds=1, iterations=1)
    benchmark.extra_info.update(before_kib=before, after_kib=after)
    maps_after = smaps(pid)
    transitions = up.watch.poll() - base
    mib = [f"{k / 1024:.1f}" for k in after]
    lines = [
        f"RSS of a master of {COUNT} x {A_MS} ms with --metrics, {SCRAPES} scrapes of {size // 1024} KiB: "
        f"before {before / 1024:.1f} MiB, after each scrape {' '.join(mib)} MiB",
        "  smaps Rss KiB before: " + ", ".join(f"{k} {v}" for k, v in maps_before.items()),
        "  smaps Rss KiB after:  " + ", ".join(f"{k} {v}" for k, v in maps_after.items()),
        f"  transitions after start: {transitions}",
    ]
    print_table(request, lines)
    grown = after[-1] - after[1]
    assert grown <= GROWTH_KIB, f"RSS grew {grown} KiB from the 2nd scrape to the last"
    limit = LIMIT_MIB.get(COUNT)
    assert limit is None or max(after) <= limit * 1024, f"RSS {max(after) / 1024:.1f} MiB (limit {limit} MiB)"
