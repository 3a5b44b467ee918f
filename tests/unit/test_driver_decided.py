"""A transition carries when it was decided (RunningInstance.changed_us): for a Master_Down fire, the clock
reading the engine's run compared the deadlines with (before it read its sockets), not a later reading taken
while the driver works through a long list of events. The daemon's report of the transition runs later still
(docs/kernel-notes.md#decision-time); tests/chaos/test_starvation.py judges each takeover by this time."""

from __future__ import annotations

import ipaddress

from fastvrrp import _engine
from fastvrrp.core.instance import VrrpInstance
from fastvrrp.core.types import InstanceParams, State, StateChanged
from fastvrrp.daemon.driver import CLOCK_EVERY, Driver, RunningInstance, make_templates
from fastvrrp.io.announce import AnnounceSchedule

SRC = ipaddress.ip_address("192.0.2.2").packed
MCAST = ipaddress.ip_address("224.0.0.18").packed


class Port:
    def __init__(self) -> None:
        self.changes: list[tuple[str, StateChanged, int]] = []

    def addresses(self, inst: RunningInstance, add: bool) -> None:
        pass

    def announce(self, inst: RunningInstance, frames: list[bytes]) -> None:
        pass

    def transition(self, inst: RunningInstance, change: StateChanged) -> None:
        self.changes.append((inst.name, change, inst.changed_us))

    def lower_priority(self, inst: RunningInstance, priority: int) -> None:
        pass


def backups(n: int) -> tuple[Driver, Port, list[RunningInstance]]:
    eng = _engine.Engine(capture=True)
    rx = eng.add_rx_socket(-1, 4, own=[SRC])
    tx = eng.add_tx_socket(-1, 4)
    port = Port()
    driver = Driver(eng, port)
    insts = []
    for k in range(n):
        vrid = k + 1
        cfg = InstanceParams(name=f"VI_{vrid}", vrid=vrid, priority=100, adver_int_ms=10, primary_ip=SRC)
        inst = RunningInstance(
            name=cfg.name,
            core=VrrpInstance(cfg),
            slot=eng.add_slot(rx, vrid, 3),
            tx_id=tx,
            ifindex=1,
            adver_int_ms=10,
            dests=[MCAST],
            templates=make_templates(
                version=3,
                family=4,
                vrid=vrid,
                priority=100,
                adver_int_ms=10,
                addresses=[],
                src=SRC,
                dests=[MCAST],
            ),  # fmt: skip
            announcer=AnnounceSchedule([], []),
        )
        driver.add(inst)
        driver.start(inst, 0)
        insts.append(inst)
    return driver, port, insts


def test_a_master_down_fire_is_decided_at_the_runs_clock_reading():
    n = 3 * CLOCK_EVERY  # long enough a list for the driver to read the clock again while handling it
    driver, port, insts = backups(n)
    assert all(i.core.state is State.BACKUP for i in insts)
    port.changes.clear()
    t = 1_000_000  # every Master_Down deadline (about 36 ms after the start) is past
    later = [t]

    def clock() -> int:
        later[0] += 5_000  # handling the list takes time: each reading is 5 ms later
        return later[0]

    driver.tick(t, clock)
    takeovers = [(name, at) for name, ch, at in port.changes if ch.new is State.MASTER]
    assert len(takeovers) == n and later[0] > t  # all fired in one run, and the clock moved meanwhile
    assert {at for _, at in takeovers} == {t}


def test_any_other_transition_is_decided_at_the_callers_clock_reading():
    driver, port, insts = backups(1)
    inst = insts[0]
    driver.tick(1_000_000)  # no master heard: it takes over at the run's reading
    assert inst.core.state is State.MASTER and inst.changed_us == 1_000_000
    driver.shutdown(inst, 1_250_000)  # SIGTERM: it resigns then
    assert port.changes[-1][1].new is State.INIT and port.changes[-1][2] == 1_250_000
