"""The convergence property: whatever the network did, once it heals exactly one MASTER remains per VRID, and
with preemption on everywhere it is the router with the highest priority.

A note on ties: two *backups* never compare addresses (RFC 5798 6.4.2 accepts an advert whose priority is
greater than or equal to the local one), so among equal top priorities whichever became master first stays
master; the address tie-break (S8) only settles two simultaneous masters. The property therefore asserts the
highest priority, and the exact router when that priority is unique.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lan import Lan, Link, ip

from fastvrrp.core import InstanceParams, State

MS = 1000  # the sim's clock is in us, like the core's
SEC = 1_000_000
CHAOS_US = 20 * SEC


@dataclass(frozen=True)
class Scenario:
    vrids: tuple[int, ...]
    version: dict[int, int]
    family: dict[int, int]
    nodes: tuple[str, ...]
    configs: dict[str, tuple[InstanceParams, ...]]
    faults: tuple[tuple[int, str, tuple], ...]
    seed: int


@st.composite
def scenarios(draw, preempt_everywhere: bool) -> Scenario:
    n = draw(st.integers(2, 4))
    names = tuple(f"r{i}" for i in range(n))
    hosts = draw(st.lists(st.integers(1, 254), min_size=n, max_size=n, unique=True))
    vrids = tuple(draw(st.lists(st.integers(1, 255), min_size=1, max_size=2, unique=True)))
    version = {v: draw(st.sampled_from((2, 3))) for v in vrids}
    family = {v: 4 if version[v] == 2 else draw(st.sampled_from((4, 6))) for v in vrids}
    configs: dict[str, list[InstanceParams]] = {name: [] for name in names}
    for v in vrids:
        owner = draw(st.one_of(st.none(), st.sampled_from(names)))
        for name, host in zip(names, hosts, strict=True):
            # few distinct values, so equal priorities (the S8 address tie-break) come up often
            prio = 255 if name == owner else draw(st.one_of(st.sampled_from((100, 150)), st.integers(1, 254)))
            if version[v] == 2:
                interval = draw(st.sampled_from((1000, 2000)))
            else:
                interval = draw(st.sampled_from((100, 200, 500, 1000)))  # v3 backups learn the master's
            if family[v] == 4:
                primary, vips = ip(f"192.0.2.{host}"), (ip(f"198.51.100.{v}"),)
            else:
                primary, vips = ip(f"2001:db8::{host:x}"), (ip(f"2001:db8:1::{v:x}"),)
            configs[name].append(
                InstanceParams(
                    name=f"{name}-{v}",
                    vrid=v,
                    priority=prio,
                    version=version[v],
                    family=family[v],
                    adver_int_ms=interval,
                    preempt=True if preempt_everywhere else draw(st.booleans()),
                    preempt_delay_ms=draw(st.sampled_from((0, 0, 0, 1500))),
                    primary_ip=primary,
                    addresses=vips,
                    lower_prio_no_advert=draw(st.booleans()),
                    higher_prio_send_advert=draw(st.booleans()),
                )
            )
        if version[v] == 2:  # RFC 3768 7.1: v2 peers must agree on the interval, or they drop each other
            iv = configs[names[0]][-1].adver_int_ms
            for name in names:
                c = configs[name][-1]
                configs[name][-1] = replace(c, adver_int_ms=iv)
    fault = st.one_of(
        st.tuples(
            st.integers(0, CHAOS_US),
            st.just("link"),
            # loss, delay range in us (up to 30 ms / 300 ms: sub-ms delays reorder too), duplication
            st.tuples(
                st.floats(0, 0.6), st.integers(0, 30 * MS), st.integers(0, 300 * MS), st.floats(0, 0.4)
            ),
        ),
        st.tuples(
            st.integers(0, CHAOS_US), st.just("partition"), st.tuples(*[st.integers(0, 1) for _ in names])
        ),
        st.tuples(st.integers(0, CHAOS_US), st.just("crash"), st.tuples(st.sampled_from(names))),
        st.tuples(st.integers(0, CHAOS_US), st.just("start"), st.tuples(st.sampled_from(names))),
        st.tuples(st.integers(0, CHAOS_US), st.just("shutdown"), st.tuples(st.sampled_from(names))),
        st.tuples(
            st.integers(0, CHAOS_US), st.just("fault"), st.tuples(st.sampled_from(names), st.booleans())
        ),
    )
    faults = tuple(draw(st.lists(fault, max_size=8)))
    return Scenario(
        vrids=vrids,
        version=version,
        family=family,
        nodes=names,
        configs={k: tuple(v) for k, v in configs.items()},
        faults=faults,
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def run(sc: Scenario) -> tuple[Lan, int]:
    lan = Lan(seed=sc.seed)
    for name in sc.nodes:
        lan.add(name, *sc.configs[name])
        lan.start(name)

    def set_link(loss: float, dmin: int, dmax: int, dup: float) -> None:
        lan.link = Link(loss=loss, delay_min_us=min(dmin, dmax), delay_max_us=max(dmin, dmax), dup=dup)

    def partition(*groups: int) -> None:
        lan.partition(dict(zip(sc.nodes, groups, strict=True)))

    def alive_only(fn):
        def call(name, *args):
            if lan.nodes[name].alive:
                fn(name, *args)

        return call

    def dead_only(name: str) -> None:
        if not lan.nodes[name].alive:
            lan.start(name)

    def fault(name: str, on: bool) -> None:
        node = lan.nodes[name]
        for vrid, inst in node.instances.items():
            lan._apply(node, vrid, inst.set_fault(on, lan.now))

    actions = {
        "link": set_link,
        "partition": partition,
        "crash": alive_only(lan.crash),
        "start": dead_only,
        "shutdown": alive_only(lan.shutdown),
        "fault": alive_only(fault),
    }
    for t, kind, args in sc.faults:
        lan.at(t, actions[kind], *args)
    lan.run_until(CHAOS_US)

    # heal: a clean segment, everyone up and out of FAULT
    lan.heal()
    for name in sc.nodes:
        node = lan.nodes[name]
        if node.alive:
            fault(name, False)
        else:
            lan.start(name)
    max_interval = max(c.adver_int_ms for cs in sc.configs.values() for c in cs)
    max_delay = max(c.preempt_delay_ms for cs in sc.configs.values() for c in cs)
    # worst case: a preempting backup waits out its delay, then one Master_Down_Interval (< 4 intervals)
    settle = (2 * (max_delay + 4 * max_interval) + 1000) * MS
    lan.run_until(CHAOS_US + settle)
    return lan, settle


def check_one_master(lan: Lan, sc: Scenario) -> None:
    for v in sc.vrids:
        masters = lan.masters(v)
        assert len(masters) == 1, (v, masters, lan.changes[-10:])
        assert lan.holders(v) == masters, (v, lan.holders(v), masters)  # the VIPs live on the master only
        for name in sc.nodes:
            inst = lan.nodes[name].instances[v]
            assert inst.state in (State.MASTER, State.BACKUP)


SIM = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SIM
@given(scenarios(preempt_everywhere=False))
def test_exactly_one_master_per_vrid_after_healing(sc: Scenario):
    """RFC 5798 6.4: after any mix of loss, delay, duplication, partitions, crashes, restarts, graceful
    shutdowns and FAULTs, a healed segment ends with exactly one MASTER per VRID (nopreempt allowed)."""
    lan, _ = run(sc)
    check_one_master(lan, sc)
    # and it stays that way: nobody changes state in a further quiet stretch
    n = len(lan.changes)
    lan.run_until(lan.now + 10 * SEC)
    assert lan.changes[n:] == []


@SIM
@given(scenarios(preempt_everywhere=True))
def test_with_preemption_everywhere_the_highest_priority_wins(sc: Scenario):
    """RFC 5798 6.4.2 (S4) + 6.4.3 (S8): with Preempt_Mode everywhere the master after healing has the
    highest priority (the exact router when that priority is unique)."""
    lan, _ = run(sc)
    check_one_master(lan, sc)
    for v in sc.vrids:
        prios = {name: next(c.priority for c in sc.configs[name] if c.vrid == v) for name in sc.nodes}
        (m,) = lan.masters(v)
        best = max(prios.values())
        assert prios[m] == best, (v, m, prios)
        top = [name for name, p in prios.items() if p == best]
        if len(top) == 1:
            assert m == top[0]


def test_the_property_can_fail_two_isolated_halves_keep_two_masters():
    """The checker is not vacuous: without healing, a partitioned segment has two masters."""
    configs = [
        InstanceParams(name=f"r{i}", vrid=5, priority=100 + i, primary_ip=ip(f"192.0.2.{i + 1}"))
        for i in range(2)
    ]
    lan = Lan(seed=3)
    for i, c in enumerate(configs):
        lan.add(f"r{i}", c)
        lan.start(f"r{i}")
    lan.partition({"r0": 0, "r1": 1})
    lan.run_until(10 * SEC)
    assert sorted(lan.masters(5)) == ["r0", "r1"]
    lan.heal()
    lan.run_until(15 * SEC)
    assert lan.masters(5) == ["r1"]
