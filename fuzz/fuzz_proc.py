"""Fuzz the proc-connector parser (fastvrrp/io/proc_connector.py ProcConnector.parse: netlink messages
carrying cn_msg + proc_event, as the kernel's process-events connector sends them).

The connector is real (opening it needs CAP_NET_ADMIN, as for vrrp_track_process); it is closed straight
away: only parse() is fed.

The documented answer: parse() never raises; short or foreign messages are counted in `malformed` or
skipped; each event passed on names a process (pid > 0 for exec/exit/comm, and a parent for fork).
"""

from __future__ import annotations

from _harness import check, instrumented, main

with instrumented():
    from fastvrrp.io import proc_connector

WATCHED = {
    proc_connector.PROC_EVENT_FORK,
    proc_connector.PROC_EVENT_EXEC,
    proc_connector.PROC_EVENT_COMM,
    proc_connector.PROC_EVENT_EXIT,
}
EVENTS: list[tuple[int, int, int]] = []
PC = proc_connector.ProcConnector(lambda what, pid, parent: EVENTS.append((what, pid, parent)), lambda: None)
PC.close()


def one(data: bytes) -> None:
    EVENTS.clear()
    before = PC.events
    PC.parse(data)
    check(PC.events - before >= len(EVENTS), "more events passed on than parsed")
    for what, pid, parent in EVENTS:
        check(isinstance(pid, int) and isinstance(parent, int), "pid is not a number")
        check(what in WATCHED, f"event {what:#x} is not one the daemon acts on")


if __name__ == "__main__":
    main(one)
