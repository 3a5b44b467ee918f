"""The fast path is an optimisation, never a second definition of the protocol (docs/DESIGN.md#the-fast-path).

Several routers, each the daemon's real `Driver` on a capture-mode engine, on a virtual LAN with a virtual
microsecond clock: what one engine sends is wrapped in an IPv4 header and fed to the others' engines. Every
scenario runs twice, with the fast path on and off, and must give the same transitions at the same times and
the same packets at the same times - while the fast path really does take the steady state off Python.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import random
import struct
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from fastvrrp import _engine, _wire
from fastvrrp.core.instance import VrrpInstance
from fastvrrp.core.types import InstanceParams, StateChanged
from fastvrrp.daemon.driver import Driver, RunningInstance, make_templates
from fastvrrp.io.announce import AnnounceSchedule

VRID = 51
VIP = ipaddress.ip_address("192.0.2.100").packed
MCAST = ipaddress.ip_address("224.0.0.18").packed
DELAY_US = 150  # one-way delay on the simulated wire


def ip4(src: bytes, dst: bytes, msg: bytes) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(msg), 0, 0, 255, 112, 0, src, dst)
    return hdr[:10] + struct.pack("!H", _wire.checksum(hdr)) + hdr[12:] + msg


@dataclass
class Recorder:
    """The Port: records what the driver asks of the outside world."""

    name: str
    log: list
    clock: list

    def addresses(self, inst: RunningInstance, add: bool) -> None:
        self.log.append((self.clock[0], self.name, "add" if add else "del"))

    def announce(self, inst: RunningInstance, frames: list[bytes]) -> None:
        self.log.append((self.clock[0], self.name, "announce", len(frames)))

    def transition(self, inst: RunningInstance, change: StateChanged) -> None:
        self.log.append((self.clock[0], self.name, change.new.name))


@dataclass
class Router:
    name: str
    addr: bytes
    cfg: InstanceParams
    fast: bool
    log: list
    clock: list
    copies: tuple[int, int] = (1, 0)  # advert_copies, advert_copy_delay_ms
    driver: Driver = field(init=False)
    inst: RunningInstance = field(init=False)
    rx: int = field(init=False)
    alive: bool = False

    def boot(self, now: int) -> None:
        eng = _engine.Engine(capture=True, fast_path=self.fast)
        self.rx = eng.add_rx_socket(-1, 4, own=[self.addr])
        tx = eng.add_tx_socket(-1, 4)
        slot = eng.add_slot(self.rx, VRID, self.cfg.version)
        self.driver = Driver(eng, Recorder(self.name, self.log, self.clock))
        cfg = self.cfg
        self.inst = RunningInstance(
            name=self.name,
            core=VrrpInstance(cfg),
            slot=slot,
            tx_id=tx,
            ifindex=1,
            adver_int_ms=cfg.adver_int_ms,
            dests=[MCAST],
            templates=make_templates(
                version=cfg.version,
                family=4,
                vrid=VRID,
                priority=cfg.priority,
                adver_int_ms=cfg.adver_int_ms,
                addresses=[VIP],
                src=self.addr,
                dests=[MCAST],
            ),
            announcer=AnnounceSchedule([b"garp"], []),
            advert_copies=self.copies[0],
            advert_copy_delay_ms=self.copies[1],
        )
        self.driver.add(self.inst)
        self.alive = True
        self.driver.start(self.inst, now)


class Lan:
    def __init__(self, routers: list[Router]) -> None:
        self.routers = routers
        self.clock = routers[0].clock
        self.wire: list[tuple[int, int, int, bytes]] = []  # (deliver_at, seq, to_index, packet)
        self.seq = itertools.count()
        self.sent: list[tuple[int, str, int]] = []  # (time, router, priority)

    def collect(self, now: int) -> None:
        for i, r in enumerate(self.routers):
            if not r.alive:
                continue
            r.driver.engine.flush()  # what the daemon does after every wake-up
            for _slot, _tx, dest, msg in r.driver.engine.take_sent():
                self.sent.append((now, r.name, msg[2]))
                pkt = ip4(r.addr, dest, msg)
                for j in range(len(self.routers)):
                    if j != i:
                        heapq.heappush(self.wire, (now + DELAY_US, next(self.seq), j, pkt))

    def run_until(self, t_end: int) -> None:
        while True:
            cands = [r.driver.next_deadline() for r in self.routers if r.alive]
            cands = [c for c in cands if c >= 0]
            t_timer = min(cands) if cands else None
            t_wire = self.wire[0][0] if self.wire else None
            nxt = min(t for t in (t_timer, t_wire) if t is not None) if (t_timer or t_wire) else None
            if nxt is None or nxt > t_end:
                self.clock[0] = t_end
                return
            self.clock[0] = nxt
            if t_wire is not None and t_wire == nxt:
                _, _, j, pkt = heapq.heappop(self.wire)
                r = self.routers[j]
                if r.alive:
                    r.driver.handle(r.driver.engine.feed(r.rx, nxt, [pkt]), nxt)
            else:
                for r in self.routers:
                    if r.alive and r.driver.next_deadline() == nxt:
                        r.driver.tick(nxt)
            self.collect(nxt)

    def crash(self, i: int) -> None:
        self.routers[i].alive = False  # it just stops: nothing in or out

    def stop(self, i: int, now: int) -> None:
        r = self.routers[i]
        r.driver.shutdown(r.inst, now)
        self.collect(now)
        r.alive = False


def scenario(
    fast: bool,
    prios: list[int],
    script: list[tuple[int, str, int, int]],
    version: int = 3,
    adver_int_ms: int = 100,
    preempt: list[bool] | None = None,
    copies: tuple[int, int] = (1, 0),
):
    log: list = []
    clock = [0]
    routers = []
    for i, p in enumerate(prios):
        cfg = InstanceParams(
            name=f"r{i}",
            vrid=VRID,
            priority=p,
            version=version,
            adver_int_ms=adver_int_ms,
            preempt=True if preempt is None else preempt[i],
            primary_ip=bytes([192, 0, 2, i + 1]),
            addresses=(VIP,),
        )
        routers.append(Router(f"r{i}", bytes([192, 0, 2, i + 1]), cfg, fast, log, clock, copies))
    lan = Lan(routers)
    for at_ms, what, who, arg in sorted(script):
        lan.run_until(at_ms * 1000)
        now = at_ms * 1000
        r = routers[who]
        if what == "boot" and not r.alive:
            r.boot(now)
        elif what == "crash" and r.alive:
            lan.crash(who)
        elif what == "stop" and r.alive:
            lan.stop(who, now)
        elif what == "prio" and r.alive:
            r.driver.set_priority(r.inst, arg, now)
        elif what == "fault" and r.alive:
            r.driver.set_fault(r.inst, bool(arg), now)
        elif what == "drain" and r.alive:
            r.driver.set_drain(r.inst, bool(arg), now)
        lan.collect(now)
    lan.run_until(max((e[0] for e in script), default=0) * 1000 + 2_000_000)
    stats = [r.driver.engine.slot_stats(r.inst.slot) for r in routers if hasattr(r, "inst")]
    return log, lan.sent, stats


BASE = [
    (0, "boot", 0, 0),
    (30, "boot", 1, 0),
    (60, "boot", 2, 0),
    (2000, "crash", 0, 0),
    (3000, "prio", 2, 210),
    (4000, "fault", 1, 1),
    (4500, "fault", 1, 0),
    (5200, "boot", 0, 0),
    (7000, "stop", 2, 0),
    (9000, "stop", 0, 0),
]


def test_fast_path_on_and_off_agree_on_every_transition_and_packet():
    on = scenario(True, [200, 150, 100], BASE)
    off = scenario(False, [200, 150, 100], BASE)
    assert on[0] == off[0]  # transitions, address changes, announcements: same order, same microsecond
    assert on[1] == off[1]  # every advert: same time, sender and priority
    names = [e[2] for e in on[0]]
    assert names.count("MASTER") >= 4  # the scenario really moves mastership around
    # With the fast path, the steady state stays in the engine: most adverts never reached Python.
    fast_rx = sum(s.get("rx_fast", 0) for s in on[2])
    assert fast_rx > 100, on[2]
    assert sum(s.get("rx_fast", 0) for s in off[2]) == 0


def test_fast_path_agrees_for_v2_and_nopreempt():
    script = [(0, "boot", 0, 0), (500, "boot", 1, 0), (4000, "crash", 1, 0), (9000, "boot", 1, 0)]
    for kw in ({"version": 2, "adver_int_ms": 1000}, {"preempt": [False, False]}):
        on = scenario(True, [100, 200], script, **kw)
        off = scenario(False, [100, 200], script, **kw)
        assert on[:2] == off[:2]


def test_fast_path_agrees_for_drain_and_undrain():
    """Operator drain: the master resigns with priority 0 and follows at priority 1; a drained last survivor
    takes over; undrain preempts back. Same transitions and packets either way."""
    script = [
        (0, "boot", 0, 0),
        (30, "boot", 1, 0),
        (1000, "drain", 0, 1),
        (2500, "drain", 1, 1),
        (3000, "drain", 0, 0),
        (5000, "crash", 0, 0),
        (7000, "drain", 1, 0),
    ]
    on = scenario(True, [200, 100], script)
    off = scenario(False, [200, 100], script)
    assert on[:2] == off[:2]
    assert (1_000_000, "r0", 0) in on[1]  # the drain's priority-0 advert
    masters = [(e[0], e[1]) for e in on[0] if e[2] == "MASTER"]
    assert [who for _, who in masters] == ["r0", "r1", "r0", "r1"], masters


def test_fast_path_agrees_with_advert_copies():
    """advert_copies 3, 45 ms apart: every advert - periodic (the engine's fast path), a takeover's, one at
    a new priority, an S9 reply - goes out three times, on and off the fast path alike; a master that steps
    down sends no copy of its last advert afterwards."""
    on = scenario(True, [200, 150, 100], BASE, copies=(3, 45))
    off = scenario(False, [200, 150, 100], BASE, copies=(3, 45))
    assert on[0] == off[0]
    assert on[1] == off[1]
    single = scenario(True, [200, 150, 100], BASE)
    assert [e[2] for e in on[0]] == [e[2] for e in single[0]]  # the same story as with single adverts
    sent = on[1]
    # The steady state: each of r0's adverts (100 ms apart) is followed by its two copies, 45 ms apart.
    base = [t for t, who, _ in single[1] if who == "r0" and 1_000_000 <= t < 1_900_000]
    assert len(base) == 9
    want = sorted(t + k * 45_000 for t in base for k in range(3))
    assert [t for t, who, _ in sent if who == "r0" and base[0] <= t <= want[-1]] == want
    # Every advert has its copies: the count of each (sender, priority) is a multiple of 3, apart from the
    # priority-0 resignations (sent once) and adverts cut short by a step-down.
    assert sum(s.get("copies", 0) for s in on[2]) > 100
    assert sum(s.get("copies", 0) for s in on[2]) == sum(s.get("copies", 0) for s in off[2])
    # No copy after a master stepped down: no advert at a priority above 0 from a router in the 90 ms after
    # it logged BACKUP, FAULT or INIT (the copies of its last advert would fall there).
    downs = [(e[0], e[1]) for e in on[0] if e[2] in ("BACKUP", "FAULT", "INIT")]
    for t, who in downs:
        late = [x for x in sent if x[1] == who and t < x[0] <= t + 90_000 and x[2] > 0]
        assert not late, (t, who, late)
    # ... and the scenario has step-downs with copies pending (the master sent within the 90 ms before).
    assert any(x[1] == who and t - 90_000 < x[0] <= t for t, who in downs for x in sent)


events = st.tuples(
    st.integers(0, 8000),
    st.sampled_from(["boot", "crash", "stop", "prio", "fault", "drain"]),
    st.integers(0, 2),
    st.integers(1, 254),
)


@settings(max_examples=100, deadline=None)
@given(
    prios=st.lists(st.integers(1, 254), min_size=3, max_size=3),
    script=st.lists(events, max_size=12),
    preempt=st.lists(st.booleans(), min_size=3, max_size=3),
    seed=st.integers(0, 2**16),
    copies=st.sampled_from([(1, 0), (2, 5), (3, 20)]),
)
def test_fast_path_differential_random(prios, script, preempt, seed, copies):
    rnd = random.Random(seed)
    boots = [(rnd.randrange(0, 300), "boot", i, 0) for i in range(3)]
    script = boots + [(t, w, who, a if w not in ("fault", "drain") else a % 2) for t, w, who, a in script]
    on = scenario(True, prios, script, preempt=preempt, copies=copies)
    off = scenario(False, prios, script, preempt=preempt, copies=copies)
    assert on[0] == off[0]
    assert on[1] == off[1]
