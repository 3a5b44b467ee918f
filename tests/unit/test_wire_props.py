"""Property tests: build -> decode round trips, template render == build, and the compiled codec against the
reference on random and mutated bytes (same validity, reason and fields)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_helpers import IMPL_IDS, IMPLS, ip4, refcodec

from fastvrrp import _wire

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def advert_args(draw, family=None, version=None):
    family = draw(st.sampled_from([4, 6])) if family is None else family
    if version is None:
        version = draw(st.sampled_from([2, 3])) if family == 4 else 3
    alen = 4 if family == 4 else 16
    addr = st.binary(min_size=alen, max_size=alen)
    kw = dict(
        version=version,
        family=family,
        vrid=draw(st.integers(1, 255)),
        priority=draw(st.integers(0, 255)),
        addresses=draw(st.lists(addr, max_size=20)),
        src=draw(addr),
        dst=draw(addr),
    )
    if version == 3:
        kw["adver_int_ms"] = draw(st.integers(1, 4095)) * 10
        kw["checksum_form"] = draw(st.sampled_from([_wire.CS_PSEUDO, _wire.CS_MESSAGE]))
    else:
        kw["adver_int_ms"] = draw(st.integers(1, 255)) * 1000
        kw["auth_type"] = draw(st.integers(0, 2))
        kw["auth_data"] = draw(st.binary(max_size=8))
    return kw


def _decode(impl, kw, msg, **opts):
    if kw["family"] == 4:
        return impl.decode_ipv4(ip4(msg, kw["src"], kw["dst"]), **opts)
    return impl.decode_ipv6(msg, kw["src"], kw["dst"], 255)


@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
@SETTINGS
@given(kw=advert_args())
def test_round_trip(impl, kw):
    msg = impl.build_advert(**kw)
    p = _decode(impl, kw, msg)
    assert p.valid, p.reason
    assert (p.family, p.version, p.vrid, p.priority) == (
        kw["family"],
        kw["version"],
        kw["vrid"],
        kw["priority"],
    )
    assert (p.adver_int_ms, p.addresses, p.src, p.dst) == (
        kw["adver_int_ms"],
        tuple(kw["addresses"]),
        kw["src"],
        kw["dst"],
    )
    assert p.count == len(kw["addresses"]) and p.msg_len == len(msg)
    if kw["version"] == 2:
        assert (p.auth_type, p.auth_data) == (kw["auth_type"], kw["auth_data"].ljust(8, b"\0"))
        assert p.checksum_form == "message"
    elif kw["family"] == 6 or kw["checksum_form"] == _wire.CS_PSEUDO:
        # a message-only checksum can also verify with the pseudo-header when the addresses sum to zero
        assert p.checksum_form == "pseudo"
    else:
        assert p.checksum_form in ("message", "pseudo")
        strict = impl.decode_ipv4(ip4(msg, kw["src"], kw["dst"]), policy=_wire.CSP_MESSAGE_ONLY)
        assert strict.valid


@SETTINGS
@given(kw=advert_args())
def test_both_builders_agree(kw):
    assert _wire.build_advert(**kw) == refcodec.build_advert(**kw)


@SETTINGS
@given(kw=advert_args(), renders=st.lists(st.tuples(st.integers(0, 255), st.integers(1, 255)), max_size=5))
def test_template_render_equals_build(kw, renders):
    t = _wire.AdvertTemplate(**kw)
    unit = 10 if kw["version"] == 3 else 1000
    buf = bytearray(t.size + 3)
    for priority, n in renders:
        want = refcodec.build_advert(**{**kw, "priority": priority, "adver_int_ms": n * unit})
        assert t.render(priority, n * unit) == want
        assert t.render_into(buf, priority, n * unit) == len(want)
        assert bytes(buf[: len(want)]) == want


def _same(a, b):
    assert a.as_dict() == b.as_dict()


@SETTINGS
@given(data=st.binary(max_size=120), check_ttl=st.booleans(), policy=st.sampled_from([0, 1, 2]))
def test_differential_random_ipv4(data, check_ttl, policy):
    _same(_wire.decode_ipv4(data, check_ttl, policy), refcodec.decode_ipv4(data, check_ttl, policy))


@SETTINGS
@given(
    data=st.binary(max_size=120),
    src=st.binary(min_size=16, max_size=16),
    dst=st.binary(min_size=16, max_size=16),
    hoplimit=st.integers(-2, 300),
    check_ttl=st.booleans(),
)
def test_differential_random_ipv6(data, src, dst, hoplimit, check_ttl):
    _same(
        _wire.decode_ipv6(data, src, dst, hoplimit, check_ttl),
        refcodec.decode_ipv6(data, src, dst, hoplimit, check_ttl),
    )


@st.composite
def mutated(draw):
    """A valid packet, then a few byte flips, a truncation or some appended bytes."""
    kw = draw(advert_args())
    msg = _wire.build_advert(**kw)
    data = bytearray(ip4(msg, kw["src"], kw["dst"]) if kw["family"] == 4 else msg)
    for _ in range(draw(st.integers(0, 3))):
        if data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    action = draw(st.sampled_from(["none", "truncate", "append"]))
    if action == "truncate" and data:
        del data[draw(st.integers(0, len(data) - 1)) :]
    elif action == "append":
        data += draw(st.binary(min_size=1, max_size=20))
    return kw, bytes(data)


@settings(max_examples=600, deadline=None)
@given(case=mutated(), check_ttl=st.booleans(), policy=st.sampled_from([0, 1, 2]))
def test_differential_mutated(case, check_ttl, policy):
    kw, data = case
    if kw["family"] == 4:
        _same(_wire.decode_ipv4(data, check_ttl, policy), refcodec.decode_ipv4(data, check_ttl, policy))
    else:
        a = _wire.decode_ipv6(data, kw["src"], kw["dst"], 255, check_ttl)
        _same(a, refcodec.decode_ipv6(data, kw["src"], kw["dst"], 255, check_ttl))


@SETTINGS
@given(data=st.binary(max_size=200), initial=st.integers(0, 2**40))
def test_checksum_agrees(data, initial):
    assert _wire.checksum(data, initial) == refcodec.checksum(data, initial)
