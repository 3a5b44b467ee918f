"""The TCP check scheduler (fastvrrp.health.tcpfast) on a virtual loop: fixed-rate schedule, batching per
tick, no overlap, removal, one timer; the prober is a scripted stand-in, so every outcome and its time is
chosen by the test. The real prober against a real kernel is in tests/netns/test_health_tcp_probes.py."""

from __future__ import annotations

import errno
import heapq
import os

import pytest

from fastvrrp.health.tcpfast import TcpProbe, TcpProbeGroup, why_of


class Handle:
    def __init__(self, loop: VLoop, when: float, cb) -> None:
        self.loop, self.when, self.cb, self.cancelled = loop, when, cb, False

    def cancel(self) -> None:
        self.cancelled = True


class VLoop:
    """time() and call_at() of an event loop, driven by advance()."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[tuple[float, int, Handle]] = []
        self.seq = 0
        self.armed = 0  # call_at calls
        self.wakeups = 0

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, cb) -> Handle:
        self.armed += 1
        self.seq += 1
        h = Handle(self, when, cb)
        heapq.heappush(self.timers, (when, self.seq, h))
        return h

    def advance(self, dt: float) -> None:
        end = self.now + dt
        while self.timers and self.timers[0][0] <= end:
            when, _, h = heapq.heappop(self.timers)
            if h.cancelled:
                continue
            self.now = max(self.now, when)
            self.wakeups += 1
            h.cb()
        self.now = end

    def live_timers(self) -> int:
        return sum(1 for _, _, h in self.timers if not h.cancelled)


class ScriptedProber:
    """Stands in for fastvrrp._probe.Prober: `outcome(probe)` says (errno, seconds until it ends)."""

    def __init__(self, loop: VLoop, outcome) -> None:
        self.loop, self.outcome = loop, outcome
        self.inflight: dict[object, tuple[float, int, float]] = {}  # owner -> (ends_at, errno, deadline)
        self.starts: list[tuple[float, object]] = []
        self.cancelled: list[object] = []

    def __len__(self) -> int:
        return len(self.inflight)

    def start(self, owner, family, dest, bind, deadline):
        self.starts.append((self.loop.now, owner))
        err, after = self.outcome(owner)
        if after == 0:
            return err
        self.inflight[owner] = (self.loop.now + after, err, deadline)
        return -1

    def collect(self, now):
        out = []
        for owner, (ends, err, deadline) in list(self.inflight.items()):
            if ends <= now:
                out.append((owner, err))
            elif deadline <= now:
                out.append((owner, errno.ETIMEDOUT))
            else:
                continue
            del self.inflight[owner]
        return out

    def cancel(self, owner):
        self.cancelled.append(owner)
        return self.inflight.pop(owner, None) is not None


def group_with(outcome, tick_ms: int = 10):
    loop = VLoop()
    g = TcpProbeGroup(loop, tick_ms=tick_ms)  # type: ignore[arg-type]
    g.prober = ScriptedProber(loop, outcome)  # type: ignore[assignment]
    return loop, g


def probe(results: list, interval_ms: int | None = 1000, timeout_ms: int = 2000, port: int = 80) -> TcpProbe:
    return TcpProbe(
        "192.0.2.10", port, None, interval_ms, timeout_ms, lambda ok, why: results.append((ok, why))
    )


def starts_of(g, p) -> list[float]:
    return [round(t - 100.0, 6) for t, o in g.prober.starts if o is p]


def test_fixed_rate_from_the_first_delay():
    loop, g = group_with(lambda p: (0, 0))
    res: list = []
    p = probe(res)
    g.add(p, first_delay_s=0.3)
    loop.advance(3.35)
    assert starts_of(g, p) == [0.3, 1.3, 2.3, 3.3]
    assert res == [(True, "connected")] * 4


def test_a_probe_starts_at_most_one_tick_early_and_the_schedule_does_not_drift():
    loop, g = group_with(lambda p: (0, 0), tick_ms=10)
    res: list = []
    a, b = probe(res), probe(res)
    g.add(a, 0.100)
    g.add(b, 0.107)  # due inside a's tick: starts with it, 7 ms early
    loop.advance(10.2)
    sa, sb = starts_of(g, a), starts_of(g, b)
    assert sa == sb == [round(0.1 + k, 6) for k in range(11)]
    assert b.due == pytest.approx(100.0 + 11.107)  # still on its own grid


def test_probes_due_in_one_tick_share_one_wakeup():
    loop, g = group_with(lambda p: (0, 0), tick_ms=10)
    res: list = []
    for i in range(1000):
        g.add(probe(res), first_delay_s=i / 1000)
    loop.advance(0.999)
    w0 = loop.wakeups
    loop.advance(5.0)
    assert 6000 <= len(res) <= 6010  # every check, every second (those due in the next 10 ms start early)
    assert loop.wakeups - w0 <= 5 * 101  # a tick per 10 ms, not a wake-up per probe
    assert loop.live_timers() == 1


def test_a_connect_in_flight_is_polled_each_tick_until_it_ends():
    loop, g = group_with(lambda p: (errno.ECONNREFUSED, 0.035), tick_ms=10)
    res: list = []
    p = probe(res, interval_ms=1000)
    g.add(p, 0.0)
    loop.advance(0.03)
    assert res == []
    loop.advance(0.02)  # ended at 35 ms, learnt at the next tick (40 ms)
    assert res == [(False, "refused: " + os.strerror(errno.ECONNREFUSED))]
    assert g.ticks <= 6


def test_no_overlap_a_probe_longer_than_its_interval_delays_the_next_to_its_end():
    loop, g = group_with(lambda p: (0, 2.5), tick_ms=10)  # every connect takes 2.5 s
    res: list = []
    p = probe(res, interval_ms=1000, timeout_ms=5000)
    g.add(p, 0.0)
    loop.advance(6.0)
    s = starts_of(g, p)
    assert s[0] == 0.0
    assert all(2.5 <= b - a <= 2.52 for a, b in zip(s, s[1:], strict=False)), s
    assert len(res) == 2


def test_the_deadline_fails_a_probe_as_timeout_within_a_tick():
    loop, g = group_with(lambda p: (0, 60.0), tick_ms=10)  # never answers
    res: list = []
    p = probe(res, interval_ms=1000, timeout_ms=300)
    g.add(p, 0.0)
    loop.advance(0.29)
    assert res == []
    loop.advance(0.02)
    assert res == [(False, "timeout")]
    loop.advance(0.7)  # the next probe is due 1 s after the first one's start
    assert starts_of(g, p) == [0.0, 1.0]


def test_remove_abandons_the_connect_in_flight_and_reports_nothing_more():
    loop, g = group_with(lambda p: (0, 0.5), tick_ms=10)
    res: list = []
    p = probe(res)
    g.add(p, 0.0)
    loop.advance(0.1)
    g.remove(p)
    assert g.prober.cancelled == [p]
    loop.advance(3.0)
    assert res == [] and len(g.prober.starts) == 1
    assert loop.live_timers() == 0  # nothing left to do: no timer, no wake-ups


def test_remove_then_add_again_runs_one_schedule_not_two():
    loop, g = group_with(lambda p: (0, 0))
    res: list = []
    p = probe(res)
    g.add(p, 0.5)
    g.remove(p)
    g.add(p, 0.2)
    loop.advance(2.3)
    assert starts_of(g, p) == [0.2, 1.2, 2.2]


def test_the_timer_moves_only_when_something_earlier_comes():
    loop, g = group_with(lambda p: (0, 0))
    res: list = []
    g.add(probe(res), 0.5)
    g.add(probe(res), 0.7)  # later than the armed timer: no new timer
    assert loop.armed == 1
    g.add(probe(res), 0.1)  # earlier: the timer moves
    assert loop.armed == 2 and loop.live_timers() == 1


def test_a_failing_result_handler_does_not_stop_the_schedule():
    loop, g = group_with(lambda p: (0, 0))
    calls = []

    def boom(ok, why):
        calls.append(ok)
        raise RuntimeError("handler bug")

    g.add(TcpProbe("192.0.2.10", 80, None, 1000, 2000, boom), 0.0)
    loop.advance(2.5)
    assert calls == [True, True, True]


def test_probe_once_is_not_rescheduled():
    loop, g = group_with(lambda p: (0, 0.02))
    res: list = []
    p = probe(res, interval_ms=None)
    g.probe_once(p)
    loop.advance(3.0)
    assert res == [(True, "connected")] and len(g.prober.starts) == 1


@pytest.mark.parametrize(
    ("err", "reason"),
    [
        (errno.ECONNREFUSED, "refused"),
        (errno.ECONNRESET, "reset"),
        (errno.EPIPE, "reset"),
        (errno.ECONNABORTED, "reset"),
        (errno.EHOSTUNREACH, "unreachable"),
        (errno.ENETUNREACH, "unreachable"),
        (errno.EADDRNOTAVAIL, "error"),
        (errno.EINVAL, "error"),
        (errno.EMFILE, "error"),
    ],
)
def test_every_errno_is_a_reason(err, reason):
    assert why_of(err) == f"{reason}: {os.strerror(err)}"


def test_timeout_reads_like_the_coroutine_probe_did():
    assert why_of(errno.ETIMEDOUT) == "timeout"


def test_the_targets_are_prebuilt_sockaddrs():
    v4 = TcpProbe("192.0.2.10", 8080, "192.0.2.1", 1000, 2000, print)
    v6 = TcpProbe("2001:db8::10", 443, None, 1000, 2000, print)
    assert v4.dest[:4] == b"\x02\x00\x1f\x90" and v4.dest[4:8] == bytes([192, 0, 2, 10])
    assert v4.bind is not None and v4.bind[2:4] == b"\x00\x00"
    assert v6.dest[:4] == b"\x0a\x00\x01\xbb" and v6.dest[8:24] == bytes.fromhex("20010db8" + "0" * 22 + "10")
