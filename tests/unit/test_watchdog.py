"""io.timer.Watchdog: a thread that calls its rescue when the loop has not fed it by deadline + grace."""

from __future__ import annotations

import threading
import time

from fastvrrp.io.timer import Watchdog
from fastvrrp.lab.namespaces import wait_for


def now_us() -> int:
    return time.monotonic_ns() // 1000


def test_rescue_runs_grace_after_a_deadline_the_loop_missed():
    calls: list[int] = []
    wd = Watchdog(calls.append, grace_us=5_000)
    try:
        deadline = now_us() + 10_000
        wd.feed(deadline)
        wait_for(lambda: len(calls) >= 2, timeout=5, what="two rescues")
        assert calls[0] >= deadline + 5_000
        assert calls[1] - calls[0] >= 5_000  # then every grace_us until the loop feeds it again
        assert wd.rescues >= 2
    finally:
        wd.close()


def test_a_loop_that_keeps_feeding_is_never_rescued():
    calls: list[int] = []
    wd = Watchdog(calls.append, grace_us=200_000)
    try:
        end = time.monotonic() + 0.3
        while time.monotonic() < end:  # a loop on time: fed every ms with a deadline 1 ms ahead
            wd.feed(now_us() + 1_000)
            time.sleep(0.001)
        wd.feed(-1)  # nothing to wait for: the watchdog sleeps
        time.sleep(0.05)
        assert calls == []
    finally:
        wd.close()


def test_rescue_runs_while_the_main_thread_holds_the_gil():
    calls: list[int] = []
    wd = Watchdog(calls.append, grace_us=2_000)
    try:
        wd.feed(now_us())
        end = time.monotonic() + 0.2
        n = 0
        while time.monotonic() < end:  # busy Python: the GIL is only handed over at the switch interval
            n += 1
        assert calls, "the watchdog did not get the GIL from a busy thread"
    finally:
        wd.close()
    assert not any(t.name == "fastvrrp-adverts" for t in threading.enumerate())
