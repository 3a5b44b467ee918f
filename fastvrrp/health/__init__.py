"""Health: trackers and checks that produce results and know nothing of VRRP.

The API the daemon wires up
---------------------------
Every tracker reports through one callback, `on_change(tracker_name: str, status: TrackerStatus)`, called
when its status changes (and when it first has one). `TrackerStatus(up, value, reason)`: `up` is
True/False, or None before a first result; `value` is the integer of a track_file; `reason` is words.

    runner = ScriptRunner(max_concurrent=32, script_security=gd.enable_script_security,
                          default_user=gd.script_user, default_group=gd.script_group)
    await runner.run(cmd, timeout_ms, user=None, group=None) -> ScriptResult   # also for notify scripts

    ScriptTracker.from_config(vrrp_script, runner, on_change).start()          # vrrp_script
    FileTracker.from_config(track_file, on_change).start()                     # track_file (inotify)
    pm = ProcessMonitor([ProcessTracker.from_config(p, on_change) for p in procs]); pm.start()
    it = InterfaceTracker(ifnames, on_change)     # feed it: LinkMonitor(loop, on_link=it.push, ...)
    CheckTracker(CheckSpec(...), on_change).start()                            # vrrp_check (TCP/HTTP/DNS)
    ... .stop() on each when done (pm.stop() for processes).

All of them run on the running asyncio (uvloop) loop; start() must be called from inside it.

The daemon turns these statuses into a VRRP priority with `fastvrrp.core.priority` (resolve_refs,
effective_priority, tracked_from): the weights, the clamp and FAULT are protocol rules and live in the core.
Kinds are "interface", "script", "file", "process", "check". Names are per kind; on_change gives the
tracker's own name (for InterfaceTracker: the interface name), so the daemon keys statuses by
(kind, name).

Pure modules (no asyncio, socket or clock): status.py, dnswire.py, spec.py. The rest does I/O; the kernel
plumbing it uses (inotify, the proc connector, netlink) lives in fastvrrp/io/.
"""

from .status import RiseFall, TrackerStatus, parse_track_file_value

__all__ = [
    "RiseFall",
    "TrackerStatus",
    "parse_track_file_value",
]
