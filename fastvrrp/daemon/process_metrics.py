"""The process_* families of the Prometheus exposition, read from /proc/self at scrape time.

Names, types, help texts and units are those every Prometheus client library uses (prometheus_client's
ProcessCollector among them), so dashboards and alerts built on them keep working; they are written here
so that a run serving metrics does not import a client library for six numbers (docs/costs.md#imports).
On a system without /proc (or a field it cannot read) the families it cannot fill are left out.
"""

from __future__ import annotations

import os
from typing import Any

_PROC = "/proc/self"


def _boot_time() -> float | None:
    """The kernel's boot time in unix seconds (`btime` of /proc/stat)."""
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_BTIME = _boot_time()


def _family(name: str, kind: str, doc: str, value: float | int) -> str:
    text = repr(float(value)) if isinstance(value, float) else str(value)
    return f"# HELP {name} {doc}\n# TYPE {name} {kind}\n{name} {text}\n"


def process_text(proc: str = _PROC) -> str:
    """The process families of the process `proc` names (a /proc/<pid> directory), in the order the
    client libraries write them: virtual and resident memory, start time, CPU, open and maximum fds."""
    out: list[str] = []
    try:
        with open(os.path.join(proc, "stat"), "rb") as f:
            # The command name (field 2) may hold spaces and parentheses: count from the last ')'.
            fields = f.read().rpartition(b")")[2].split()
        # fields[0] is field 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24 (man 5 proc).
        utime, stime, start, vsize, rss = (int(fields[i]) for i in (11, 12, 19, 20, 21))
    except (OSError, ValueError, IndexError):
        pass
    else:
        out.append(_family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", vsize))
        out.append(
            _family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", rss * _PAGE)
        )
        if _BTIME is not None:
            out.append(
                _family(
                    "process_start_time_seconds",
                    "gauge",
                    "Start time of the process since unix epoch in seconds.",
                    _BTIME + start / _TICKS,
                )
            )
        out.append(
            _family(
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                (utime + stime) / _TICKS,
            )
        )
    try:
        open_fds = len(os.listdir(os.path.join(proc, "fd")))
        max_fds: int | None = None
        with open(os.path.join(proc, "limits"), "rb") as f:
            for line in f:
                if line.startswith(b"Max open files"):
                    soft = line[len(b"Max open files") :].split()[0]
                    max_fds = int(soft) if soft.isdigit() else None  # "unlimited": no series
                    break
    except (OSError, ValueError, IndexError):
        return "".join(out)
    out.append(_family("process_open_fds", "gauge", "Number of open file descriptors.", open_fds))
    if max_fds is not None:
        out.append(_family("process_max_fds", "gauge", "Maximum number of open file descriptors.", max_fds))
    return "".join(out)


# --- giving the heap back (docs/costs.md#memory) ----------------------------------------------------------
# A scrape of 1,000 instances allocates ~4 MB of text for a moment. glibc's malloc would keep most of it:
# freeing a block above the mmap threshold raises the threshold to that block's size (up to 32 MiB), so later
# big blocks come from the brk heap, which shrinks only from its top and only past a trim threshold raised
# with it; a few survivors (the loop's own allocations made between two chunks of the scrape) then pin the
# pages below them. Fixed thresholds (which also turn off that adjustment) and a malloc_trim(0) after a
# scrape (which returns the whole free pages inside the heaps too) bring RSS back to where it was.
MMAP_THRESHOLD = (
    128 * 1024
)  # glibc's default, held fixed: blocks this big are mapped, and unmapped when freed
TRIM_THRESHOLD = 128 * 1024
_M_TRIM_THRESHOLD = -1  # malloc.h
_M_MMAP_THRESHOLD = -3


def _glibc() -> Any:
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except (OSError, AttributeError):  # not glibc (musl has neither): nothing to tune
        return None


_LIBC = _glibc()


def fix_malloc_thresholds() -> bool:
    """Hold glibc's mmap and trim thresholds at MMAP_THRESHOLD / TRIM_THRESHOLD (process-wide)."""
    if _LIBC is None:
        return False
    return bool(
        _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _LIBC.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def trim_heap() -> bool:
    """Return the free pages of every malloc arena to the kernel (glibc's malloc_trim(0)); True when some
    memory was released. ctypes releases the GIL for the call: the loop runs meanwhile."""
    return bool(_LIBC.malloc_trim(0)) if _LIBC is not None else False
