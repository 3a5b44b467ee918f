"""A step of the machine's wall clock, an hour forwards and then back past the true time, moves no timer:
the daemons keep their deadlines on CLOCK_MONOTONIC (docs/DESIGN.md, Time). Verdict: no state change in either
daemon, no advert from a backup, and no gap in a master's adverts beyond the interval + MARGIN_S, measured on
the kernel's receive stamps with the step taken out (they are wall-clock; the tap's monotonic read time
tells which step was in force).

CAREFUL: this steps the clock of the whole machine. The step is undone on leaving the block whatever happens
(chaoslib.wall_clock_offset puts back the true time from CLOCK_MONOTONIC), and the test checks it was."""

from __future__ import annotations

import time

import pytest
from chaoslib import split_pair, wait_settled, wall_clock_offset, winner

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import Lan

pytestmark = [pytest.mark.netns, pytest.mark.chaos]

A_MS = 100
MARGIN_S = 0.1
HOUR = 3600.0


def true_stamp(e, clock) -> float:
    """The kernel's receive stamp of `e` with the step in force taken out: the step is a whole number of
    hours, so it is the multiple of an hour nearest to the stamp's distance from the true time at which the
    tap read the frame (microseconds to milliseconds later)."""
    read_true = clock.rt0_ns + (e.mono_ns - clock.mono0_ns)
    steps = round((e.t_ns - read_true) / (HOUR * 1e9))
    return (e.t_ns - steps * int(HOUR * 1e9)) / 1e9


def test_an_hour_forwards_and_back_moves_no_timer(lab):
    a = A_MS / 1000
    lan = Lan(lab, routers=2, client=False)
    one, two = split_pair(2, A_MS)
    r1, r2 = lan.router(1, "fastvrrp", one), lan.router(2, "fastvrrp", two)
    with lan.tap() as tap:
        r1.start()
        r2.start()
        wait_settled(r1, r2)
        before = (r1.transitions_count(), r2.transitions_count())
        mono0 = time.monotonic_ns()

        def adverts_since(mark: int, n: int) -> bool:
            return all(
                sum(1 for e in tap.adverts(s.vrid) if e.mono_ns > mark) >= n for s in one
            )  # every VRID, counted on the monotonic clock

        wait_for(lambda: adverts_since(mono0, 10), timeout=10, what="adverts before the step")
        with wall_clock_offset() as clock:
            for offset in (HOUR, -HOUR):
                clock.step(offset)
                mark = time.monotonic_ns()
                wait_for(lambda m=mark: adverts_since(m, 10), timeout=10, what=f"adverts at {offset:+.0f} s")
            clock.restore()
            mark = time.monotonic_ns()
            wait_for(lambda m=mark: adverts_since(m, 10), timeout=10, what="adverts after the restore")
        assert abs(clock.offset_ns()) < 1_000_000, f"wall clock off by {clock.offset_ns()} ns after the test"
        mono1 = time.monotonic_ns()
    assert (r1.transitions_count(), r2.transitions_count()) == before, (r1.log()[-2000:], r2.log()[-2000:])
    for s in one:
        w = winner(r1, r2, s.vrid)
        other = r2 if w is r1 else r1
        ev = [e for e in tap.adverts(s.vrid) if mono0 < e.mono_ns < mono1]
        assert not [e for e in ev if e.src == other.addr4], f"VRID {s.vrid}: the backup advertised"
        t = [true_stamp(e, clock) for e in ev if e.src == w.addr4]
        gap = max(b - x for x, b in zip(t, t[1:], strict=False))
        print(f"\nVRID {s.vrid}: {len(t)} adverts across the steps, largest gap {gap * 1000:.1f} ms")
        assert gap < a + MARGIN_S, f"VRID {s.vrid}: a gap of {gap:.3f} s in the master's adverts"
