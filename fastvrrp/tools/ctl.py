"""`fastvrrp ctl`: the client of the daemon's control socket (its protocol: fastvrrp/daemon/control.py).

fastvrrp ctl [--control PATH] status [--json]
fastvrrp ctl [--control PATH] drain NAME...
fastvrrp ctl [--control PATH] undrain NAME...
fastvrrp ctl [--control PATH] priority NAME DELTA
fastvrrp ctl [--control PATH] reset NAME...
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from fastvrrp.daemon.control import DEFAULT_PATH, MAX_OFFSET

EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_DENIED, EXIT_USAGE = 0, 1, 2, 3, 64
TIMEOUT_S = 30.0

EPILOG = f"""\
NAME is a vrrp_instance, a vrrp_sync_group (all its members) or `all`. drain, undrain and reset on a member
of a sync group act on the whole group (a group changes state together); priority acts on the instances
named (a group name: each member).

drain: a master hands over at once (a priority-0 advert, as on shutdown; its addresses go) and every drained
instance stays BACKUP at priority 1 until undrained; it still takes over as a last resort when nobody else
advertises. An address owner (priority 255) is drained the same way. undrain: the tracked priority comes back
and the instance preempts as usual. priority NAME DELTA: the priority on the wire is the tracked one plus
DELTA (-{MAX_OFFSET}..{MAX_OFFSET}, not cumulative: 0 clears it), kept within 1..254; an owner stays at 255.
reset: undrain and clear the offset. Changes last until the daemon restarts (they survive SIGHUP) and are
logged with the caller's pid, uid and process name.

exit status: {EXIT_OK} done; {EXIT_REFUSED} the daemon refused the request (unknown name, bad value); \
{EXIT_UNREACHABLE} no daemon
answers on the socket (not running, wrong --control, no reply); {EXIT_DENIED} permission denied (the socket is
root's); {EXIT_USAGE} usage error."""


class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # type: ignore[override]
        raise _Usage(f"{self.prog}: {message}")


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="fastvrrp ctl",
        description="Drain, undrain and shift the priority of the instances of a running fastvrrp.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--control",
        metavar="PATH",
        default=os.environ.get("FASTVRRP_CONTROL", DEFAULT_PATH),
        help=f"the daemon's control socket (default {DEFAULT_PATH}, or $FASTVRRP_CONTROL)",
    )
    sub = p.add_subparsers(dest="op", required=True, metavar="COMMAND", parser_class=_Parser)
    st = sub.add_parser("status", help="every instance: state, priority, offset, drained")
    st.add_argument("--json", action="store_true", help="print the daemon's reply as JSON")
    for op, what in (("drain", "hand over and stay BACKUP at priority 1"), ("undrain", "end a drain"),
                     ("reset", "undrain and clear the priority offset")):  # fmt: skip
        sp = sub.add_parser(op, help=what)
        sp.add_argument("names", nargs="+", metavar="NAME")
        sp.add_argument("--json", action="store_true", help="print the daemon's reply as JSON")
    pr = sub.add_parser("priority", help="set the offset added to the tracked priority")
    pr.add_argument("names", nargs=1, metavar="NAME")
    pr.add_argument("delta", type=int, metavar="DELTA", help="e.g. -50, +20; 0 clears the offset")
    pr.add_argument("--json", action="store_true", help="print the daemon's reply as JSON")
    return p


def request(path: str, req: Mapping[str, Any], timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """Send one request and return the reply; OSError when the socket cannot be used, ValueError when the
    reply is not one."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        try:
            s.sendall(json.dumps(req).encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon answered (a refusal) and closed before reading: its answer is still there
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            buf += chunk
    if not buf:
        raise ValueError("the daemon closed the connection without a reply")
    reply = json.loads(buf)
    if not isinstance(reply, dict) or "ok" not in reply:
        raise ValueError(f"not a control reply: {buf[:200]!r}")
    return reply


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    header = ("INSTANCE", "STATE", "PRIO", "TRACKED", "BASE", "OFFSET", "DRAINED", "GROUP", "MASTER")
    lines = [header]
    for r in rows:
        off = int(r.get("offset") or 0)
        lines.append(
            (
                str(r.get("name")),
                str(r.get("state")),
                str(r.get("priority")),
                str(r.get("tracked_priority")),
                str(r.get("base_priority")) + (" owner" if r.get("owner") else ""),
                f"{off:+d}" if off else "-",
                "yes" if r.get("drained") else "-",
                str(r.get("sync_group") or "-"),
                str(r.get("master") or "-"),
            )
        )
    widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
    return "".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n" for line in lines
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(list(argv or []))
    except _Usage as e:
        print(e, file=sys.stderr)
        return EXIT_USAGE
    req: dict[str, Any] = {"op": args.op}
    if args.op != "status":
        req["names"] = args.names
    if args.op == "priority":
        req["delta"] = args.delta
    try:
        reply = request(args.control, req)
    except PermissionError:
        print(
            f"fastvrrp ctl: permission denied on {args.control}: the control socket is root's",
            file=sys.stderr,
        )
        return EXIT_DENIED
    except (FileNotFoundError, ConnectionRefusedError) as e:
        print(f"fastvrrp ctl: no fastvrrp answers on {args.control} ({e.strerror}): is it running, "
              "with this --control PATH?", file=sys.stderr)  # fmt: skip
        return EXIT_UNREACHABLE
    except (OSError, ValueError) as e:
        why = (e.strerror if isinstance(e, OSError) and e.strerror else str(e)) or type(e).__name__
        print(f"fastvrrp ctl: {args.control}: {why}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if args.json:
        print(json.dumps(reply, indent=1))
    if not reply.get("ok"):
        err = str(reply.get("error"))
        print(f"fastvrrp ctl: {err}", file=sys.stderr)
        return EXIT_DENIED if err.startswith("permission denied") else EXIT_REFUSED
    if not args.json:
        print(table(reply.get("instances") or []), end="")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
