"""Failover on the simulated LAN, every advert through the real codec, with exact virtual times in us (the
RFC 5798 6.1 values are whole microseconds here, so the takeover times are exact, not within a ms)."""

from __future__ import annotations

from lan import Lan, ip

from fastvrrp.core import InstanceParams, State

VIP = ip("192.0.2.100")
MS = 1000  # us
SEC = 1_000_000  # us


def three_nodes(version: int = 3, family: int = 4, adver_int_ms: int = 1000, **kw) -> Lan:
    lan = Lan(seed=1)
    if family == 4:
        addrs = {"a": ip("192.0.2.1"), "b": ip("192.0.2.2"), "c": ip("192.0.2.3")}
        vips: tuple[bytes, ...] = (VIP,)
    else:
        addrs = {"a": ip("2001:db8::1"), "b": ip("2001:db8::2"), "c": ip("2001:db8::3")}
        vips = (ip("2001:db8::100"),)
    for name, prio in (("a", 200), ("b", 150), ("c", 100)):
        cfg = InstanceParams(
            name=name,
            vrid=7,
            priority=prio,
            version=version,
            family=family,
            adver_int_ms=adver_int_ms,
            primary_ip=addrs[name],
            addresses=vips,
            **kw,
        )
        lan.add(name, cfg)
    for name in "abc":
        lan.start(name)
    return lan


def test_startup_converges_to_the_highest_priority():
    """RFC 5798 6.4.2 (S2, S4): all start as backups; the best one's Master_Down_Timer (3218750 us) fires
    first and its advert keeps the others down."""
    lan = three_nodes()
    lan.run_until(10 * SEC)
    assert lan.masters(7) == ["a"] and lan.holders(7) == ["a"]
    assert lan.became_master("a", 7) == 3_218_750
    assert lan.became_master("b", 7) is None and lan.became_master("c", 7) is None
    assert lan.delivered > 0 and lan.drops == {}


def test_crash_of_master_best_backup_takes_over_after_master_down_interval():
    """RFC 5798 6.4.2 (S2): when the master just stops, the best backup becomes master
    Master_Down_Interval (3 s + 414062 us at priority 150: 106/256 s rounded down) after the last advert it
    heard."""
    lan = three_nodes()
    lan.run_until(10 * SEC)
    lan.crash("a")
    last = max(s.t for s in lan.sent if s.node == "a")
    lan.run_until(20 * SEC)
    took = lan.became_master("b", 7, after=10 * SEC)
    assert took == last + 3_414_062
    assert lan.masters(7) == ["b"] and lan.holders(7) == ["b"]
    assert lan.became_master("c", 7) is None


def test_graceful_shutdown_hands_over_after_skew_time():
    """RFC 5798 6.4.3 (S10) + 6.4.2 (S3): the master's priority-0 advert makes the best backup master after
    Skew_Time (414062 us at priority 150); the next backup (609375 us) is beaten to it."""
    lan = three_nodes()
    lan.run_until(10_500 * MS)
    lan.shutdown("a")
    assert [s.priority for s in lan.sent if s.node == "a"][-1] == 0
    lan.run_until(20 * SEC)
    took = lan.became_master("b", 7, after=10_500 * MS)
    assert took == 10_500 * MS + 414_062
    assert lan.masters(7) == ["b"] and lan.became_master("c", 7) is None


def test_v2_crash_failover_uses_v2_skew():
    """RFC 3768 6.1 (K2): v2 Master_Down_Interval = 3 * Advertisement_Interval + (256 - 150)/256 s."""
    lan = three_nodes(version=2)
    lan.run_until(10 * SEC)
    lan.crash("a")
    last = max(s.t for s in lan.sent if s.node == "a")
    lan.run_until(20 * SEC)
    took = lan.became_master("b", 7, after=10 * SEC)
    assert took == last + 3 * SEC + 414_062  # 106 * 1e6 / 256 = 414062.5 us
    assert lan.masters(7) == ["b"]


def test_v3_ipv6_failover_with_sub_second_interval():
    """RFC 5798 6.1 (K1) over IPv6 at 100 ms: down interval 300 ms + 106 * 100 ms / 256 = 341406.25 us."""
    lan = three_nodes(family=6, adver_int_ms=100)
    lan.run_until(2 * SEC)
    assert lan.masters(7) == ["a"]
    lan.crash("a")
    last = max(s.t for s in lan.sent if s.node == "a")
    lan.run_until(4 * SEC)
    took = lan.became_master("b", 7, after=2 * SEC)
    assert took == last + 341_406


def test_v3_backup_learns_the_masters_interval():
    """RFC 5798 6.4.2 (S4): a v3 backup configured for 1 s times out on the master's 200 ms adverts."""
    lan = Lan(seed=2)
    lan.add("m", InstanceParams(name="m", vrid=9, priority=200, adver_int_ms=200, primary_ip=ip("192.0.2.1")))
    lan.add(
        "b", InstanceParams(name="b", vrid=9, priority=100, adver_int_ms=1000, primary_ip=ip("192.0.2.2"))
    )
    lan.start("m")
    lan.start("b")
    lan.run_until(5 * SEC)
    assert lan.masters(9) == ["m"]
    assert lan.nodes["b"].instances[9].master_adver_interval_us == 200 * MS
    lan.crash("m")
    last = max(s.t for s in lan.sent if s.node == "m")
    lan.run_until(8 * SEC)
    assert lan.became_master("b", 9) == last + 600 * MS + 121_875  # 156 * 200 ms / 256, exact


def test_returning_higher_priority_preempts_and_restored_master_wins():
    """RFC 5798 6.4.3 (S8): a restarted higher-priority router becomes master after its Master_Down_Timer
    (it discards the lower master's adverts), and the old master yields on its first advert."""
    lan = three_nodes()
    lan.run_until(10 * SEC)
    lan.crash("a")
    lan.run_until(20 * SEC)
    lan.start("a")
    lan.run_until(30 * SEC)
    assert lan.became_master("a", 7, after=20 * SEC) == 20 * SEC + 3_218_750
    assert lan.masters(7) == ["a"] and lan.holders(7) == ["a"]
    assert lan.nodes["b"].instances[7].state is State.BACKUP


def test_s9_reply_to_a_lower_priority_intruder_is_rate_limited():
    """RFC 9568 S9 with docs/rfc-checklist.md#hostile-segment: a flood of lower-priority adverts gets one
    reply per interval."""
    lan = three_nodes()
    lan.run_until(10 * SEC)
    a = lan.nodes["a"].instances[7]
    before = len([s for s in lan.sent if s.node == "a"])
    # node c's instance is forced to send 10 adverts a second for 5 s (a misbehaving peer)
    for t in range(10 * SEC, 15 * SEC, 100 * MS):
        lan.at(t, lan._send, lan.nodes["c"], 7, 100)
    lan.run_until(15 * SEC)
    a_sent = len([s for s in lan.sent if s.node == "a"]) - before
    assert a.stats.s9_replies == 5 and a.stats.s9_suppressed == 45
    assert a_sent == 5 + 5  # five periodic adverts plus five S9 replies, not 50
