"""One precise loop timer: a timerfd armed to an absolute CLOCK_MONOTONIC deadline in microseconds.

uvloop timers have whole-millisecond resolution and fire relative to the loop's cached time
(docs/kernel-notes.md#uvloop-timers), which makes a takeover up to ~2 ms late. A timerfd is a kernel hrtimer:
armed with an absolute deadline it fires within tens of microseconds of it, and `loop.add_reader` turns it
into one more readable fd. The daemon re-arms it only when the earliest deadline moves (one `timerfd_settime`
per wake-up at most, never one per advert: docs/costs.md#keepalived-cpu on where keepalived spends its CPU).
time.monotonic_ns() reads the same clock.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import select
import threading
import time
from collections.abc import Callable

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC
TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p]


def _timerfd() -> int:
    """A non-blocking CLOCK_MONOTONIC timerfd."""
    fd = _libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"timerfd_create: {os.strerror(err)}")
    return int(fd)


class PreciseTimer:
    """`arm(deadline_us)` calls `callback()` on the loop once the monotonic clock reaches the deadline."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        fd = _timerfd()
        self.fd = fd
        self.loop = loop
        self.callback = callback
        self.armed_us = -1  # the deadline armed now, -1 if none
        self.fired_us = 0  # the deadline of the last fire (the callback can tell how late it runs)
        self.fires = 0
        self._spec = _Itimerspec()
        loop.add_reader(fd, self._on_readable)

    def arm(self, deadline_us: int) -> None:
        """Arm to an absolute deadline (a past one fires at once); 0 is never a valid deadline here."""
        if deadline_us == self.armed_us:
            return
        # it_value 0 would disarm: a deadline at or before the epoch means "now".
        sec, usec = divmod(max(deadline_us, 1), 1_000_000)
        self._spec.it_value.tv_sec = sec
        self._spec.it_value.tv_nsec = usec * 1000
        if _libc.timerfd_settime(self.fd, TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_settime: {os.strerror(err)}")
        self.armed_us = deadline_us

    def disarm(self) -> None:
        if self.armed_us < 0:
            return
        self._spec.it_value.tv_sec = 0
        self._spec.it_value.tv_nsec = 0
        _libc.timerfd_settime(self.fd, 0, ctypes.byref(self._spec), None)
        self.armed_us = -1

    def _on_readable(self) -> None:
        try:
            os.read(self.fd, 8)  # the expiry count; reading it re-enables the fd
        except BlockingIOError:
            return
        self.fired_us = self.armed_us
        self.armed_us = -1
        self.fires += 1
        self.callback()

    def close(self) -> None:
        if self.fd >= 0:
            # before close: uvloop aborts otherwise (docs/kernel-notes.md#remove-the-reader-before-closing)
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1


class Watchdog:
    """A thread that calls `rescue(now_us)` when the loop is late: the loop `feed(deadline_us)`s it with its
    earliest deadline after each wake-up; if the loop has not fed it again `grace_us` after that deadline (it
    is held in a long callback, the cyclic GC, a slow write), the thread wakes on its own timerfd, takes the
    GIL (Python hands it over within the switch interval) and calls `rescue`, then again every `grace_us`
    until the loop feeds it. `rescue` must be safe to call from this thread (the engine's send_due is).
    """

    def __init__(self, rescue: Callable[[int], object], grace_us: int) -> None:
        fd = _timerfd()
        self.fd = fd
        self.rescue = rescue
        self.grace_us = grace_us
        self.rescues = 0  # wake-ups that found the loop late
        self._spec = _Itimerspec()
        self._at_us = 0  # armed to (0: disarmed); an unchanged arm costs no system call
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="fastvrrp-adverts", daemon=True)
        self._thread.start()

    def feed(self, deadline_us: int) -> None:
        """The loop ran; its next deadline is deadline_us (-1: none, the watchdog sleeps)."""
        self._arm(deadline_us + self.grace_us if deadline_us >= 0 else 0, self._spec)

    def _arm(self, at_us: int, spec: _Itimerspec) -> None:
        """Arm the timerfd at at_us. The loop and the watchdog's thread each fill a struct of their own, so a
        thread switch between the two fields cannot arm a time made of both. The two may still race on
        `_at_us`: the timer then stays at the watchdog's time, and the worst is one rescue more, which sends
        only what is due."""
        if at_us == self._at_us:
            return
        self._at_us = at_us
        sec, usec = divmod(at_us, 1_000_000)
        spec.it_value.tv_sec = sec
        spec.it_value.tv_nsec = usec * 1000
        _libc.timerfd_settime(self.fd, TFD_TIMER_ABSTIME, ctypes.byref(spec), None)

    def _run(self) -> None:
        spec = _Itimerspec()  # this thread's own (see _arm)
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while not self._stopping:
            ready = {fd for fd, _ev in poller.poll()}
            if self._stopping or self._wake_r in ready:
                return
            try:
                os.read(self.fd, 8)
            except BlockingIOError:
                continue
            now = time.monotonic_ns() // 1000
            self._arm(now + self.grace_us, spec)  # again after grace_us unless the loop feeds us first
            self.rescues += 1
            try:
                self.rescue(now)
            except Exception:  # never let the thread die: the loop reports engine errors itself
                pass

    def close(self) -> None:
        if self.fd < 0:
            return
        self._stopping = True
        os.write(self._wake_w, b"x")
        self._thread.join(2)
        for fd in (self.fd, self._wake_r, self._wake_w):
            os.close(fd)
        self.fd = -1
