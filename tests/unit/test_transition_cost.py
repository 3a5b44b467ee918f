"""A transition costs the same with 10 or 4,000 instances (issue 11): what the daemon's Port does for one
instance's takeover - its report, its address change, the address events that follow - touches that instance
only. Counted, not timed: every attribute read of any instance is counted, and the count must not depend on
how many other instances exist."""

from __future__ import annotations

import asyncio
import collections

import pytest

from fastvrrp.core.types import State, StateChanged
from fastvrrp.daemon import notify, status
from fastvrrp.daemon.port import REPORTS_WAITING, DaemonPort, Later
from fastvrrp.io import netlink

READS = collections.Counter()


class Counted:
    """Counts every attribute read made on it (and on what hangs from it) into READS."""

    def __getattribute__(self, name: str):
        if not name.startswith("__"):
            READS["reads"] += 1
        return object.__getattribute__(self, name)


class Core(Counted):
    def __init__(self) -> None:
        self.state = State.BACKUP
        self.priority = 100


class Io(Counted):
    def __init__(self, vips: list[netlink.VipSpec]) -> None:
        self.vips = vips
        self.add_batch = netlink.AddrBatch(vips)
        self.no_accept = False
        self.routes = ()
        self.scripts = notify.NO_SCRIPTS
        self.sender = Sender()
        self.pace = None  # no GARP interval: announcements go out with the turn's reports


class Sender(Counted):
    def __init__(self) -> None:
        self.frames = 0

    def send(self, frames: list[bytes]) -> int:
        self.frames += len(frames)
        return len(frames)


class Announcer(Counted):
    def __init__(self) -> None:
        self.active = False
        self.epoch = 0


class Inst(Counted):
    def __init__(self, n: int) -> None:
        self.name = f"VI_{n}"
        seg, vrid = divmod(n, 250)
        vip = netlink.VipSpec(f"198.51.100.{vrid + 1}", 32, seg + 2)
        self.io = Io([vip])
        self.core = Core()
        self.holds_addresses = False
        self.changed_us = 0  # no decision time from a driver: the port stamps the report itself
        self.announcer = Announcer()


class Engine:
    def flush(self) -> int:
        return 0


class Worker:
    """The netlink worker's batch call, answering as the kernel does when every change works."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    async def fast_apply(self, ops):
        self.batches.append(len(ops))
        out = []
        for batch, _add in ops:
            r = netlink.ApplyResult()
            r.done.extend(batch.specs)
            out.append(r)
        return out


async def _idle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def _take_addresses(port: DaemonPort, inst: Inst) -> Inst:
    """`inst` is master and asks the port for its VIPs (as the driver does on becoming master)."""
    inst.core.state = State.MASTER
    inst.holds_addresses = True
    port.addresses(inst, True)
    return inst


def _port(n: int, book: status.StatusBook, writes: list[int]) -> tuple[DaemonPort, dict[str, Inst], Worker]:
    loop = asyncio.get_running_loop()
    insts = {i.name: i for i in (Inst(k) for k in range(n))}
    nl = Worker()
    notifier = notify.Notifier(loop, None)
    port = DaemonPort(
        loop, Engine(), nl, insts, notifier, lambda name: None, book, lambda: writes.append(1), None
    )
    return port, insts, nl


async def _one_takeover(n: int, tmp_path) -> tuple[int, int]:
    """Reads made for one instance's takeover and give-back among n, and the address batches sent."""
    book = status.StatusBook(str(tmp_path / f"status-{n}.json"))
    writes: list[int] = []
    port, insts, nl = _port(n, book, writes)
    # Every other instance is master and holds its VIP: the ones a walk would visit.
    for inst in list(insts.values())[1:]:
        _take_addresses(port, inst)
    await port.settle()
    target = insts["VI_0"]
    READS.clear()
    target.core.state = State.MASTER
    target.holds_addresses = True
    target.announcer.active = True
    port.transition(target, StateChanged(State.BACKUP, State.MASTER, "master down timer expired"))
    port.addresses(target, True)
    port.announce(target, [b"garp"])
    await _idle()
    await port.settle()
    vip = target.io.vips[0]
    port.on_addr(vip.ifindex, 2, vip.address, 32, True)  # our own add coming back
    port.on_addr(99, 2, "192.0.2.77", 32, False)  # someone's address, not a VIP
    target.core.state = State.BACKUP
    target.holds_addresses = False
    target.announcer.active = False
    port.transition(target, StateChanged(State.MASTER, State.BACKUP, "higher priority advert"))
    port.addresses(target, False)
    port.on_addr(vip.ifindex, 2, vip.address, 32, False)  # our own removal coming back (IPv6: no sender)
    await _idle()
    await port.settle()
    assert book.since["VI_0"][1] == "higher priority advert"
    assert target.io.sender.frames == 1
    assert port.put_back == 0
    return READS["reads"], len(nl.batches)


def test_a_transition_reads_the_same_with_10_or_4000_instances(tmp_path):
    async def main():
        small = await _one_takeover(10, tmp_path)
        large = await _one_takeover(4000, tmp_path)
        return small, large

    (small_reads, small_batches), (large_reads, large_batches) = asyncio.run(main())
    assert small_reads == large_reads
    assert small_reads < 200  # a handful of attributes of one instance, not a walk
    assert small_batches == large_batches


def test_a_mass_takeover_is_one_address_batch(tmp_path):
    async def main():
        book = status.StatusBook(str(tmp_path / "status.json"))
        writes: list[int] = []
        port, insts, nl = _port(1000, book, writes)
        for inst in insts.values():
            inst.core.state = State.MASTER
            inst.holds_addresses = True
            port.transition(inst, StateChanged(State.BACKUP, State.MASTER, "master down timer expired"))
            port.addresses(inst, True)
        await port.settle()
        return nl.batches, writes, book

    batches, writes, book = asyncio.run(main())
    assert batches == [1000]  # one trip to the worker for the whole takeover
    assert len(book.since) == 1000
    assert 1 <= len(writes) <= 10  # status writes asked per piece of reports, not per transition


def test_a_vip_removed_behind_a_masters_back_goes_back_once(tmp_path):
    async def main():
        port, insts, nl = _port(3, status.StatusBook(str(tmp_path / "s.json")), [])
        inst = _take_addresses(port, insts["VI_1"])
        await port.settle()
        vip = inst.io.vips[0]
        port.on_addr(vip.ifindex, 2, vip.address, 32, False)  # someone else removed it
        port.on_addr(vip.ifindex, 2, vip.address, 32, False)  # again before the put-back went: no second
        await port.settle()
        await _idle()
        await port.settle()
        return port.put_back, nl.batches

    put_back, batches = asyncio.run(main())
    assert put_back == 1  # one warning
    assert batches == [1, 1, 1]  # the first add, the put-back, one reconciling add once idle


def test_removal_seen_while_our_change_is_in_flight_is_checked_once_idle(tmp_path):
    async def main():
        port, insts, nl = _port(2, status.StatusBook(str(tmp_path / "s.json")), [])
        inst = _take_addresses(port, insts["VI_0"])
        vip = inst.io.vips[0]
        port.on_addr(vip.ifindex, 2, vip.address, 32, False)  # while the add is still to go: no put-back
        assert port.put_back == 0
        await port.settle()
        await _idle()
        await port.settle()
        return nl.batches, port.put_back

    batches, put_back = asyncio.run(main())
    assert put_back == 0
    assert batches == [1, 1]  # the add, then one reconciling add once idle


def test_later_runs_in_order_in_pieces():
    async def main():
        loop = asyncio.get_running_loop()
        later = Later(loop, budget_s=0.0)  # one item per loop callback
        seen: list[int] = []
        for k in range(5):
            later.add(seen.append, k)
        await asyncio.sleep(0)
        first = list(seen)
        later.drain()
        return first, seen

    first, seen = asyncio.run(main())
    assert len(first) < 5
    assert seen == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("n", [10, 4000])
def test_the_vip_index_holds_only_what_masters_hold(n, tmp_path):
    async def main():
        port, insts, _nl = _port(n, status.StatusBook(str(tmp_path / "s.json")), [])
        inst = insts["VI_0"]
        port.addresses(inst, True)
        held = dict(port.held)
        port.addresses(inst, False)
        await port.settle()
        return held, port.held

    held, after = asyncio.run(main())
    assert list(held) == [(2, "198.51.100.1")]
    assert after == {}


def test_a_storm_is_folded_per_instance_not_queued_without_end(tmp_path, caplog):
    """A peer flapping every instance, or a loop too starved to run its deferred work, makes transitions,
    announcements and lower-priority reports faster than `Later` runs them: each instance keeps a bounded
    number waiting, later ones are folded in, and the last report names the state the instance ended in."""

    async def main():
        book = status.StatusBook(str(tmp_path / "s.json"))
        port, insts, _nl = _port(10, book, [])
        states = (State.BACKUP, State.MASTER)
        for k in range(1001):  # no loop turn in between: nothing deferred runs; it ends MASTER
            for inst in insts.values():
                inst.core.state = states[(k + 1) % 2]
                inst.announcer.active = inst.core.state is State.MASTER
                inst.announcer.epoch = k // 2
                port.transition(inst, StateChanged(states[k % 2], states[(k + 1) % 2], f"change {k}"))
                port.announce(inst, [b"garp", b"garp"])
                port.lower_priority(inst, 50 + k % 7)
        waiting = len(port.later.items)
        await port.settle()
        return port, insts, book, waiting

    with caplog.at_level("INFO", logger="fastvrrp"):
        port, insts, book, waiting = asyncio.run(main())
    # 10 instances: REPORTS_WAITING reports, one announcement and one lower-priority report each
    assert waiting == 10 * (REPORTS_WAITING + 2)
    assert port.folded == {
        "report": 10 * (1001 - REPORTS_WAITING),
        "announce": 10 * 500,
        "lower_priority": 10000,
    }
    assert not port._reports and not port._frames and not port._lower
    for inst in insts.values():
        assert book.since[inst.name][1] == "change 1000"  # the last transition's reason and state
        assert inst.io.sender.frames == 2  # the frames of the last mastership (epoch 500), once
    log = caplog.text
    entering = [line for line in log.splitlines() if "(VI_3) Entering" in line]
    assert len(entering) == REPORTS_WAITING and entering[-1].endswith("Entering MASTER STATE")
    assert f"(VI_3) {1001 - REPORTS_WAITING} more transition(s) folded into this report" in log
    assert "(VI_3) received lower priority (56) advert (1000 more since the last report)" in log
