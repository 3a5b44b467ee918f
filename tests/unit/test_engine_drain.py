"""The engine reads what waits in its sockets before a backup's Master_Down deadline is acted on.

A held loop (SIGSTOP, a long callback) must not turn the adverts queued in a socket into a takeover: run()
reads every open rx socket once before the first non-master deadline it fires, and the adverts it finds
count as heard then (RFC 5798 6.4.2). The sockets here are AF_UNIX datagram pairs, which carry the whole
IPv4 packets a raw socket would deliver, so no privileges are needed.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest

from fastvrrp import _wire
from fastvrrp._engine import DROP_REASONS, EV_ADVERT, EV_TIMER, Engine

DOWN = 36_100  # Master_Down_Interval of priority 100 at 10 ms, in us
A1 = socket.inet_aton("192.0.2.1")
A2 = socket.inet_aton("192.0.2.2")
GROUP4 = socket.inet_aton("224.0.0.18")
VIP = socket.inet_aton("192.0.2.100")


def adv4(vrid: int, prio: int, int_ms: int) -> bytes:
    """A VRRPv3 advert from A2 in its IPv4 header, as a raw socket delivers it."""
    msg = _wire.build_advert(
        version=3,
        family=4,
        vrid=vrid,
        priority=prio,
        adver_int_ms=int_ms,
        addresses=[VIP],
        src=A2,
        dst=GROUP4,
    )
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(msg), 0, 0, 255, 112, 0, A2, GROUP4)
    return hdr[:10] + struct.pack("!H", _wire.checksum(hdr)) + hdr[12:] + msg


@pytest.fixture
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setblocking(False)
    yield a, b
    a.close()
    b.close()


def engine(rx_sock, **kw):
    eng = Engine(capture=True, batch=8, **kw)
    rx = eng.add_rx_socket(rx_sock.fileno(), 4, own=[A1])
    tx = eng.add_tx_socket(-1, 4)
    return eng, rx, tx


def follow(eng, rx, vrid, deadline):
    s = eng.add_slot(rx, vrid, 3)
    eng.backup(s, A2, 200, 10, DOWN, deadline)
    return s


def test_waiting_advert_of_the_followed_master_pushes_the_due_deadline(pair):
    rx_sock, peer = pair
    eng, rx, _ = engine(rx_sock)
    s = follow(eng, rx, 1, 1_000)
    peer.send(adv4(vrid=1, prio=200, int_ms=10))
    assert eng.run(50_000) == []  # due since 49 ms, but the master's advert was waiting: heard now
    assert eng.deadline(s) == 50_000 + DOWN
    assert eng.rx_stats(rx)["drains"] == 1
    assert eng.slot_stats(s)["rx_fast"] == 1


def test_without_the_drain_the_same_deadline_fires(pair):
    rx_sock, peer = pair
    eng, rx, _ = engine(rx_sock)
    s = follow(eng, rx, 1, 1_000)
    peer.send(adv4(vrid=1, prio=200, int_ms=10))
    assert eng.run(50_000, False) == [(EV_TIMER, s, 1_000)]
    assert eng.rx_stats(rx)["drains"] == 0


def test_one_drain_per_run_covers_every_socket_and_slot(pair):
    rx_sock, peer = pair
    a2, b2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a2.setblocking(False)
    try:
        eng, rx, _ = engine(rx_sock)
        rx2 = eng.add_rx_socket(a2.fileno(), 4)
        slots = [follow(eng, rx, v, 1_000 + v) for v in range(1, 101)]
        slots += [follow(eng, rx2, v, 1_000 + v) for v in range(1, 101)]
        for v in range(1, 101):
            peer.send(adv4(vrid=v, prio=200, int_ms=10))
            b2.send(adv4(vrid=v, prio=200, int_ms=10))
        assert eng.run(90_000) == []
        assert {eng.deadline(s) for s in slots} == {90_000 + DOWN}
        assert (eng.rx_stats(rx)["drains"], eng.rx_stats(rx2)["drains"]) == (1, 1)
        eng._check_heap()
    finally:
        a2.close()
        b2.close()


def test_a_slot_without_its_advert_still_fires_after_the_drain(pair):
    rx_sock, peer = pair
    eng, rx, _ = engine(rx_sock)
    heard = follow(eng, rx, 1, 1_000)
    silent = follow(eng, rx, 2, 1_000)
    peer.send(adv4(vrid=1, prio=200, int_ms=10))
    assert eng.run(50_000) == [(EV_TIMER, silent, 1_000)]
    assert eng.deadline(heard) == 50_000 + DOWN


def test_an_advert_python_must_judge_comes_before_the_timer(pair):
    # An idle slot (the core owns its deadline): the advert goes up first, so the core hears it before it
    # sees the timer (and then finds its own deadline not reached).
    rx_sock, peer = pair
    eng, rx, _ = engine(rx_sock)
    s = eng.add_slot(rx, 1, 3)
    eng.timer(s, 1_000)
    peer.send(adv4(vrid=1, prio=200, int_ms=10))
    ev = eng.run(50_000)
    assert [(k, slot) for k, slot, _ in ev] == [(EV_ADVERT, s), (EV_TIMER, s)]


def test_masters_alone_do_not_read_the_sockets(pair):
    rx_sock, peer = pair
    eng, rx, tx = engine(rx_sock)
    s = eng.add_slot(rx, 1, 3)
    eng.set_adverts(s, tx, [(b"\xe0\0\0\x12", 0, b"x" * 12)])
    eng.master(s, 10_000, 1_000)
    peer.send(adv4(vrid=1, prio=200, int_ms=10))
    assert eng.run(1_000) == []
    assert eng.queued() == 1
    assert eng.rx_stats(rx)["drains"] == 0
    assert eng.rx_stats(rx)["datagrams"] == 0


def test_a_closed_rx_is_not_read(pair):
    rx_sock, peer = pair
    eng, rx, _ = engine(rx_sock)
    s = follow(eng, rx, 1, 1_000)
    peer.send(adv4(vrid=1, prio=200, int_ms=10))
    eng.close_rx(rx)
    assert eng.run(50_000) == [(EV_TIMER, s, 1_000)]
    assert eng.receive(rx, 50_000) == []
    assert rx_sock.recv(4096)  # still there: the engine did not touch the socket


def test_rx_clock_times_a_batch_when_it_is_read(pair):
    rx_sock, peer = pair
    eng, rx, _ = engine(rx_sock, rx_clock=True)
    s = follow(eng, rx, 1, 1_000)
    peer.send(adv4(vrid=1, prio=200, int_ms=10))
    before = time.monotonic_ns() // 1000
    assert eng.receive(rx, 0) == []  # the caller's clock says 0: the batch is timed by the monotonic clock
    after = time.monotonic_ns() // 1000
    assert before + DOWN <= eng.deadline(s) <= after + DOWN


def test_without_rx_clock_the_callers_time_counts(pair):
    rx_sock, peer = pair
    eng, rx, _ = engine(rx_sock)
    s = follow(eng, rx, 1, 1_000)
    peer.send(adv4(vrid=1, prio=200, int_ms=10))
    eng.receive(rx, 5_000)
    assert eng.deadline(s) == 5_000 + DOWN


def test_max_events_leaves_the_rest_in_the_socket(pair):
    rx_sock, peer = pair
    eng, rx, _ = engine(rx_sock)
    for v in range(1, 41):
        eng.add_slot(rx, v, 3)  # idle: every advert goes up to Python
        peer.send(adv4(vrid=v, prio=200, int_ms=10))
    first = eng.receive(rx, 0, 10)
    assert 10 <= len(first) < 10 + eng.batch  # stops after the batch that reached the bound
    rest = eng.receive(rx, 0)
    assert len(first) + len(rest) == 40


def test_drop_reasons_name_every_counter(pair):
    rx_sock, _ = pair
    eng, rx, _ = engine(rx_sock)
    assert DROP_REASONS[: len(_wire.DROP_REASONS)] == _wire.DROP_REASONS
    assert DROP_REASONS[-1] == "rx_overflow"
    assert len(eng.drops(rx)) == len(DROP_REASONS)


# --- send_due: the masters' adverts without the loop (the daemon's advert watchdog) ---
def masters(eng, rx, tx, n, interval=10_000, first=1_000):
    out = []
    for v in range(1, n + 1):
        s = eng.add_slot(rx, v, 3)
        eng.set_adverts(s, tx, [(b"\xe0\0\0\x12", 0, bytes([v]) * 12)])
        eng.master(s, interval, first + v)
        out.append(s)
    return out


def test_send_due_sends_every_due_master_and_nothing_else(pair):
    rx_sock, peer = pair
    eng, rx, tx = engine(rx_sock)
    ms = masters(eng, rx, tx, 50)
    backup = follow(eng, rx, 200, 1_000)  # due too, but only run() may fire a backup
    peer.send(adv4(vrid=200, prio=200, int_ms=10))
    assert eng.send_due(5_000) == 50
    sent = eng.take_sent()
    assert sorted(slot for slot, *_ in sent) == ms
    assert {eng.deadline(s) for s in ms} == {11_000 + v for v in range(1, 51)}
    assert eng.deadline(backup) == 1_000  # untouched, and the socket was not read
    assert eng.rx_stats(rx)["datagrams"] == 0
    eng._check_heap()
    # run() then finds only the backup due (after reading the socket: its master's advert was waiting)
    assert eng.run(5_000) == []
    assert eng.queued() == 0
    eng._check_heap()


def test_send_due_then_run_keep_the_schedule(pair):
    # Interleaved, the two paths send each master once per interval: nothing twice, nothing skipped.
    rx_sock, _ = pair
    eng, rx, tx = engine(rx_sock)
    ms = masters(eng, rx, tx, 250, interval=10_000, first=0)
    for step in range(1, 200):
        now = step * 1_000
        if step % 3:
            eng.run(now)
            eng.flush()
        else:
            eng.send_due(now)
        eng._check_heap()
    counts = {s: 0 for s in ms}
    for slot, *_ in eng.take_sent():
        counts[slot] += 1
    assert set(counts.values()) <= {19, 20}  # 199 ms at 10 ms each, whichever path sent them
    assert all(eng.slot_stats(s)["skipped"] == 0 for s in ms)


def test_send_due_fires_only_what_is_due(pair):
    rx_sock, _ = pair
    eng, rx, tx = engine(rx_sock)
    masters(eng, rx, tx, 3)
    assert eng.send_due(500) == 0  # nothing due yet
    assert eng.send_due(1_000_000) == 3


def test_the_metrics_name_the_overflow_drops(pair):
    from fastvrrp.daemon import metrics

    rx_sock, _ = pair
    eng, rx, _ = engine(rx_sock)
    drops = eng.drops(rx)
    drops[-1] = 7  # what SO_RXQ_OVFL would have reported
    text = metrics.render(metrics.Snapshot(rx=[metrics.RxRow("eth0", 4, 10, drops)])).decode()
    assert 'fastvrrp_rx_drops_total{intf="eth0",family="4",reason="rx_overflow"} 7\n' in text


# --- counters the daemon reads per wake-up ---


def test_masters_counts_the_slots_in_master_mode(pair):
    rx_sock, _ = pair
    eng, rx, _ = engine(rx_sock)
    a = eng.add_slot(rx, 1, 3)
    b = eng.add_slot(rx, 2, 3)
    assert eng.masters == 0
    eng.master(a, 10_000, 1_000)
    eng.master(b, 10_000, 1_000)
    eng.master(b, 10_000, 2_000)  # again: still one slot
    assert eng.masters == 2
    eng.backup(a, A2, 200, 10, DOWN, 50_000)
    assert eng.masters == 1
    eng.remove_slot(b)
    assert eng.masters == 0
    eng.master(a, 10_000, 1_000)
    eng.timer(a, 5_000)
    assert eng.masters == 0
    off = Engine(capture=True, fast_path=False)
    s = off.add_slot(off.add_rx_socket(-1, 4), 1, 3)
    off.master(s, 10_000, 1_000)  # without the fast path the deadline is Python's: not a master slot
    assert off.masters == 0
