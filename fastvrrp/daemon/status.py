"""`fastvrrp status`: which box holds which address, and why, from the status file the daemon writes.

The daemon writes the file atomically (a temporary file in the same directory, then rename) on every
transition and every few seconds, so a reader never sees half a file. Schema (version 1):

    {
      "schema": 1, "version": "<fastvrrp version>", "pid": 1234, "hostname": "lb1",
      "written": <unix time, float>, "interval_s": 5,
      "instances": [
        {"name": "VI_1", "state": "MASTER", "since": <unix time>, "reason": "master down timer expired",
         "priority": 100, "base_priority": 100, "master": "192.0.2.1" | null,
         "vips": ["192.0.2.100/24"], "interface": "eth0", "family": 4, "vrid": 51, "vrrp_version": 3,
         "adverts_rx": 10, "adverts_tx": 3}
      ]
    }
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = 1
DEFAULT_PATH = "/run/fastvrrp/status.json"
DEFAULT_INTERVAL_S = 5
EXIT_OK, EXIT_MISSING, EXIT_STALE, EXIT_BAD = 0, 1, 2, 3


@dataclass(slots=True)
class InstanceStatus:
    name: str
    state: str  # INIT BACKUP MASTER FAULT
    since: float  # unix time of the last transition
    reason: str  # why the last transition happened (the core's StateChanged.reason)
    priority: int  # effective
    base_priority: int
    master: str | None  # the current master's address (ours while MASTER), None if unknown
    vips: list[str] = field(default_factory=list)
    interface: str = ""
    family: int = 4
    vrid: int = 0
    vrrp_version: int = 3
    adverts_rx: int = 0
    adverts_tx: int = 0


def snapshot(
    instances: Iterable[InstanceStatus],
    *,
    version: str = "",
    pid: int | None = None,
    interval_s: float = DEFAULT_INTERVAL_S,
    now: float | None = None,
) -> dict[str, Any]:
    """The whole document, ready for write_status()."""
    return {
        "schema": SCHEMA,
        "version": version,
        "pid": os.getpid() if pid is None else pid,
        "hostname": socket.gethostname(),
        "written": time.time() if now is None else now,
        "interval_s": interval_s,
        "instances": [asdict(i) for i in instances],
    }


def write_status(path: str, snap: Mapping[str, Any]) -> None:
    """Write atomically: a temporary file beside `path`, fsync-free (tmpfs /run), then rename over it."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".status.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(snap, f, indent=1, sort_keys=False)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class StatusBook:
    """What the daemon keeps between writes: since/reason per instance, and when the next write is due."""

    def __init__(self, path: str = DEFAULT_PATH, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.path = path
        self.interval_s = interval_s
        self.since: dict[str, tuple[float, str]] = {}
        self.next_write = 0.0  # monotonic
        self.dirty = True
        self.errors = 0

    def transition(self, name: str, reason: str, wall: float | None = None) -> None:
        self.since[name] = (time.time() if wall is None else wall, reason)
        self.dirty = True  # written at the next write() call, which the daemon makes right after

    def forget(self, name: str) -> None:
        self.since.pop(name, None)
        self.dirty = True

    def due(self, mono: float | None = None) -> bool:
        return self.dirty or (time.monotonic() if mono is None else mono) >= self.next_write

    def write(self, instances: Iterable[InstanceStatus], version: str = "") -> bool:
        try:
            write_status(self.path, snapshot(instances, version=version, interval_s=self.interval_s))
        except OSError:
            self.errors += 1
            return False
        finally:
            self.dirty = False
            self.next_write = time.monotonic() + self.interval_s
        return True


# --- the reader ---------------------------------------------------------------------------------------


def _pid_alive(pid: Any) -> bool | None:
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, not ours
    return True


def _ago(seconds: float) -> str:
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def table(doc: Mapping[str, Any], now: float) -> str:
    header = ("INSTANCE", "STATE", "PRIO", "VIPS", "MASTER", "SINCE", "WHY")
    rows = []
    for i in doc.get("instances", []):
        prio = str(i.get("priority", "?"))
        if i.get("base_priority") not in (None, i.get("priority")):
            prio += f"/{i['base_priority']}"
        since = i.get("since")
        rows.append(
            (
                str(i.get("name", "?")),
                str(i.get("state", "?")),
                prio,
                ",".join(i.get("vips") or []) or "-",
                i.get("master") or "-",
                _ago(now - since) if isinstance(since, (int, float)) else "?",
                str(i.get("reason") or "-"),
            )
        )
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header) - 1)]
    lines = []
    for r in [header, *rows]:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) + "  " + r[-1])
    return "\n".join(line.rstrip() for line in lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fastvrrp status", description="Show the state of a running fastvrrp.")
    p.add_argument(
        "-f",
        "--file",
        default=os.environ.get("FASTVRRP_STATUS", DEFAULT_PATH),
        help=f"status file the daemon writes (default {DEFAULT_PATH}, or $FASTVRRP_STATUS)",
    )
    p.add_argument("--json", action="store_true", help="print the status document as JSON")
    p.add_argument(
        "--max-age",
        type=float,
        default=None,
        help="seconds after which the file counts as stale (default: 3 x the daemon's write interval)",
    )
    args = p.parse_args(list(argv or []))
    try:
        with open(args.file) as f:
            doc = json.load(f)
    except FileNotFoundError:
        print(f"fastvrrp status: {args.file} does not exist: is fastvrrp running (with this status file)?",
              file=sys.stderr)  # fmt: skip
        return EXIT_MISSING
    except (OSError, ValueError) as exc:
        print(f"fastvrrp status: cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_BAD
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        print(f"fastvrrp status: {args.file}: not a fastvrrp status file (schema {SCHEMA})", file=sys.stderr)
        return EXIT_BAD
    now = time.time()
    written = doc.get("written")
    age = now - written if isinstance(written, (int, float)) else float("inf")
    max_age = (
        args.max_age if args.max_age is not None else 3 * float(doc.get("interval_s") or DEFAULT_INTERVAL_S)
    )
    alive = _pid_alive(doc.get("pid"))
    problem = None
    if alive is False:
        problem = (
            f"fastvrrp (pid {doc.get('pid')}) is not running; this is what it last wrote {_ago(age)} ago"
        )
    elif age > max_age:
        problem = (
            f"the status file is stale: written {_ago(age)} ago (pid {doc.get('pid')} alive but not writing?)"
        )
    if args.json:
        out = dict(doc)
        out["stale"] = problem is not None
        if problem:
            out["problem"] = problem
        print(json.dumps(out, indent=1))
    else:
        head = f"fastvrrp {doc.get('version') or ''} on {doc.get('hostname', '?')}, pid {doc.get('pid')}"
        print(head.replace("  ", " ") + f", written {_ago(age)} ago")
        print(table(doc, now), end="")
    if problem:
        print(f"fastvrrp status: WARNING: {problem}", file=sys.stderr)
        return EXIT_STALE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
