"""Address lines (virtual_ipaddress / static_ipaddress) read as keepalived 2.2.7 reads them: its leniencies
are adjustments naming the line, and the kernel request each line becomes (the netns test compares the
kernel's result with keepalived's: tests/netns/test_address_options.py)."""

from __future__ import annotations

import socket
import struct

import pytest

from fastvrrp.config.addresses import vaddr
from fastvrrp.config.lexer import Node
from fastvrrp.config.values import Reporter
from fastvrrp.io import netlink


def read(line: str):
    r = Reporter()
    words = line.split()
    return vaddr(r, Node(words[0], words[1:], "k.conf", 7)), [p.message for p in r.adjustments]


@pytest.mark.parametrize(
    ("line", "peer", "plen", "brd", "said"),
    [
        ("192.0.2.1 peer 192.0.2.9", "192.0.2.9", 32, None, []),
        ("192.0.2.1/24 peer 192.0.2.9", "192.0.2.9", 32, None, ["prefix length of 192.0.2.1/24 with a peer"]),
        ("192.0.2.1 peer 192.0.2.9/30", None, 32, None, ["peer '192.0.2.9/30' of 192.0.2.1 is no address"]),
        ("192.0.2.1 peer 2001:db8::9", None, 32, None, ["peer '2001:db8::9' of 192.0.2.1 is no address"]),
        (
            "192.0.2.1 peer 192.0.2.9 brd 192.0.2.255",
            "192.0.2.9",
            32,
            None,
            ["broadcast address of 192.0.2.1"],
        ),
        ("192.0.2.1/24 brd +", None, 24, "192.0.2.255", []),
        ("192.0.2.1/24 brd -", None, 24, "192.0.2.0", []),
        ("192.0.2.1/30 brd +", None, 30, "192.0.2.3", []),
        ("192.0.2.1/31 brd +", None, 31, None, ["'brd +' on a /31: no broadcast address"]),
        ("192.0.2.1/24 brd 192.0.2.7", None, 24, "192.0.2.7", []),
    ],
)
def test_peer_and_broadcast_as_keepalived_reads_them(line, peer, plen, brd, said):
    va, adjusted = read(line)
    assert va is not None
    assert (str(va.peer) if va.peer else None, va.prefixlen, va.broadcast_address()) == (peer, plen, brd)
    assert len(adjusted) == len(said) and all(m.startswith(s) for m, s in zip(adjusted, said, strict=True))


@pytest.mark.parametrize(
    ("line", "preferred"),
    [
        ("2001:db8::1/64", None),
        ("2001:db8::1/128", 0),  # keepalived 2.2.7's default for a /128: deprecated
        ("2001:db8::1", 0),
        ("2001:db8::1/128 preferred_lft forever", None),
        ("2001:db8::1/64 preferred_lft 0", 0),
        ("2001:db8::1/64 preferred_lft 100", 100),
        ("2001:db8::1/64 preferred_lft 4294967295", None),
        ("192.0.2.1/24 preferred_lft 100", None),  # keepalived sets no lifetime on IPv4
    ],
)
def test_preferred_lifetime(line, preferred):
    va, _ = read(line)
    assert va is not None and va.preferred_seconds() == preferred


def _attrs(msg: bytes) -> dict[int, bytes]:
    out, p = {}, 16 + 8  # nlmsghdr, ifaddrmsg
    while p + 4 <= len(msg):
        n, kind = struct.unpack_from("=HH", msg, p)
        out[kind] = msg[p + 4 : p + n]
        p += (n + 3) & ~3
    return out


def test_the_request_carries_peer_flags_dad_and_lifetime():
    v6 = netlink.VipSpec(
        "2001:db8::1", 128, 3, peer="2001:db8::9", flags=netlink.IFA_F_NOPREFIXROUTE, preferred_lft=0
    )
    add = _attrs(netlink.encode_addr(v6, netlink.RTM_NEWADDR))
    assert add[netlink.IFA_LOCAL] == socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    assert add[netlink.IFA_ADDRESS] == socket.inet_pton(socket.AF_INET6, "2001:db8::9")
    assert struct.unpack("=I", add[netlink.IFA_FLAGS]) == (netlink.IFA_F_NOPREFIXROUTE | netlink.IFA_F_NODAD,)
    assert struct.unpack("=IIII", add[netlink.IFA_CACHEINFO]) == (0, 0xFFFFFFFF, 0, 0)
    dad = _attrs(netlink.encode_addr(netlink.VipSpec("2001:db8::2", 64, 3, dad=True), netlink.RTM_NEWADDR))
    assert netlink.IFA_FLAGS not in dad and netlink.IFA_CACHEINFO not in dad
    # a removal names the peer too: the kernel matches an IPv4 address with a peer on it
    v4 = netlink.VipSpec("192.0.2.1", 32, 3, peer="192.0.2.9")
    rm = _attrs(netlink.encode_addr(v4, netlink.RTM_DELADDR))
    assert rm[netlink.IFA_ADDRESS] == socket.inet_aton("192.0.2.9") and netlink.IFA_FLAGS not in rm
    with pytest.raises(ValueError):
        netlink.VipSpec("192.0.2.1", 32, 3, peer="2001:db8::9")
