"""Timer arithmetic of the core against the RFC gold values (docs/rfc-checklist.md#timers), in
microseconds."""

from __future__ import annotations

from fractions import Fraction

import pytest

from fastvrrp.core import InstanceParams, VrrpInstance, master_down_interval_us, skew_us


def rfc_skew_v3_us(priority: int, mai_us: int) -> Fraction:
    # RFC 5798 6.1 in exact arithmetic (centiseconds * 10_000 = us)
    return Fraction((256 - priority) * (mai_us // 10_000), 256) * 10_000


@pytest.mark.parametrize(
    ("priority", "mai_us", "gold_skew_us"),
    [
        (100, 1_000_000, Fraction(609_375)),  # 60.9375 cs (K3)
        (254, 1_000_000, Fraction(15_625, 2)),  # 0.78125 cs (K3)
        (1, 10_000, Fraction(99_609_375, 10_000)),  # 0.99609375 cs (K3)
        (255, 40_950_000, Fraction(40_950_000, 256)),
    ],
)
def test_k1_v3_skew_matches_rfc_gold_within_1us(priority, mai_us, gold_skew_us):
    """RFC 5798 6.1 (K1, K3): Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256, rounded down to
    the microsecond (exact when the RFC value is a whole number of us)."""
    assert rfc_skew_v3_us(priority, mai_us) == gold_skew_us
    got = skew_us(3, priority, mai_us)
    assert 0 <= gold_skew_us - got < 1
    assert master_down_interval_us(3, priority, mai_us) == 3 * mai_us + got


def test_k1_v3_gold_prio100_is_exact():
    """RFC 5798 6.1 (K3): priority 100 at 100 cs: Skew_Time 60.9375 cs, Master_Down_Interval 360.9375 cs,
    both whole microseconds, so exact."""
    assert skew_us(3, 100, 1_000_000) == 609_375
    assert master_down_interval_us(3, 100, 1_000_000) == 3_609_375


def test_k1_v3_exact_values_for_other_gold_examples():
    """RFC 5798 6.1 (K3): prio 254 at 100 cs is 7812.5 us -> 7812; prio 1 at 1 cs is 9960.9375 us -> 9960."""
    assert skew_us(3, 254, 1_000_000) == 7812
    assert skew_us(3, 1, 10_000) == 9960
    assert master_down_interval_us(3, 1, 10_000) == 39_960


def test_k1_v3_rounding_never_exceeds_rfc_for_every_priority_and_interval():
    """RFC 5798 6.1 (K1): our integer Skew_Time is the RFC value rounded down, never more than 1 us off."""
    for prio in range(1, 256):
        for mai_us in (10_000, 20_000, 100_000, 990_000, 1_000_000, 40_950_000):
            exact = rfc_skew_v3_us(prio, mai_us)
            got = skew_us(3, prio, mai_us)
            assert 0 <= exact - got < 1, (prio, mai_us)
            if exact.denominator == 1:
                assert got == exact, (prio, mai_us)


def test_k2_v2_skew_is_seconds_fraction_of_priority():
    """RFC 3768 6.1 (K2): Skew_Time = (256 - Priority) / 256 s, independent of the interval."""
    assert skew_us(2, 100, 1_000_000) == 609_375  # 0.609375 s
    assert skew_us(2, 100, 5_000_000) == 609_375
    assert skew_us(2, 255, 1_000_000) == 3906  # 3906.25 us
    assert skew_us(2, 252, 1_000_000) == 15_625  # 4/256 s, exact
    assert master_down_interval_us(2, 100, 3_000_000) == 9_609_375


def test_k1_instance_uses_local_priority_for_skew():
    """RFC 5798 6.1 (K1): the skew uses the *local* priority, so better backups time out sooner."""
    a = VrrpInstance(InstanceParams(name="a", vrid=1, priority=200))
    b = VrrpInstance(InstanceParams(name="b", vrid=1, priority=100))
    assert a.skew_us == 218_750 and a.master_down_interval_us == 3_218_750
    assert b.skew_us == 609_375 and b.master_down_interval_us == 3_609_375
    assert a.master_adver_interval_us == 1_000_000
