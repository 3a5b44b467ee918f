"""Run the fuzz harnesses for their budgets and report executions and coverage (`make fuzz`; docs/fuzzing.md).

    python fuzz/run.py [--scale F] [--jobs N] [--only NAME ...]

Each harness runs as `python fuzz/fuzz_NAME.py -runs=BUDGET ... WORKDIR fuzz/corpus/NAME`: new inputs go to
the working corpus build/fuzz/corpus/NAME (kept between runs, never committed), the seeds are read from the
repository. With the fuzz build in place (FASTVRRP_FUZZ=1, see setup.py) the harness runs with LD_PRELOAD of
a libFuzzer + AddressSanitizer runtime made here from clang's compiler-rt archives (build/fuzz/), so the
compiled extensions report coverage and memory errors; with the normal build it runs on atheris' own
libFuzzer and only the Python code is covered.

A harness that stops early (crash, unexpected exception, broken invariant, timeout, out of memory) fails
the run; its input is saved as build/fuzz/artifacts/NAME-crash-* (or -timeout-*, -oom-*).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "fuzz")
CLANG_RT = "/usr/lib/llvm-14/lib/clang/*/lib/linux"

# name -> (executions, libFuzzer -timeout seconds per input, -max_len, imports compiled code). Chosen so that
# `make fuzz` (two harnesses at a time on 2 cores) takes about 27 minutes; docs/fuzzing.md has the rates.
# Harnesses of pure-Python parsers run without the ASan preload (it would only slow Python's allocations
# down, about 20 times); those that reach the compiled code run with it in the fuzz build.
BUDGETS = {  # (longest first: two at a time, the short ones fill in at the end)
    "config": (200_000, 20, 4096, False),
    "wire": (10_000_000, 10, 4200, True),
    "engine": (2_000_000, 10, 4096, True),
    "dns": (5_000_000, 10, 1024, False),
    "pcap": (500_000, 10, 4096, True),
    "netlink": (2_000_000, 10, 4096, False),
    "http": (300_000, 10, 4096, True),  # (health.checks imports _probe)
    "proc": (4_000_000, 10, 1024, False),
}
STATS = re.compile(r"^#(\d+)\s+(?:DONE|pulse|NEW|REDUCE|INITED)\s+(?:cov: (\d+) ft: (\d+))?")


def preload() -> str | None:
    """The libFuzzer + ASan runtime to LD_PRELOAD for the fuzz build (made once), None without clang's."""
    out = os.path.join(BUILD, "asan_with_fuzzer.so")
    if os.path.exists(out):
        return out
    dirs = sorted(glob.glob(CLANG_RT))
    if not dirs:
        return None
    rt = dirs[-1]
    os.makedirs(BUILD, exist_ok=True)
    # As atheris' own setup does (native_extension_fuzzing.md, "Option A"): libFuzzer and ASan in one
    # shared object, without ASan's preinit (a preinit array is not allowed in a shared object).
    san = os.path.join(BUILD, "asan.a")
    shutil.copy(os.path.join(rt, "libclang_rt.asan-x86_64.a"), san)
    subprocess.run(["ar", "d", san, "asan_preinit.cpp.o", "asan_preinit.cc.o"], check=True)
    fuzzer = os.path.join(rt, "libclang_rt.fuzzer_no_main-x86_64.a")
    subprocess.run(
        [os.environ.get("CXX", "clang++-14"), "-Wl,--whole-archive", fuzzer, san, "-Wl,--no-whole-archive",
         "-lpthread", "-ldl", "-shared", "-o", out],
        check=True,
    )  # fmt: skip
    os.unlink(san)
    return out


def fuzz_build() -> bool:
    """Whether the extensions in place are the fuzz build (they call libFuzzer's coverage hooks)."""
    so = glob.glob(os.path.join(ROOT, "fastvrrp", "_wire.*.so"))
    if not so:
        return False
    with open(so[0], "rb") as f:
        return b"__sanitizer_cov_8bit_counters_init" in f.read()


def command(name: str, runs: int, timeout: int, max_len: int, extra: list[str]) -> list[str]:
    work = os.path.join(BUILD, "corpus", name)
    words = os.path.join(ROOT, "fuzz", f"{name}.dict")
    if os.path.exists(words):
        extra = [f"-dict={words}", *extra]
    arts = os.path.join(BUILD, "artifacts")
    os.makedirs(work, exist_ok=True)
    os.makedirs(arts, exist_ok=True)
    return [
        sys.executable, os.path.join(ROOT, "fuzz", f"fuzz_{name}.py"), f"-runs={runs}", f"-timeout={timeout}",
        f"-max_len={max_len}", "-rss_limit_mb=2560", "-print_final_stats=1",
        f"-artifact_prefix={arts}/{name}-", *extra, work, os.path.join(ROOT, "fuzz", "corpus", name),
    ]  # fmt: skip


def summary(log: str) -> tuple[int, int, int]:
    execs = cov = ft = 0
    for line in log.splitlines():
        m = STATS.match(line)
        if m:
            execs = int(m.group(1))
            if m.group(2):
                cov, ft = int(m.group(2)), int(m.group(3))
        elif line.startswith("stat::number_of_executed_units:"):
            execs = int(line.split(":")[-1])
    return execs, cov, ft


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every budget (e.g. 0.01 to try it)")
    ap.add_argument("--jobs", type=int, default=2, help="harnesses run at the same time")
    ap.add_argument("--only", nargs="*", default=list(BUDGETS), choices=list(BUDGETS))
    args = ap.parse_args()
    plain = dict(os.environ)
    plain.pop("LD_PRELOAD", None)
    plain["TMPDIR"] = os.path.join(BUILD, "tmp")  # (the config harness's files)
    os.makedirs(plain["TMPDIR"], exist_ok=True)
    asan = dict(plain)
    native = fuzz_build()
    if native:
        lib = preload()
        if lib is None:
            print(
                "fuzz build in place but clang's compiler-rt is missing: apt-get install libclang-rt-14-dev"
            )
            return 2
        asan["LD_PRELOAD"] = lib
        asan["ASAN_OPTIONS"] = "detect_leaks=0:allocator_may_return_null=1:quarantine_size_mb=32"
    print(f"fuzz: {'fuzz build (compiled code covered, ASan)' if native else 'normal build (Python only)'}")
    pending = list(args.only)
    running: dict[str, tuple[subprocess.Popen, float, str]] = {}
    results: dict[str, tuple[int, int, int, int, float]] = {}
    os.makedirs(os.path.join(BUILD, "logs"), exist_ok=True)
    while pending or running:
        while pending and len(running) < args.jobs:
            name = pending.pop(0)
            runs, timeout, max_len, compiled = BUDGETS[name]
            env = asan if compiled else plain
            logp = os.path.join(BUILD, "logs", f"{name}.log")
            cmd = command(name, max(1, int(runs * args.scale)), timeout, max_len, [])
            with open(logp, "w") as log:
                p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=BUILD)
            running[name] = (p, time.monotonic(), logp)
        time.sleep(0.5)
        for name, (p, t0, logp) in list(running.items()):
            if p.poll() is None:
                continue
            del running[name]
            with open(logp, errors="replace") as f:
                log = f.read()
            execs, cov, ft = summary(log)
            results[name] = (p.returncode, execs, cov, ft, time.monotonic() - t0)
            verdict = "ok" if p.returncode == 0 else f"FAILED (exit {p.returncode}, see {logp})"
            secs = results[name][4]
            line = f"  {name:8} {execs:>11,} execs  cov {cov:>5}  ft {ft:>6}  {secs:7.0f} s  {verdict}"
            print(line, flush=True)
    failed = [n for n, r in results.items() if r[0] != 0]
    print(f"fuzz: {len(results) - len(failed)} of {len(results)} harnesses reached their budget" +
          (f"; failed: {', '.join(failed)}" if failed else ""))  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
