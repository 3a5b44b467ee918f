"""Timer arithmetic of the core against the RFC gold values (VRRP-NOTES 1.4, K1-K4)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from fastvrrp.core import InstanceConfig, VrrpInstance, master_down_interval_ms, skew_ms


def rfc_skew_v3_ms(priority: int, mai_ms: int) -> Fraction:
    # RFC 5798 6.1 in exact arithmetic (centiseconds * 10 = ms)
    return Fraction((256 - priority) * (mai_ms // 10), 256) * 10


@pytest.mark.parametrize(
    ("priority", "mai_ms", "gold_skew_ms"),
    [
        (100, 1000, Fraction(6093750, 10000)),  # 60.9375 cs (K3)
        (254, 1000, Fraction(78125, 10000)),  # 0.78125 cs (K3)
        (1, 10, Fraction(99609375, 10**7)),  # 0.99609375 cs (K3)
        (255, 40950, Fraction(40950, 256)),
    ],
)
def test_k1_v3_skew_matches_rfc_gold_within_1ms(priority, mai_ms, gold_skew_ms):
    """RFC 5798 6.1 (K1, K3): Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256,
    rounded down to ms."""
    assert rfc_skew_v3_ms(priority, mai_ms) == gold_skew_ms
    got = skew_ms(3, priority, mai_ms)
    assert 0 <= gold_skew_ms - got < 1
    assert master_down_interval_ms(3, priority, mai_ms) == 3 * mai_ms + got


def test_k1_v3_gold_prio100_down_3609ms():
    """RFC 5798 6.1 (K3): priority 100 at 100 cs gives Master_Down_Interval 360.9375 cs -> 3609 ms."""
    assert skew_ms(3, 100, 1000) == 609
    assert master_down_interval_ms(3, 100, 1000) == 3609


def test_k1_v3_rounding_never_exceeds_rfc_for_every_priority_and_interval():
    """RFC 5798 6.1 (K1): our integer Skew_Time is the RFC value rounded down, never more than 1 ms off."""
    for prio in range(1, 256):
        for mai_ms in (10, 20, 100, 990, 1000, 40950):
            exact = rfc_skew_v3_ms(prio, mai_ms)
            got = skew_ms(3, prio, mai_ms)
            assert 0 <= exact - got < 1, (prio, mai_ms)


def test_k2_v2_skew_is_seconds_fraction_of_priority():
    """RFC 3768 6.1 (K2): Skew_Time = (256 - Priority) / 256 s, independent of the interval."""
    assert skew_ms(2, 100, 1000) == 609  # 0.609375 s
    assert skew_ms(2, 100, 5000) == 609
    assert skew_ms(2, 255, 1000) == 3  # 3.90625 ms
    assert master_down_interval_ms(2, 100, 3000) == 9609


def test_k1_instance_uses_local_priority_for_skew():
    """RFC 5798 6.1 (K1): the skew uses the *local* priority, so better backups time out sooner."""
    a = VrrpInstance(InstanceConfig(name="a", vrid=1, priority=200))
    b = VrrpInstance(InstanceConfig(name="b", vrid=1, priority=100))
    assert a.skew_ms == 218 and a.master_down_interval_ms == 3218
    assert b.skew_ms == 609 and b.master_down_interval_ms == 3609
