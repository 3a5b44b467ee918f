"""Codec tests run against both implementations (compiled _wire and tests/refcodec.py): golden vectors,
every drop reason from crafted bytes, both v3 IPv4 checksum forms, frames."""

from __future__ import annotations

import struct

import pytest
from wire_helpers import (
    GROUP4,
    GROUP6,
    IMPL_IDS,
    IMPLS,
    LL_VIP6,
    PEER4,
    SRC4,
    SRC6,
    VIP4,
    VIP6,
    a4,
    a6,
    ip4,
    v3_kw,
)

from fastvrrp import _wire

pytestmark = pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)

# --- golden vectors: hand-assembled, checksums worked out by hand (and matching scapy's) -------------------

# v3, VRID 51, prio 100, 100 cs, 1 address 192.0.2.100, checksum with the pseudo-header
# (192.0.2.1 -> 224.0.0.18, 0, 112, 12): words 3133 6401 0064 c000 0264 + c000 0201 e000 0012 0070 000c
V3_PSEUDO = bytes.fromhex("31336401 00640572 c0000264")
# the same message with the RFC 9568 5.2.8 message-only checksum: ~(3133+6401+0064+c000+0264) = a802
V3_MESSAGE = bytes.fromhex("31336401 0064a802 c0000264")
# v2, VRID 51, prio 100, 1 address, auth type 1 (password "secret"), 1 s
V2_PASS = bytes.fromhex("21336401 01017b19 c0000264 73656372 65740000")
# v3 IPv6 from fe80::1 to ff02::12, VRID 51, prio 100, 100 cs, fe80::100 and 2001:db8::100
V3_V6 = bytes.fromhex("31336402 00643dfd fe800000000000000000000000000100 20010db8000000000000000000000100")


def test_golden_v3_ipv4_pseudo(impl):
    p = impl.decode_ipv4(ip4(V3_PSEUDO))
    assert (p.valid, p.reason, p.checksum_form) == (True, None, "pseudo")
    assert (p.family, p.version, p.type, p.vrid, p.priority, p.count) == (4, 3, 1, 51, 100, 1)
    assert (p.adver_int_ms, p.checksum, p.ttl, p.msg_len) == (1000, 0x0572, 255, 12)
    assert (p.src, p.dst, p.addresses) == (SRC4, GROUP4, (VIP4,))
    assert (p.src_text, p.dst_text, p.address_texts) == ("192.0.2.1", "224.0.0.18", ("192.0.2.100",))
    assert (p.auth_type, p.auth_data) == (0, b"")
    assert impl.build_advert(**v3_kw()) == V3_PSEUDO
    assert impl.checksum(V3_PSEUDO) != 0  # the pseudo-header is needed to verify it
    assert impl.checksum(SRC4 + GROUP4 + b"\x00\x70\x00\x0c" + V3_PSEUDO) == 0


def test_golden_v3_ipv4_message_only(impl):
    p = impl.decode_ipv4(ip4(V3_MESSAGE))
    assert (p.valid, p.checksum_form, p.checksum) == (True, "message", 0xA802)
    assert impl.build_advert(**v3_kw(checksum_form=_wire.CS_MESSAGE)) == V3_MESSAGE
    assert impl.checksum(V3_MESSAGE) == 0


def test_golden_v2_password(impl):
    p = impl.decode_ipv4(ip4(V2_PASS))
    assert (p.valid, p.version, p.checksum_form, p.checksum) == (True, 2, "message", 0x7B19)
    assert (p.auth_type, p.auth_data, p.adver_int_ms, p.msg_len) == (1, b"secret\0\0", 1000, 20)
    assert p.addresses == (VIP4,)
    built = impl.build_advert(**v3_kw(version=2, auth_type=1, auth_data=b"secret"))
    assert built == V2_PASS


def test_golden_v3_ipv6(impl):
    p = impl.decode_ipv6(V3_V6, SRC6, GROUP6, 255)
    assert (p.valid, p.family, p.version, p.checksum_form, p.checksum) == (True, 6, 3, "pseudo", 0x3DFD)
    assert p.addresses == (LL_VIP6, VIP6)
    assert p.address_texts == ("fe80::100", "2001:db8::100")
    assert (p.src_text, p.dst_text, p.ttl, p.msg_len) == ("fe80::1", "ff02::12", 255, 40)
    kw = v3_kw(family=6, addresses=[LL_VIP6, VIP6], src=SRC6, dst=GROUP6)
    assert impl.build_advert(**kw) == V3_V6


def test_checksum_rfc1071_examples(impl):
    # RFC 1071 3: the sum of 0001 f203 f4f5 f6f7 is ddf2, so the checksum is 220d
    assert impl.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert impl.checksum(b"") == 0xFFFF
    assert impl.checksum(b"\x01") == 0xFEFF  # an odd byte is the high half of a padded word
    assert impl.checksum(b"\x00\x01", initial=0xFFFE) == 0
    with pytest.raises((ValueError, OverflowError)):
        impl.checksum(b"", initial=-1)


# --- receive validation: every codec drop reason from crafted input ----------------------------------------


def _v3(**over):
    return _wire.build_advert(**v3_kw(**over))


CASES_V4 = {
    "short buffer": (ip4(V3_PSEUDO)[:19], "length"),
    "no vrrp header": (ip4(V3_PSEUDO[:7]), "length"),
    "count beyond length": (ip4(V3_PSEUDO[:3] + b"\x02" + V3_PSEUDO[4:]), "length"),
    "v2 without auth data": (ip4(V2_PASS[:-8]), "length"),
    "ip version 6": (ip4(V3_PSEUDO, version=6), "ip"),
    "ihl 4": (ip4(V3_PSEUDO, ihl=4), "ip"),
    "total > buffer": (ip4(V3_PSEUDO, total=33), "ip"),
    "total < ihl": (ip4(V3_PSEUDO, total=19), "ip"),
    "more fragments": (ip4(V3_PSEUDO, frag=0x2000), "ip"),
    "fragment offset": (ip4(V3_PSEUDO, frag=0x0001), "ip"),
    "protocol 51": (ip4(V3_PSEUDO, proto=51), "ip"),
    "ttl 64": (ip4(V3_PSEUDO, ttl=64), "ttl"),
    "version 4": (ip4(b"\x41" + V3_PSEUDO[1:]), "version"),
    "version 1": (ip4(b"\x11" + V3_PSEUDO[1:]), "version"),
    "type 2": (ip4(b"\x32" + V3_PSEUDO[1:]), "type"),
    "bad checksum": (ip4(V3_PSEUDO[:7] + b"\x73" + V3_PSEUDO[8:]), "checksum"),
    "address changed": (ip4(V3_PSEUDO[:-1] + b"\x65"), "checksum"),
    "vrid 0": (ip4(_v3(vrid=0)), "vrid"),
    "interval 0": (ip4(_v3(adver_int_ms=0)), "adver_int"),
    "v2 interval 0": (ip4(_v3(version=2, adver_int_ms=0)), "adver_int"),
    "v2 auth type 3": (ip4(_v3(version=2, auth_type=3)), "auth"),
}


@pytest.mark.parametrize("case", list(CASES_V4))
def test_drop_reason_ipv4(impl, case):
    data, reason = CASES_V4[case]
    p = impl.decode_ipv4(data)
    assert (p.valid, p.reason) == (False, reason)
    assert impl.DROP_REASONS[getattr(_wire, "R_" + reason.upper())] == reason


CASES_V6 = {
    "short": (V3_V6[:7], 255, "length"),
    "count beyond length": (V3_V6[:-1], 255, "length"),
    "hop limit 1": (V3_V6, 1, "ttl"),
    "v2 over ipv6": (b"\x21" + V3_V6[1:], 255, "version"),
    "type 0": (b"\x30" + V3_V6[1:], 255, "type"),
    "bad checksum": (V3_V6[:-1] + b"\x01", 255, "checksum"),
}


@pytest.mark.parametrize("case", list(CASES_V6))
def test_drop_reason_ipv6(impl, case):
    msg, hoplimit, reason = CASES_V6[case]
    p = impl.decode_ipv6(msg, SRC6, GROUP6, hoplimit)
    assert (p.valid, p.reason) == (False, reason)


def test_every_codec_reason_is_reachable(impl):
    seen = {impl.decode_ipv4(d).reason for d, _ in CASES_V4.values()}
    seen |= {impl.decode_ipv6(m, SRC6, GROUP6, h).reason for m, h, _ in CASES_V6.values()}
    # reasons 1..9 belong to the codec; the rest are judged by the engine and the core
    assert seen == set(impl.DROP_REASONS[1:10])


def test_drop_reason_names_follow_the_enum(impl):
    assert impl.DROP_REASONS == _wire.DROP_REASONS
    assert len(_wire.DROP_REASONS) == _wire.R_COUNT
    for member in _wire.Reason:
        if member != _wire.R_COUNT:
            assert _wire.DROP_REASONS[member] == member.name[2:].lower()


def test_fields_decoded_before_the_failure_are_reported(impl):
    p = impl.decode_ipv4(ip4(_v3(vrid=0, priority=7)))
    assert (p.reason, p.vrid, p.priority, p.checksum_form, p.addresses) == ("vrid", 0, 7, "pseudo", (VIP4,))
    p = impl.decode_ipv4(ip4(V3_PSEUDO, ttl=1))
    assert (p.reason, p.ttl, p.vrid, p.msg_len, p.addresses, p.checksum_form) == ("ttl", 1, 51, 0, (), None)
    p = impl.decode_ipv4(ip4(V3_PSEUDO, proto=6))
    assert (p.reason, p.src, p.vrid) == ("ip", bytes(4), 0)


def test_ttl_rule_skippable_for_unicast(impl):
    assert impl.decode_ipv4(ip4(V3_PSEUDO, ttl=64), check_ttl=False).valid
    assert impl.decode_ipv6(V3_V6, SRC6, GROUP6, 64, check_ttl=False).valid
    # hop limit unknown (no IPV6_HOPLIMIT cmsg): the rule cannot be applied
    p = impl.decode_ipv6(V3_V6, SRC6, GROUP6, -1)
    assert (p.valid, p.ttl) == (True, 0)


def test_padding_tolerated_and_excluded(impl):
    # Ethernet padding after the IP packet (a capture), and zero bytes inside the IP payload
    p = impl.decode_ipv4(ip4(V3_PSEUDO) + bytes(14))
    assert (p.valid, p.msg_len) == (True, 12)
    p = impl.decode_ipv4(ip4(V3_MESSAGE + bytes(6)))
    assert (p.valid, p.msg_len, p.checksum_form) == (True, 12, "message")
    p = impl.decode_ipv4(ip4(V2_PASS + b"\xff\xff"))
    assert (p.valid, p.msg_len) == (True, 20)
    p = impl.decode_ipv6(V3_V6 + bytes(4), SRC6, GROUP6, 255)
    assert (p.valid, p.msg_len) == (True, 40)


def test_ip_options_skipped(impl):
    p = impl.decode_ipv4(ip4(V3_PSEUDO, ihl=6, options=b"\x94\x04\x00\x00"))  # router alert
    assert (p.valid, p.vrid) == (True, 51)


def test_reserved_bits_ignored(impl):
    # RFC 5798 5.2.6: rsvd is ignored on receive (but covered by the checksum)
    msg = bytearray(V3_MESSAGE)
    msg[4] |= 0xF0
    msg[6:8] = b"\0\0"
    msg[6:8] = struct.pack("!H", impl.checksum(bytes(msg)))
    p = impl.decode_ipv4(ip4(bytes(msg)))
    assert (p.valid, p.adver_int_ms) == (True, 1000)


def test_v2_auth_types(impl):
    for auth_type in (0, 1, 2):
        p = impl.decode_ipv4(ip4(_v3(version=2, auth_type=auth_type, auth_data=b"pw" if auth_type else b"")))
        assert (p.valid, p.auth_type) == (True, auth_type)


# --- the two v3 IPv4 checksum forms and the policy ---------------------------------------------------------


def test_both_forms_accepted_and_reported(impl):
    assert impl.decode_ipv4(ip4(V3_PSEUDO)).checksum_form == "pseudo"
    assert impl.decode_ipv4(ip4(V3_MESSAGE)).checksum_form == "message"


def test_policy_pseudo_only(impl):
    assert impl.decode_ipv4(ip4(V3_PSEUDO), policy=_wire.CSP_PSEUDO_ONLY).valid
    p = impl.decode_ipv4(ip4(V3_MESSAGE), policy=_wire.CSP_PSEUDO_ONLY)
    assert (p.valid, p.reason, p.checksum_form) == (False, "checksum", None)


def test_policy_message_only(impl):
    assert impl.decode_ipv4(ip4(V3_MESSAGE), policy=_wire.CSP_MESSAGE_ONLY).valid
    p = impl.decode_ipv4(ip4(V3_PSEUDO), policy=_wire.CSP_MESSAGE_ONLY)
    assert (p.valid, p.reason) == (False, "checksum")


def test_v2_ignores_policy(impl):
    for policy in (_wire.CSP_PSEUDO_ONLY, _wire.CSP_MESSAGE_ONLY):
        assert impl.decode_ipv4(ip4(V2_PASS), policy=policy).checksum_form == "message"


def test_unknown_policy_is_an_argument_error(impl):
    with pytest.raises(ValueError):
        impl.decode_ipv4(ip4(V3_PSEUDO), policy=9)


def test_unicast_pseudo_header_uses_the_unicast_destination(impl):
    # docs/rfc-checklist.md#unicast-checksum (keepalived >= 1.3.6)
    msg = impl.build_advert(**v3_kw(dst=PEER4))
    assert impl.decode_ipv4(ip4(msg, dst=PEER4), check_ttl=False).checksum_form == "pseudo"
    assert impl.decode_ipv4(ip4(msg, dst=GROUP4)).reason == "checksum"


def test_ipv6_pseudo_header_binds_the_addresses(impl):
    assert impl.decode_ipv6(V3_V6, a6("fe80::2"), GROUP6, 255).reason == "checksum"
    assert impl.decode_ipv6(V3_V6, SRC6, a6("ff02::1"), 255).reason == "checksum"


# --- argument handling -------------------------------------------------------------------------------------


def test_buffers_other_than_bytes(impl):
    data = ip4(V3_PSEUDO)
    assert impl.decode_ipv4(bytearray(data)).valid
    assert impl.decode_ipv4(memoryview(data)).valid
    assert impl.decode_ipv6(bytearray(V3_V6), SRC6, GROUP6, 255).valid


def test_wrong_argument_types_raise(impl):
    with pytest.raises(TypeError):
        impl.decode_ipv4("not bytes")
    with pytest.raises(TypeError):
        impl.decode_ipv4(12345)
    with pytest.raises(ValueError):
        impl.decode_ipv6(V3_V6, SRC6[:4], GROUP6, 255)


@pytest.mark.parametrize(
    "over",
    [
        dict(version=4),
        dict(family=5),
        dict(version=2, family=6, addresses=[VIP6], src=SRC6, dst=GROUP6),
        dict(vrid=256),
        dict(priority=-1),
        dict(adver_int_ms=1005),
        dict(adver_int_ms=40960),
        dict(version=2, adver_int_ms=1500),
        dict(version=2, adver_int_ms=256000),
        dict(addresses=[VIP6]),
        dict(addresses=[VIP4] * 256),
        dict(src=SRC6),
        dict(auth_type=1),
        dict(auth_data=b"x"),
        dict(version=2, auth_data=b"123456789"),
        dict(checksum_form=0),
    ],
    ids=repr,
)
def test_build_rejects_bad_arguments(impl, over):
    with pytest.raises(ValueError):
        impl.build_advert(**v3_kw(**over))


def test_build_limits(impl):
    msg = impl.build_advert(**v3_kw(addresses=[VIP4] * 255, adver_int_ms=40950, vrid=255, priority=255))
    p = impl.decode_ipv4(ip4(msg))
    assert (p.valid, p.count, p.adver_int_ms, p.msg_len) == (True, 255, 40950, 8 + 255 * 4)
    v6 = impl.build_advert(**v3_kw(family=6, addresses=[VIP6] * 255, src=SRC6, dst=GROUP6))
    assert impl.decode_ipv6(v6, SRC6, GROUP6, 255).count == 255
    v2 = impl.build_advert(**v3_kw(version=2, adver_int_ms=255000, addresses=[]))
    p = impl.decode_ipv4(ip4(v2))
    assert (p.valid, p.adver_int_ms, p.addresses) == (True, 255000, ())


# --- templates ---------------------------------------------------------------------------------------------


def test_template_render_matches_build(impl):
    t = impl.AdvertTemplate(**v3_kw(priority=1, adver_int_ms=10))
    assert t.render(100, 1000) == V3_PSEUDO
    assert t.size == 12
    buf = bytearray(64)
    assert t.render_into(buf, 100, 1000) == 12
    assert bytes(buf[:12]) == V3_PSEUDO
    t2 = impl.AdvertTemplate(**v3_kw(version=2, auth_type=1, auth_data=b"secret", priority=0))
    assert t2.render(100, 1000) == V2_PASS
    with pytest.raises(ValueError):
        t.render(100, 1001)
    with pytest.raises(ValueError):
        t2.render(100, 500)


# --- announcement frames -----------------------------------------------------------------------------------


def test_vmac(impl):
    assert impl.vmac(51, 4) == bytes.fromhex("00005e000133")
    assert impl.vmac(51, 6) == bytes.fromhex("00005e000233")
    assert impl.vmac(255) == bytes.fromhex("00005e0001ff")
    with pytest.raises(ValueError):
        impl.vmac(256, 4)
    with pytest.raises(ValueError):
        impl.vmac(1, 5)


def test_garp_frame_golden(impl):
    frame = impl.garp_frame(impl.vmac(51, 4), a4("192.0.2.100"))
    assert frame == bytes.fromhex(
        "ffffffffffff 00005e000133 0806"  # Ethernet: broadcast, VMAC, ARP
        " 0001 0800 06 04 0001"  # Ethernet/IPv4, request
        " 00005e000133 c0000264"  # sender: VMAC, VIP
        " ffffffffffff c0000264"  # target: broadcast, VIP (docs/rfc-checklist.md#announcements)
    )
    with pytest.raises(ValueError):
        impl.garp_frame(b"\0" * 5, VIP4)


def test_unsolicited_na_golden(impl):
    frame = impl.unsolicited_na_frame(impl.vmac(51, 6), VIP6)
    assert len(frame) == 86
    assert frame[:14] == bytes.fromhex("333300000001 00005e000233 86dd")
    assert frame[14:22] == bytes.fromhex("60000000 0020 3a ff")  # plen 32, ICMPv6, hop limit 255
    assert frame[22:38] == VIP6 and frame[38:54] == a6("ff02::1")
    assert frame[54:56] == b"\x88\x00" and frame[58:62] == bytes.fromhex("a0000000")  # NA, R|O
    assert frame[62:78] == VIP6 and frame[78:86] == bytes.fromhex("0201 00005e000233")
    pseudo = VIP6 + a6("ff02::1") + struct.pack("!I3xB", 32, 58)
    assert impl.checksum(pseudo + frame[54:]) == 0
    assert struct.unpack("!H", frame[56:58])[0] == 0x18FA  # as scapy computes it
    plain = impl.unsolicited_na_frame(impl.vmac(51, 6), VIP6, router=False)
    assert plain[58:62] == bytes.fromhex("20000000")
    assert impl.checksum(pseudo + plain[54:]) == 0
