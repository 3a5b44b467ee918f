"""The pure pieces the trackers share (fastvrrp.health.status): keepalived's rise/fall counter and the
track_file value reader."""

from __future__ import annotations

import pytest

from fastvrrp.health.status import RiseFall, parse_track_file_value

# --- rise / fall ---


def test_first_result_decides_at_once():
    r = RiseFall(rise=3, fall=3)
    assert r.up is None
    assert r.feed(True) and r.up is True
    r = RiseFall(rise=3, fall=3)
    assert r.feed(False) and r.up is False


def test_fall_consecutive_failures_then_rise_successes():
    r = RiseFall(rise=2, fall=3)
    r.feed(True)
    assert [r.feed(False), r.feed(False)] == [False, False] and r.up
    assert r.feed(False) and r.up is False
    assert not r.feed(True) and r.up is False
    assert r.feed(True) and r.up is True


def test_a_success_resets_the_fall_count():
    r = RiseFall(rise=1, fall=2)
    r.feed(True)
    r.feed(False)
    r.feed(True)
    r.feed(False)
    assert r.up is True


def test_init_fail_starts_down_and_needs_rise():
    r = RiseFall(rise=2, fall=1, init_fail=True)
    assert r.up is False
    assert not r.feed(True)
    assert r.feed(True) and r.up


@pytest.mark.parametrize(
    "data,value",
    [
        (b"", 0),
        (b"12\n", 12),
        (b"  -7 junk", -7),
        (b"0x10", 16),
        (b"010", 8),
        (b"abc", 0),
        (b"999", 254),
        (b"-999", -254),
        (b"+3", 3),
        (b"0x", 0),
    ],
)
def test_track_file_parse(data, value):
    assert parse_track_file_value(data) == value
