"""Every TCP check of an event loop on one scheduler: probes due together start together, one poll() learns
how they ended, one timer wakes the loop.

A TCP_CHECK probe is a non-blocking connect; the kernel's handshake and the final RST are the part no code
can save. Run one coroutine per probe (asyncio.timeout + loop.sock_connect + asyncio.sleep) and each probe
also costs a Task, two Futures, two timer handles, an epoll registration and its removal, and a loop wake-up
of its own: about twice the kernel's share. Here instead:

- the checks wait in one heap ordered by due time; a tick starts every probe due before the next tick
  (`tick_ms`, 10 ms by default), so a thousand checks at 1 s mean a hundred wake-ups a second, not two
  thousand;
- socket + SO_LINGER 0 + bind + connect, the poll() and SO_ERROR, and close happen in the compiled
  fastvrrp._probe, with no socket object and no epoll registration: the connects in flight are polled
  together, once right after they start (on a LAN or loopback most handshakes are already done by then) and
  then once per tick until each ends or passes its deadline;
- one timer handle for the whole group, moved only when the earliest thing to do moves.

Schedule, as CheckTracker always had it: fixed rate (the n-th probe is due at first + n * interval), a probe
that outlives its interval delays the next one to its own end (no overlap), each probe fails after
`timeout_ms` (to the tick: it ends within one tick after its deadline). A probe may start
up to one tick before it is due; the schedule itself does not drift. Results go to `on_result(ok, why)` with
the reasons of fastvrrp.health.checks (refused, reset, timeout, unreachable, error).

SO_LINGER 0 on every socket: closing sends an RST, so a thousand checks a second leave no TIME_WAIT behind.
"""

from __future__ import annotations

import asyncio
import errno
import heapq
import ipaddress
import logging
import os
import socket
import weakref
from collections.abc import Callable
from typing import Any

from fastvrrp import _probe

log = logging.getLogger("fastvrrp.health.tcpfast")

TICK_MS = 10

_REASON = {
    errno.ECONNREFUSED: "refused",
    errno.ECONNRESET: "reset",
    errno.EPIPE: "reset",
    errno.ECONNABORTED: "reset",
    errno.EHOSTUNREACH: "unreachable",
    errno.ENETUNREACH: "unreachable",
    errno.ETIMEDOUT: "timeout",
}
_WHY: dict[int, str] = {errno.ETIMEDOUT: "timeout"}  # errno -> the text reported (built once per errno)


def why_of(err: int) -> str:
    """The failure text for an errno: "<reason>: <strerror>" ("timeout" alone, as the old probe said)."""
    why = _WHY.get(err)
    if why is None:
        why = f"{_REASON.get(err, 'error')}: {os.strerror(err)}"
        _WHY[err] = why
    return why


def _sockaddr(ip: Any, port: int) -> tuple[int, bytes]:
    addr = ipaddress.ip_address(str(ip))
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    return family, _probe.sockaddr_bytes(family, addr.packed, port)


class TcpProbe:
    """One check's probe target and schedule, as the group sees it."""

    __slots__ = (
        "family",
        "dest",
        "bind",
        "interval_s",
        "timeout_s",
        "on_result",
        "due",
        "active",
        "in_flight",
        "seq",
        "__weakref__",
    )

    def __init__(
        self,
        connect_ip: Any,
        connect_port: int,
        bind_ip: Any,
        interval_ms: int | None,
        timeout_ms: int,
        on_result: Callable[[bool, str], None],
    ) -> None:
        self.family, self.dest = _sockaddr(connect_ip, connect_port)
        # A bind_ip of the other family is not refused here: bind() fails with EINVAL at every probe, and
        # each such probe counts as a failure ("error: Invalid argument"), visible in the check's counters.
        self.bind = None if bind_ip is None else _sockaddr(bind_ip, 0)[1]
        self.interval_s = None if interval_ms is None else interval_ms / 1000
        self.timeout_s = timeout_ms / 1000
        self.on_result = on_result
        self.due = 0.0
        self.active = False
        self.in_flight = False
        self.seq = 0  # of its live heap entry (an entry with another seq is stale: skipped)


class TcpProbeGroup:
    """The scheduler of every TCP probe on one loop (`for_loop(loop)`), or a private one (tests)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tick_ms: int = TICK_MS) -> None:
        self.loop = loop
        self.tick_s = tick_ms / 1000
        self.prober = _probe.Prober()
        self._heap: list[tuple[float, int, TcpProbe]] = []
        self._seq = 0
        self._handle: asyncio.Handle | None = None
        self._at = 0.0  # when _handle fires
        self.ticks = 0  # wake-ups
        self.started = 0  # probes started
        self.early = 0  # probes that ended in the poll right after their start
        self._ticking = False

    _groups: weakref.WeakKeyDictionary[Any, TcpProbeGroup] = weakref.WeakKeyDictionary()

    @classmethod
    def for_loop(cls, loop: asyncio.AbstractEventLoop | None = None) -> TcpProbeGroup:
        loop = loop or asyncio.get_running_loop()
        g = cls._groups.get(loop)
        if g is None:
            g = cls._groups[loop] = cls(loop)
        return g

    # --- checks come and go ------------------------------------------------------------------------------

    def add(self, p: TcpProbe, first_delay_s: float = 0.0) -> None:
        """Run p every p.interval_s from first_delay_s on (once, if interval_s is None)."""
        p.active = True
        self._push(p, self.loop.time() + max(0.0, first_delay_s))

    def remove(self, p: TcpProbe) -> None:
        """No more probes for p; one in flight is abandoned (its socket closed) and reports nothing."""
        p.active = False
        p.seq = 0  # its heap entry is stale now: dropped when it comes up
        if p.in_flight:
            self.prober.cancel(p)
            p.in_flight = False

    def probe_once(self, p: TcpProbe) -> None:
        """Start one probe of p now (interval_s None: not rescheduled); on_result gets the result."""
        p.active = True
        p.seq = 0
        p.due = self.loop.time()
        self._start(p, p.due)
        if not self._ticking:
            self._arm()

    # --- the tick ------------------------------------------------------------------------------------------

    def _push(self, p: TcpProbe, due: float) -> None:
        p.due = due
        self._seq += 1
        p.seq = self._seq
        heapq.heappush(self._heap, (due, self._seq, p))
        if not self._ticking and (self._handle is None or due < self._at):
            self._arm()

    def _arm(self) -> None:
        when = None
        if len(self.prober):
            when = self.loop.time() + self.tick_s
        while self._heap and self._heap[0][1] != self._heap[0][2].seq:
            heapq.heappop(self._heap)
        if self._heap and (when is None or self._heap[0][0] < when):
            when = self._heap[0][0]
        if self._handle is not None:
            if when is not None and when == self._at:
                return
            self._handle.cancel()
            self._handle = None
        if when is not None:
            self._at = when
            self._handle = self.loop.call_at(when, self._tick)

    def _start(self, p: TcpProbe, now: float) -> None:
        self.started += 1
        err = self.prober.start(p, p.family, p.dest, p.bind, now + p.timeout_s)
        if err < 0:
            p.in_flight = True
        else:
            self._done(p, err, now)

    def _done(self, p: TcpProbe, err: int, now: float) -> None:
        p.in_flight = False
        if not p.active:
            return
        if p.interval_s is not None:
            nxt = p.due + p.interval_s
            self._push(p, nxt if nxt > now else now)
        else:
            p.active = False
        try:
            p.on_result(err == 0, "connected" if err == 0 else why_of(err))
        except Exception:
            log.exception("TCP check result handler failed")

    def _tick(self) -> None:
        self._handle = None
        self._ticking = True
        try:
            self._run_tick()
        finally:
            self._ticking = False
        self._arm()

    def _run_tick(self) -> None:
        self.ticks += 1
        loop = self.loop
        now = loop.time()
        prober = self.prober
        done = self._done
        if len(prober):
            for p, err in prober.collect(now):
                done(p, err, now)
        heap = self._heap
        horizon = now + self.tick_s
        started = False
        while heap and heap[0][0] < horizon:
            _, seq, p = heapq.heappop(heap)
            if seq == p.seq and not p.in_flight:
                self._start(p, now)
                started = True
        if started and len(prober):
            # The handshakes of a LAN or loopback target are usually over already: learn it now, in this
            # wake-up, rather than one tick later.
            finished = prober.collect(now)
            self.early += len(finished)
            for p, err in finished:
                done(p, err, now)


__all__ = ["TICK_MS", "TcpProbe", "TcpProbeGroup", "why_of"]
