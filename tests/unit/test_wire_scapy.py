"""Cross-check against scapy's independent VRRP / VRRPv3 / ARP / ICMPv6 ND layers, both directions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_helpers import GROUP6, IMPL_IDS, IMPLS, SRC6

from fastvrrp import _wire

scapy_all = pytest.importorskip("scapy.all")
vrrp_layers = pytest.importorskip("scapy.layers.vrrp")
inet6 = pytest.importorskip("scapy.layers.inet6")

IP, IPv6, Ether, ARP, raw = scapy_all.IP, scapy_all.IPv6, scapy_all.Ether, scapy_all.ARP, scapy_all.raw
VRRP, VRRPv3 = vrrp_layers.VRRP, vrrp_layers.VRRPv3

pytestmark = pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
SETTINGS = settings(max_examples=60, deadline=None)

v4_text = st.integers(0, 255).map(lambda n: f"192.0.2.{n}")
v6_text = st.integers(1, 0xFFFF).map(lambda n: f"2001:db8::{n:x}")


def _n4(text):
    return scapy_all.inet_pton(scapy_all.socket.AF_INET, text)


def _n6(text):
    return scapy_all.inet_pton(scapy_all.socket.AF_INET6, text)


@SETTINGS
@given(
    vrid=st.integers(1, 255),
    prio=st.integers(0, 255),
    cs=st.integers(1, 4095),
    addrs=st.lists(v4_text, min_size=1, max_size=8),
)
def test_scapy_v3_ipv4_decoded_by_us(impl, vrid, prio, cs, addrs):
    pkt = IP(src="192.0.2.1", dst="224.0.0.18", ttl=255) / VRRPv3(
        vrid=vrid, priority=prio, adv=cs, ipcount=len(addrs), addrlist=addrs
    )
    p = impl.decode_ipv4(raw(pkt))
    assert (p.valid, p.checksum_form) == (True, "pseudo")  # scapy VRRPv3 under IP uses the pseudo-header
    assert (p.vrid, p.priority, p.adver_int_ms) == (vrid, prio, cs * 10)
    assert p.address_texts == tuple(addrs)


@SETTINGS
@given(
    vrid=st.integers(1, 255),
    prio=st.integers(0, 255),
    cs=st.integers(1, 4095),
    addrs=st.lists(v6_text, min_size=1, max_size=4),
)
def test_scapy_v3_ipv6_decoded_by_us(impl, vrid, prio, cs, addrs):
    vrrp = VRRPv3(vrid=vrid, priority=prio, adv=cs, ipcount=len(addrs), addrlist=addrs)
    pkt = IPv6(src="fe80::1", dst="ff02::12", hlim=255) / vrrp
    msg = raw(pkt)[40:]
    p = impl.decode_ipv6(msg, SRC6, GROUP6, 255)
    assert (p.valid, p.checksum_form, p.vrid, p.priority, p.adver_int_ms) == (
        True,
        "pseudo",
        vrid,
        prio,
        cs * 10,
    )
    assert p.address_texts == tuple(addrs)


@SETTINGS
@given(
    vrid=st.integers(1, 255),
    prio=st.integers(0, 255),
    secs=st.integers(1, 255),
    addrs=st.lists(v4_text, min_size=1, max_size=8),
    auth=st.sampled_from([0, 1]),
)
def test_scapy_v2_decoded_by_us(impl, vrid, prio, secs, addrs, auth):
    vrrp = VRRP(
        vrid=vrid,
        priority=prio,
        adv=secs,
        ipcount=len(addrs),
        addrlist=addrs,
        authtype=auth,
        auth1=int.from_bytes(b"pass", "big") if auth else 0,
    )
    p = impl.decode_ipv4(raw(IP(src="192.0.2.1", dst="224.0.0.18", ttl=255) / vrrp))
    assert (p.valid, p.version, p.checksum_form) == (True, 2, "message")
    assert (p.vrid, p.priority, p.adver_int_ms, p.auth_type) == (vrid, prio, secs * 1000, auth)
    assert p.auth_data == (b"pass\0\0\0\0" if auth else bytes(8))
    assert p.address_texts == tuple(addrs)


def _recomputed(ip_cls, layer_cls, packet):
    """Dissect our packet with scapy, let scapy recompute the VRRP checksum, return (ours, scapy's, layer)."""
    pkt = ip_cls(packet)
    layer = pkt[layer_cls]
    ours = layer.chksum
    layer.chksum = None
    theirs = ip_cls(raw(pkt))[layer_cls].chksum
    return ours, theirs, layer


@SETTINGS
@given(
    vrid=st.integers(1, 255),
    prio=st.integers(0, 255),
    cs=st.integers(1, 4095),
    addrs=st.lists(v4_text, min_size=1, max_size=8),
)  # scapy needs 9+ bytes to see a v3
def test_our_v3_ipv4_parsed_by_scapy(impl, vrid, prio, cs, addrs):
    msg = impl.build_advert(
        version=3,
        family=4,
        vrid=vrid,
        priority=prio,
        adver_int_ms=cs * 10,
        addresses=[_n4(a) for a in addrs],
        src=_n4("192.0.2.1"),
        dst=_n4("224.0.0.18"),
    )
    packet = raw(IP(src="192.0.2.1", dst="224.0.0.18", ttl=255, proto=112) / msg)
    ours, theirs, layer = _recomputed(IP, VRRPv3, packet)
    assert ours == theirs
    assert (layer.version, layer.type, layer.vrid, layer.priority, layer.adv) == (3, 1, vrid, prio, cs)
    assert [str(a) for a in layer.addrlist] == addrs


@SETTINGS
@given(
    vrid=st.integers(1, 255),
    prio=st.integers(0, 255),
    cs=st.integers(1, 4095),
    addrs=st.lists(v6_text, min_size=1, max_size=4),
)  # scapy needs 9+ bytes to see a v3
def test_our_v3_ipv6_parsed_by_scapy(impl, vrid, prio, cs, addrs):
    msg = impl.build_advert(
        version=3,
        family=6,
        vrid=vrid,
        priority=prio,
        adver_int_ms=cs * 10,
        addresses=[_n6(a) for a in addrs],
        src=SRC6,
        dst=GROUP6,
    )
    packet = raw(IPv6(src="fe80::1", dst="ff02::12", hlim=255, nh=112) / msg)
    ours, theirs, layer = _recomputed(IPv6, VRRPv3, packet)
    assert ours == theirs
    assert (layer.vrid, layer.priority, layer.adv, [str(a) for a in layer.addrlist]) == (
        vrid,
        prio,
        cs,
        addrs,
    )


@SETTINGS
@given(
    vrid=st.integers(1, 255),
    prio=st.integers(0, 255),
    secs=st.integers(1, 255),
    addrs=st.lists(v4_text, max_size=8),
    auth=st.sampled_from([0, 1]),
)
def test_our_v2_parsed_by_scapy(impl, vrid, prio, secs, addrs, auth):
    msg = impl.build_advert(
        version=2,
        family=4,
        vrid=vrid,
        priority=prio,
        adver_int_ms=secs * 1000,
        addresses=[_n4(a) for a in addrs],
        src=_n4("192.0.2.1"),
        dst=_n4("224.0.0.18"),
        auth_type=auth,
        auth_data=b"secret" if auth else b"",
    )
    packet = raw(IP(src="192.0.2.1", dst="224.0.0.18", ttl=255, proto=112) / msg)
    ours, theirs, layer = _recomputed(IP, VRRP, packet)
    assert ours == theirs
    assert (layer.version, layer.vrid, layer.priority, layer.adv, layer.authtype) == (
        2,
        vrid,
        prio,
        secs,
        auth,
    )
    assert [str(a) for a in layer.addrlist] == addrs
    assert layer.auth1.to_bytes(4, "big") + layer.auth2.to_bytes(4, "big") == (
        b"secret\0\0" if auth else bytes(8)
    )


@SETTINGS
@given(vrid=st.integers(0, 255), vip=v4_text)
def test_garp_matches_scapy(impl, vrid, vip):
    mac = impl.vmac(vrid, 4)
    mac_text = ":".join(f"{b:02x}" for b in mac)
    want = Ether(dst="ff:ff:ff:ff:ff:ff", src=mac_text) / ARP(
        op=1, hwsrc=mac_text, psrc=vip, hwdst="ff:ff:ff:ff:ff:ff", pdst=vip
    )
    assert impl.garp_frame(mac, _n4(vip)) == raw(want)


@SETTINGS
@given(vrid=st.integers(0, 255), vip=v6_text, router=st.booleans())
def test_unsolicited_na_matches_scapy(impl, vrid, vip, router):
    mac = impl.vmac(vrid, 6)
    mac_text = ":".join(f"{b:02x}" for b in mac)
    want = (
        Ether(dst="33:33:00:00:00:01", src=mac_text)
        / IPv6(src=vip, dst="ff02::1", hlim=255)
        / inet6.ICMPv6ND_NA(R=int(router), S=0, O=1, tgt=vip)
        / inet6.ICMPv6NDOptDstLLAddr(lladdr=mac_text)
    )
    assert impl.unsolicited_na_frame(mac, _n6(vip), router=router) == raw(want)


def test_scapy_message_only_v3_reported(impl):
    # scapy builds the pseudo-header form; a hand-cleared, message-only checksum must be reported as such
    vrrp = VRRPv3(vrid=7, priority=200, adv=5, ipcount=1, addrlist=["192.0.2.7"])
    body = bytearray(raw(IP(src="192.0.2.1", dst="224.0.0.18") / vrrp)[20:])
    body[6:8] = b"\0\0"
    body[6:8] = _wire.checksum(bytes(body)).to_bytes(2, "big")
    pkt = raw(IP(src="192.0.2.1", dst="224.0.0.18", ttl=255, proto=112) / bytes(body))
    p = impl.decode_ipv4(pkt)
    assert (p.valid, p.checksum_form, p.vrid, p.adver_int_ms) == (True, "message", 7, 50)
