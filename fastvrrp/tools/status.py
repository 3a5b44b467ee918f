"""`fastvrrp status`: which box holds which address, and why, read from the status file the daemon writes
(its format is fastvrrp/daemon/status.py's). Exits 0 when the file is fresh, 1 when it is missing, 2 when it
is stale or its writer is gone, 3 when it cannot be read or is not a status file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from fastvrrp.daemon.status import DEFAULT_INTERVAL_S, DEFAULT_PATH, SCHEMA

EXIT_OK, EXIT_MISSING, EXIT_STALE, EXIT_BAD = 0, 1, 2, 3


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
        if i.get("offset"):  # `fastvrrp ctl priority`: the operator's offset
            prio += f" {int(i['offset']):+d}"
        if i.get("drained"):  # `fastvrrp ctl drain`: priority 1 until undrained
            prio += " drained"
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
