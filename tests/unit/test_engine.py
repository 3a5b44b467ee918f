"""fastvrrp._engine in capture mode with a virtual clock: demux, drop reasons, the master and backup fast
paths, the deadline heap, and the same steps with the fast path off (everything goes up to Python)."""

from __future__ import annotations

import random
import socket
import struct

import pytest

from fastvrrp import _engine, _wire
from fastvrrp._engine import EV_ADVERT, EV_TIMER, Engine
from fastvrrp.io import kfilter

GROUP4 = socket.inet_aton("224.0.0.18")
GROUP6 = socket.inet_pton(socket.AF_INET6, "ff02::12")
A1 = socket.inet_aton("192.0.2.1")
A2 = socket.inet_aton("192.0.2.2")
A3 = socket.inet_aton("192.0.2.3")
VIP = socket.inet_aton("192.0.2.100")
LL1 = socket.inet_pton(socket.AF_INET6, "fe80::1")
LL2 = socket.inet_pton(socket.AF_INET6, "fe80::2")
VIP6 = socket.inet_pton(socket.AF_INET6, "2001:db8::100")
R = _wire.Reason
SEC = 1_000_000


def ip_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(msg: bytes, src: bytes = A2, dst: bytes = GROUP4, ttl: int = 255) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(msg), 0, 0, ttl, 112, 0, src, dst)
    return hdr[:10] + struct.pack("!H", ip_checksum(hdr)) + hdr[12:] + msg


def adv4(vrid=1, prio=100, int_ms=1000, src=A2, dst=GROUP4, ttl=255, version=3, auth_type=0, auth=b""):
    msg = _wire.build_advert(
        version=version,
        family=4,
        vrid=vrid,
        priority=prio,
        adver_int_ms=int_ms,
        addresses=[VIP],
        src=src,
        dst=dst,
        auth_type=auth_type,
        auth_data=auth,
    )
    return ip4(msg, src, dst, ttl)


def adv6(vrid=1, prio=100, int_ms=1000, src=LL2, dst=GROUP6, hop=255):
    msg = _wire.build_advert(
        version=3, family=6, vrid=vrid, priority=prio, adver_int_ms=int_ms, addresses=[VIP6], src=src, dst=dst
    )
    return (msg, src, dst, hop)


def engine(fast_path=True, **kw):
    eng = Engine(capture=True, fast_path=fast_path, **kw)
    # The fds are never touched in capture mode.
    rx = eng.add_rx_socket(-1, 4, own=[A1])
    tx = eng.add_tx_socket(-1, 4)
    return eng, rx, tx


def kinds(events):
    return [(k, s) for k, s, _ in events]


# --- demux and drops ---
def test_demux_by_socket_and_vrid():
    eng, rx, _ = engine()
    rx_b = eng.add_rx_socket(-1, 4)
    s1 = eng.add_slot(rx, 1, 3)
    s2 = eng.add_slot(rx, 2, 3)
    s3 = eng.add_slot(rx_b, 1, 3)
    ev = eng.feed(rx, 0, [adv4(vrid=2), adv4(vrid=1)])
    assert kinds(ev) == [(EV_ADVERT, s2), (EV_ADVERT, s1)]
    ev = eng.feed(rx_b, 0, [adv4(vrid=1, prio=200)])
    assert kinds(ev) == [(EV_ADVERT, s3)]
    pkt = ev[0][2]
    assert (pkt.family, pkt.version, pkt.vrid, pkt.priority, pkt.adver_int_ms) == (4, 3, 1, 200, 1000)
    assert (pkt.src, pkt.dst, pkt.addresses, pkt.ttl) == (A2, GROUP4, (VIP,), 255)
    assert pkt.valid and pkt.reason is None and pkt.checksum_form == "pseudo"
    assert eng.rx_stats(rx) == {"datagrams": 2, "kernel": 0, "batches": 1, "drains": 0, "dropped": 0}
    assert eng.slot_stats(s1)["events"] == 1


def test_duplicate_vrid_on_one_socket_is_refused():
    eng, rx, _ = engine()
    eng.add_slot(rx, 7, 3)
    with pytest.raises(ValueError):
        eng.add_slot(rx, 7, 2)
    with pytest.raises(ValueError):
        eng.add_slot(rx, 0, 3)


@pytest.mark.parametrize(
    "packet, reason",
    [
        (adv4(vrid=9), R.R_NO_INSTANCE),
        (adv4(version=2, int_ms=1000), R.R_VERSION_MISMATCH),
        (adv4(src=A1), R.R_OWN),
        (adv4(ttl=64), R.R_TTL),
        (adv4()[:-1] + b"\0", R.R_CHECKSUM),
        (adv4()[:24], R.R_IP),
        (ip4(adv4()[20:26]), R.R_LENGTH),
    ],
    ids=["no_instance", "version_mismatch", "own", "ttl", "checksum", "ip", "length"],
)
def test_engine_drop_reasons(packet, reason):
    eng, rx, _ = engine()
    s = eng.add_slot(rx, 1, 3)
    eng.timer(s, 5 * SEC)
    assert eng.feed(rx, 1 * SEC, [packet]) == []
    drops = eng.drops(rx)
    assert drops[reason] == 1 and sum(drops) == 1
    assert eng.deadline(s) == 5 * SEC  # a dropped packet never moves a deadline


def test_v2_auth_mismatch_type_and_password():
    eng, rx, _ = engine()
    s = eng.add_slot(rx, 1, 2, auth_type=1, auth_data=b"secret")
    ok = adv4(version=2, auth_type=1, auth=b"secret")
    bad_pw = adv4(version=2, auth_type=1, auth=b"secreT")
    bad_type = adv4(version=2, auth_type=0)
    ev = eng.feed(rx, 0, [ok, bad_pw, bad_type])
    assert kinds(ev) == [(EV_ADVERT, s)]
    assert ev[0][2].auth_data == b"secret\0\0"
    assert eng.drops(rx)[R.R_AUTH_MISMATCH] == 2


def test_v2_without_auth_ignores_auth_data():
    # RFC 3768 5.3.6: with AuthType 0 the data is not checked.
    eng, rx, _ = engine()
    s = eng.add_slot(rx, 1, 2)
    ev = eng.feed(rx, 0, [adv4(version=2, auth=b"junk")])
    assert kinds(ev) == [(EV_ADVERT, s)]


def test_unicast_peer_check():
    eng, rx, _ = engine()
    s = eng.add_slot(rx, 1, 3, peers=[A2])
    ev = eng.feed(rx, 0, [adv4(src=A3, dst=A1), adv4(src=A2, dst=A1)])
    assert kinds(ev) == [(EV_ADVERT, s)]
    assert eng.drops(rx)[R.R_PEER] == 1


def test_set_own_replaces_list():
    eng, rx, _ = engine()
    eng.add_slot(rx, 1, 3)
    eng.set_own(rx, [A2])
    assert eng.feed(rx, 0, [adv4(src=A2)]) == []
    assert len(eng.feed(rx, 0, [adv4(src=A1)])) == 1
    assert eng.drops(rx)[R.R_OWN] == 1


def test_ipv6_feed_and_drops():
    eng = Engine(capture=True)
    rx = eng.add_rx_socket(-1, 6, own=[LL1])
    s = eng.add_slot(rx, 5, 3)
    ev = eng.feed(rx, 0, [adv6(vrid=5), adv6(vrid=5, hop=1), adv6(vrid=6), adv6(vrid=5, src=LL1)])
    assert kinds(ev) == [(EV_ADVERT, s)]
    assert ev[0][2].family == 6 and ev[0][2].src == LL2 and ev[0][2].addresses == (VIP6,)
    d = eng.drops(rx)
    assert (d[R.R_TTL], d[R.R_NO_INSTANCE], d[R.R_OWN]) == (1, 1, 1)
    with pytest.raises(ValueError):
        eng.add_slot(rx, 9, 2)  # VRRPv2 is IPv4 only (RFC 3768)


# --- master fast path ---
def test_master_sends_at_each_deadline_and_rearms():
    eng, rx, tx = engine()
    s = eng.add_slot(rx, 1, 3)
    msg = b"advert-bytes"
    eng.set_adverts(s, tx, [(GROUP4, 2, msg)])
    eng.master(s, SEC, 10 * SEC)
    assert eng.next_deadline() == 10 * SEC
    for now in (9 * SEC, 10 * SEC - 501):
        assert eng.run(now) == []
        assert eng.flush() == 0
    # Due within 0.5 ms counts as due (docs/kernel-notes.md#uvloop-timers).
    assert eng.run(10 * SEC - 500) == []
    assert eng.flush() == 1
    assert eng.take_sent() == [(s, tx, GROUP4, msg)]
    assert eng.deadline(s) == 11 * SEC
    for k in range(11, 15):
        assert eng.run(k * SEC + 200) == []
        eng.flush()
        assert eng.deadline(s) == (k + 1) * SEC
    assert len(eng.take_sent()) == 4
    st = eng.slot_stats(s)
    assert st["sent"] == 5 and st["fires"] == 5 and st["events"] == 0 and st["late"] == 0
    assert st["max_late_us"] == 200


def test_master_catch_up_skips_to_next_future_multiple():
    eng, rx, tx = engine()
    s = eng.add_slot(rx, 1, 3)
    eng.set_adverts(s, tx, [(GROUP4, 0, b"m")])
    eng.master(s, 100_000, 1 * SEC)
    # 350 ms late: one advert now (no burst of the 3 missed ones), next at the next multiple of 100 ms.
    assert eng.run(1 * SEC + 350_000) == []
    assert eng.flush() == 1
    assert eng.deadline(s) == 1 * SEC + 400_000
    st = eng.slot_stats(s)
    assert st["skipped"] == 3 and st["late"] == 1 and st["max_late_us"] == 350_000
    # A next multiple closer than the 0.5 ms window is skipped too, so two adverts never go out back to back.
    assert eng.run(1 * SEC + 499_600) == []
    assert eng.flush() == 1
    assert eng.deadline(s) == 1 * SEC + 600_000


def test_master_unicast_one_datagram_per_peer_in_one_flush():
    eng, rx, tx = engine()
    s = eng.add_slot(rx, 1, 3, peers=[A2, A3])
    eng.set_adverts(s, tx, [(A2, 0, b"to-2"), (A3, 0, b"to-3")])
    eng.master(s, SEC, SEC)
    eng.run(SEC)
    assert eng.queued() == 2
    assert eng.flush() == 2
    assert [(d, m) for _, _, d, m in eng.take_sent()] == [(A2, b"to-2"), (A3, b"to-3")]
    assert eng.tx_stats(tx)["sent"] == 2


def test_queued_adverts_survive_set_adverts_and_remove():
    eng, rx, tx = engine()
    s = eng.add_slot(rx, 1, 3)
    eng.set_adverts(s, tx, [(GROUP4, 0, b"old")])
    eng.send_now(s)
    eng.set_adverts(s, tx, [(GROUP4, 0, b"new")])
    eng.send_now(s)
    eng.remove_slot(s)
    eng.send_raw(tx, GROUP4, 0, b"prio0")
    eng.flush()
    assert [(sl, m) for sl, _, _, m in eng.take_sent()] == [(s, b"old"), (s, b"new"), (-1, b"prio0")]
    assert eng.slot_ids() == []


def test_send_raw_family_checked():
    eng, _, tx = engine()
    with pytest.raises(ValueError):
        eng.send_raw(tx, GROUP6, 0, b"x")


# --- backup fast path ---
def backup_engine(fast_path=True):
    eng, rx, tx = engine(fast_path)
    s = eng.add_slot(rx, 1, 3)
    # Master_Down_Interval for prio 100 at 1 s: 3 s + 609375 us (RFC 5798 6.1;
    # docs/rfc-checklist.md#timer-gold-values).
    eng.backup(s, A2, 200, 1000, 3_609_375, 3_609_375)
    return eng, rx, s


def test_backup_matching_advert_pushes_deadline_silently():
    eng, rx, s = backup_engine()
    assert eng.feed(rx, 1 * SEC, [adv4(prio=200)]) == []
    assert eng.deadline(s) == 1 * SEC + 3_609_375
    assert eng.next_deadline() == 1 * SEC + 3_609_375
    assert eng.feed(rx, 2 * SEC, [adv4(prio=200)] * 3) == []
    assert eng.deadline(s) == 2 * SEC + 3_609_375
    assert eng.run(2 * SEC + 3_000_000) == []
    st = eng.slot_stats(s)
    assert st["rx_fast"] == 4 and st["events"] == 0
    eng._check_heap()


@pytest.mark.parametrize(
    "changed",
    [dict(prio=150), dict(src=A3), dict(int_ms=500), dict(prio=0)],
    ids=["priority", "source", "interval", "priority0"],
)
def test_backup_changed_advert_goes_up_and_keeps_deadline(changed):
    eng, rx, s = backup_engine()
    ev = eng.feed(rx, 1 * SEC, [adv4(**{"prio": 200, **changed})])
    assert kinds(ev) == [(EV_ADVERT, s)]
    assert ev[0][2].priority == changed.get("prio", 200)
    assert eng.deadline(s) == 3_609_375  # Python decides (RFC 5798 6.4.2 S3/S4)
    assert eng.mode(s) == "backup"


def test_backup_down_timer_expiry_is_a_timer_event():
    eng, rx, s = backup_engine()
    eng.feed(rx, 1 * SEC, [adv4(prio=200)])
    assert eng.run(4 * SEC) == []
    ev = eng.run(1 * SEC + 3_609_375)
    assert ev == [(EV_TIMER, s, 1 * SEC + 3_609_375)]
    assert eng.deadline(s) == -1 and eng.mode(s) == "idle"
    # Once Python owns the slot, even the old master's advert goes up.
    assert kinds(eng.feed(rx, 5 * SEC, [adv4(prio=200)])) == [(EV_ADVERT, s)]


def test_master_slot_sends_every_advert_up():
    eng, rx, tx = engine()
    s = eng.add_slot(rx, 1, 3)
    eng.master(s, SEC, SEC)
    assert kinds(eng.feed(rx, 0, [adv4(prio=50), adv4(prio=0)])) == [(EV_ADVERT, s)] * 2


# --- fast path off: the reference ---
def test_without_fast_path_everything_goes_up():
    eng, rx, tx = engine(fast_path=False)
    m = eng.add_slot(rx, 1, 3)
    b = eng.add_slot(rx, 2, 3)
    eng.set_adverts(m, tx, [(GROUP4, 0, b"m")])
    eng.master(m, SEC, SEC)
    eng.backup(b, A2, 200, 1000, 3_609_375, 3_609_375)
    assert kinds(eng.feed(rx, SEC // 2, [adv4(vrid=2, prio=200)])) == [(EV_ADVERT, b)]
    assert eng.deadline(b) == 3_609_375
    assert eng.run(SEC) == [(EV_TIMER, m, SEC)]
    assert eng.flush() == 0 and eng.take_sent() == []
    assert eng.run(3_609_375) == [(EV_TIMER, b, 3_609_375)]
    assert eng.next_deadline() == -1


# --- the deadline heap ---
def test_timers_fire_in_deadline_order_with_slot_tiebreak():
    eng, rx, _ = engine()
    slots = [eng.add_slot(rx, v, 3) for v in range(1, 9)]
    deadlines = [50, 10, 30, 30, 70, 20, 10, 60]
    for s, d in zip(slots, deadlines, strict=True):
        eng.timer(s, d * 1000)
    assert eng.next_deadline() == 10_000
    ev = eng.run(100_000)
    assert [e[2] for e in ev] == sorted(d * 1000 for d in deadlines)
    assert [e[1] for e in ev] == [slots[i] for i in (1, 6, 5, 2, 3, 0, 7, 4)]
    assert all(e[0] == EV_TIMER for e in ev)
    assert eng.next_deadline() == -1


def test_timer_update_and_remove():
    eng, rx, _ = engine()
    a, b, c = (eng.add_slot(rx, v, 3) for v in (1, 2, 3))
    eng.timer(a, 100)
    eng.timer(b, 200)
    eng.timer(c, 300)
    eng.timer(a, 400)  # later
    eng.timer(c, 50)  # earlier
    eng.timer(b, -1)  # removed
    eng._check_heap()
    assert eng.next_deadline() == 50
    assert eng.run(10_000) == [(EV_TIMER, c, 50), (EV_TIMER, a, 400)]
    eng.timer(a, 20_000)
    eng.remove_slot(a)
    assert eng.next_deadline() == -1


def test_late_fire_counted():
    eng, rx, _ = engine()
    s = eng.add_slot(rx, 1, 3)
    eng.timer(s, SEC)
    eng.run(SEC + 2500)
    st = eng.slot_stats(s)
    assert st["late"] == 1 and st["max_late_us"] == 2500 and st["fires"] == 1


def test_5000_slots_heap_against_model():
    rnd = random.Random(5798)
    eng = Engine(max_slots=5000, capture=True)
    rxs = [eng.add_rx_socket(-1, 4) for _ in range(20)]
    slots = [eng.add_slot(rxs[i // 250], 1 + i % 250, 3) for i in range(5000)]
    model: dict[int, int] = {}
    for s in slots:
        d = rnd.randrange(0, 10 * SEC)
        eng.timer(s, d)
        model[s] = d
    for _ in range(20000):
        s = rnd.choice(slots)
        d = rnd.choice([-1, rnd.randrange(0, 10 * SEC)])
        eng.timer(s, d)
        if d < 0:
            model.pop(s, None)
        else:
            model[s] = d
    eng._check_heap()
    assert eng.next_deadline() == min(model.values())
    now = 0
    fired = []
    while now < 10 * SEC:
        now += 7_777
        fired += eng.run(now)
    want = sorted((d, s) for s, d in model.items())
    assert [(d, s) for _, s, d in fired] == want
    assert eng.next_deadline() == -1


def test_5000_backups_on_the_fast_path():
    eng = Engine(max_slots=5000, capture=True)
    rxs = [eng.add_rx_socket(-1, 4) for _ in range(20)]
    slots = [eng.add_slot(rxs[i // 250], 1 + i % 250, 3) for i in range(5000)]
    for s in slots:
        eng.backup(s, A2, 200, 100, 360_000, 360_000)
    pkts = [adv4(vrid=v, prio=200, int_ms=100) for v in range(1, 251)]
    for t in range(1, 11):
        for rx in rxs:
            assert eng.feed(rx, t * 100_000, pkts) == []
        assert eng.run(t * 100_000) == []
    assert eng.next_deadline() == 1_000_000 + 360_000
    eng._check_heap()
    assert sum(eng.slot_stats(s)["rx_fast"] for s in slots) == 50_000
    # Silence: all 5000 take over in one run, in deadline order.
    ev = eng.run(2 * SEC)
    assert len(ev) == 5000 and {e[0] for e in ev} == {EV_TIMER}


def test_bad_arguments():
    eng, rx, tx = engine()
    s = eng.add_slot(rx, 1, 3)
    with pytest.raises(ValueError):
        eng.backup(s, LL2, 100, 1000, 1, 1)  # wrong family
    with pytest.raises(ValueError):
        eng.backup(s, A2, 0, 1000, 1, 1)  # priority 0 always goes to Python
    with pytest.raises(ValueError):
        eng.master(s, 0, 1)
    with pytest.raises(ValueError):
        eng.deadline(99)
    with pytest.raises(ValueError):
        eng.set_adverts(s, tx, [(GROUP6, 0, b"x")])
    with pytest.raises(TypeError):
        eng.feed(rx, 0, ["not bytes"])
    assert _engine.EV_TIMER != _engine.EV_ADVERT


# --- differential: the fast path is an optimisation of what Python would do ---
def _scenario(fast_path: bool):
    """A master (100 ms) and a backup hearing A2 at 100 ms, then a priority change, then silence, on a virtual
    clock with jittery ticks. With the fast path off, a tiny Python driver does what the engine would do.
    Returns (sent, interesting events) with times."""
    eng, rx, tx = engine(fast_path)
    m = eng.add_slot(rx, 1, 3)
    b = eng.add_slot(rx, 2, 3)
    eng.set_adverts(m, tx, [(GROUP4, 0, b"master-1")])
    interval, down = 100_000, 360_937
    eng.master(m, interval, interval)
    eng.backup(b, A2, 200, 100, down, down)
    rnd = random.Random(9568)
    same, changed = adv4(vrid=2, prio=200, int_ms=100), adv4(vrid=2, prio=150, int_ms=100)
    sent, seen = [], []
    now = 0
    while now < 3 * SEC:
        r = rnd.random()
        if r < 0.05:
            now += 250_000  # a stalled loop: the master must skip missed intervals, not burst
        elif r < 0.1:
            now = max(now + 1, eng.next_deadline() + interval - 300)  # late by almost one interval
        elif r < 0.3 and eng.next_deadline() > now + 300:
            now = eng.next_deadline() - 300  # a wake-up just inside the 0.5 ms window
        else:
            now += rnd.randrange(1_000, 30_000)
        batch = [] if now > 2 * SEC else [same if now < SEC else changed]
        for kind, s, obj in eng.feed(rx, now, batch) + eng.run(now):
            if fast_path:
                seen.append((now, kind, s, getattr(obj, "priority", obj)))
            elif kind == EV_TIMER and s == m:
                eng.send_now(m)  # RFC 5798 6.4.3 Adver_Timer: send and re-arm, skipping missed intervals
                nd = obj + interval
                while nd <= now + 500:
                    nd += interval
                eng.timer(m, nd)
            elif kind == EV_ADVERT and s == b and obj.priority == 200 and obj.adver_int_ms == 100:
                eng.timer(b, now + down)  # RFC 5798 6.4.2: the same master, reset Master_Down_Timer
            else:
                seen.append((now, kind, s, getattr(obj, "priority", obj)))
        eng.flush()
        sent += [(now, sl, msg) for sl, _, _, msg in eng.take_sent()]
    return sent, seen


def test_fast_path_matches_python_reference():
    fast, slow = _scenario(True), _scenario(False)
    assert fast == slow
    sent, seen = fast
    assert len(sent) >= 20
    # Python saw each changed advert (priority 150: nothing pushes the deadline any more) and the backup's one
    # Master_Down timeout, one down interval after the last unchanged advert.
    timers = [(t, s) for t, k, s, _ in seen if k == EV_TIMER]
    assert len(timers) == 1 and timers[0][1] == 1
    assert SEC - 250_000 + 360_937 - 500 <= timers[0][0] <= SEC + 360_937 + 250_000
    assert {p for _, k, _, p in seen if k == EV_ADVERT} == {150}


# --- the kernel fast path's table (set_kernel_table; io/kfilter.py writes the same layout from eBPF) --------
KT_ENTRY, KT_ENTRIES = kfilter.ENTRY_SIZE, kfilter.ENTRIES  # the layout the filter and the engine share
DOWN = 3_609_375  # Master_Down_Interval at 1 s, priority 100


def kt_entry(table: bytearray, vrid: int) -> tuple[int, int, int, int, tuple[int, ...]]:
    """(words, seq, heard_ns, count, data words) of vrid's entry."""
    off = vrid * KT_ENTRY
    words, seq, heard, count = struct.unpack_from("=IIQQ", table, off)
    return words, seq, heard, count, struct.unpack_from(f"={words}I", table, off + 24)


def kt_absorb(table: bytearray, vrid: int, heard_us: int, n: int = 1) -> None:
    """What the filter does for n absorbed adverts: the time of the last one, the count."""
    off = vrid * KT_ENTRY
    (count,) = struct.unpack_from("=Q", table, off + 16)
    struct.pack_into("=QQ", table, off + 8, heard_us * 1000, count + n)


def kt_engine():
    eng, rx, tx = engine(rx_clock=False)
    table = bytearray(KT_ENTRY * KT_ENTRIES)
    eng.set_kernel_table(rx, table)
    s = eng.add_slot(rx, 1, 3)
    eng.backup(s, A2, 200, 1000, DOWN, DOWN)
    return eng, rx, s, table


def test_kernel_table_learns_the_absorbed_advert_in_host_order_words():
    eng, rx, s, table = kt_engine()
    pkt = adv4(prio=200)
    assert eng.feed(rx, 1_000_000, [pkt]) == []  # the fast path absorbs it ...
    words, seq, _heard, _count, data = kt_entry(table, 1)
    assert words == (len(pkt) - 12) // 4 and seq % 2 == 0 and seq > 0  # ... and writes the entry
    assert data == struct.unpack(f"!{words}I", pkt[12:])  # the filter's loads read network order into ints
    assert kt_entry(table, 2)[0] == 0  # other VRIDs stay off
    # A changed advert (another priority) goes up and leaves the entry as it was.
    assert kinds(eng.feed(rx, 1_100_000, [adv4(prio=150)])) == [(EV_ADVERT, s)]
    assert kt_entry(table, 1)[4] == data


def test_kernel_times_push_the_deadline_and_count_as_heard():
    eng, rx, s, table = kt_engine()
    eng.feed(rx, 1_000_000, [adv4(prio=200)])
    assert eng.deadline(s) == 1_000_000 + DOWN
    kt_absorb(table, 1, 3_000_000, n=3)  # three adverts absorbed, the last at 3 s
    assert eng.run(1_000_000 + DOWN) == []  # not due: the kernel heard the master since
    assert eng.deadline(s) == 3_000_000 + DOWN and eng.next_deadline() == 3_000_000 + DOWN
    assert eng.slot_stats(s)["rx_fast"] == 1 + 3
    assert eng.rx_stats(rx)["kernel"] == 3 and eng.rx_stats(rx)["datagrams"] == 1 + 3
    # A datagram read after an absorbed one never takes the deadline back (the later time wins).
    kt_absorb(table, 1, 5_000_000)
    eng.feed(rx, 4_000_000, [adv4(prio=200)])
    assert eng.deadline(s) == 5_000_000 + DOWN
    eng._check_heap()
    # The master falls silent: Master_Down fires one interval after the last absorbed advert.
    assert kinds(eng.run(5_000_000 + DOWN - 600)) == []
    assert eng.run(5_000_000 + DOWN) == [(EV_TIMER, s, 5_000_000 + DOWN)]


def test_kernel_time_namespace_offset_is_added():
    eng, rx, _tx = engine(rx_clock=False)
    table = bytearray(KT_ENTRY * KT_ENTRIES)
    eng.set_kernel_table(rx, table, clock_offset_ns=-1_000_000_000)  # this clock is 1 s behind the host's
    s = eng.add_slot(rx, 1, 3)
    eng.backup(s, A2, 200, 1000, DOWN, DOWN)
    eng.feed(rx, 1_000_000, [adv4(prio=200)])
    kt_absorb(table, 1, 3_000_000)  # the host's time
    assert eng.deadline(s) == 2_000_000 + DOWN


@pytest.mark.parametrize("leave", ["timer", "master", "backup", "remove", "detach"])
def test_kernel_entry_goes_off_when_the_slot_leaves_the_backup_fast_path(leave):
    eng, rx, s, table = kt_engine()
    eng.feed(rx, 1_000_000, [adv4(prio=200)])
    kt_absorb(table, 1, 2_000_000, n=5)
    if leave == "timer":
        eng.timer(s, 9_000_000)
    elif leave == "master":
        eng.master(s, 1_000_000, 9_000_000)
    elif leave == "backup":  # following again (another master): learnt again from the adverts read
        eng.backup(s, A1, 220, 1000, DOWN, 9_000_000)
    elif leave == "remove":
        stats = eng.slot_stats(s)
        eng.remove_slot(s)
    else:
        stats = eng.slot_stats(s)
        eng.set_kernel_table(rx, None)
    assert kt_entry(table, 1)[0] == 0  # the filter passes VRID 1 from now on
    if leave in ("remove", "detach"):
        assert stats["rx_fast"] == 1 + 5
    else:
        assert eng.slot_stats(s)["rx_fast"] == 1 + 5  # what the kernel absorbed stays counted
        kt_absorb(table, 1, 9_500_000)  # a late write by a filter run already past the check: ignored
        assert eng.deadline(s) == 9_000_000


def test_kernel_table_is_for_ipv4_and_big_enough():
    eng = Engine(capture=True)
    rx6 = eng.add_rx_socket(-1, 6)
    rx4 = eng.add_rx_socket(-1, 4)
    with pytest.raises(ValueError):
        eng.set_kernel_table(rx6, bytearray(KT_ENTRY * KT_ENTRIES))
    with pytest.raises(ValueError):
        eng.set_kernel_table(rx4, bytearray(KT_ENTRY * KT_ENTRIES - 1))


def test_next_deadline_within_a_horizon_is_exact_and_early_past_it():
    eng, rx, _tx = engine(rx_clock=False)
    slots = [eng.add_slot(rx, v, 3) for v in (1, 2)]
    for s in slots:
        eng.backup(s, A2, 200, 1000, DOWN, DOWN)
    eng.feed(rx, 2_000_000, [adv4(vrid=1, prio=200)])  # slot 1's deadline moves later: its key goes stale
    eng.timer(slots[1], -1)
    assert eng.next_deadline(0) == DOWN  # past the horizon: slot 1's stale key, a lower bound ...
    assert eng.next_deadline(DOWN) == 2_000_000 + DOWN  # ... repaired once the horizon reaches it
    assert eng.next_deadline(0) == 2_000_000 + DOWN
    eng._check_heap()
