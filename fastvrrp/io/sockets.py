"""Raw VRRP sockets: one receive and one transmit socket per (interface, family), never one per instance.

Every raw socket whose protocol and device match gets its own copy of every packet
(docs/kernel-notes.md#one-raw-socket-per-interface), so N sockets per interface would cost N copies; the
engine demultiplexes by VRID instead.

Why two sockets and not one: pinning the source address means `bind()`ing the transmit socket to the
primary address, and the kernel then also filters *received* packets on a bound raw socket by destination
(only packets addressed to the bound address match), which would hide the multicast adverts. So the receive
socket stays unbound (device-bound only), and the transmit socket is bound and made deaf with a
drop-everything socket filter, so it never queues a copy of anything.

The sockets are non-blocking and meant for `loop.add_reader` (receive) and plain `send`/`sendmmsg`
(transmit). `open_*_in_netns` creates them inside another namespace (tests); the daemon runs inside its
namespace and uses the plain functions.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import socket
import struct
from dataclasses import dataclass

from fastvrrp.io.nsexec import call_in_netns

IPPROTO_VRRP = 112
VRRP_GROUP4 = "224.0.0.18"  # RFC 5798 5.1.1.2
VRRP_GROUP6 = "ff02::12"  # RFC 5798 5.1.2.2
VRRP_TTL = 255  # RFC 5798 5.1.1.3 / 5.1.2.3: sent with TTL / hop limit 255, checked on receive
TOS_NETWORK_CONTROL = 0xC0  # DSCP CS6, what keepalived sets; routers prioritise it

# Constants missing from Python 3.11's socket module.
IP_MULTICAST_ALL = 49
IPV6_MULTICAST_ALL = 29
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
SO_ATTACH_FILTER = 26

RCVBUF_MIN = 256 * 1024
RCVBUF_MAX = 64 * 1024 * 1024

# A classic BPF program of one instruction, `ret #0`: accept zero bytes of every packet, i.e. queue nothing.
_BPF_RET_ZERO = struct.pack("HBBI", 0x06, 0, 0, 0)


def rcvbuf_bytes(instances: int, mtu: int = 1500) -> int:
    """Receive buffer for `instances` VRRP instances on one socket.

    keepalived sizes it as instances x MTU; we keep room for a few adverts per instance because a backup
    drains in batches (docs/costs.md#receive-dwell, every few ms) and each queued skb costs more
    than its payload.
    """
    want = max(1, instances) * (mtu + 512) * 4
    return max(RCVBUF_MIN, min(RCVBUF_MAX, want))


def _set_buf(s: socket.socket, force_opt: int, opt: int, size: int) -> None:
    # As root SO_*BUFFORCE ignores net.core.*mem_max; without CAP_NET_ADMIN fall back to the capped option.
    try:
        s.setsockopt(socket.SOL_SOCKET, force_opt, size)
    except PermissionError:
        s.setsockopt(socket.SOL_SOCKET, opt, size)


def _ip_mreqn(group: str | None, ifindex: int) -> bytes:
    # struct ip_mreqn { in_addr multiaddr; in_addr address; int ifindex; }: selects the interface by index.
    multiaddr = socket.inet_aton(group) if group else b"\0\0\0\0"
    return struct.pack("4s4si", multiaddr, b"\0\0\0\0", ifindex)


def _deafen(s: socket.socket) -> None:
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; } in native layout; the kernel
    # copies the program during setsockopt, so the buffer only has to live until then.
    buf = ctypes.create_string_buffer(_BPF_RET_ZERO, len(_BPF_RET_ZERO))
    fprog = struct.pack("HL", 1, ctypes.addressof(buf))
    s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    # Anything queued between socket() and the filter: throw it away.
    while True:
        try:
            s.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            break


@dataclass(slots=True)
class VrrpSockets:
    """The receive and transmit socket of one (interface, family)."""

    ifname: str
    ifindex: int
    family: int  # socket.AF_INET or socket.AF_INET6
    rx: socket.socket
    tx: socket.socket
    unicast: bool = False

    def close(self) -> None:
        """Close both; call `loop.remove_reader(rx)` first (uvloop aborts otherwise)."""
        self.rx.close()
        self.tx.close()


def open_rx(
    ifname: str,
    ifindex: int,
    family: int,
    *,
    unicast: bool = False,
    instances: int = 1,
    group: str | None = None,
) -> socket.socket:
    """The receive socket: device-bound, joined to the VRRP group (multicast mode), non-blocking.
    `group`: another multicast group than RFC 5798's (keepalived mcast_dst_ip / vrrp_mcast_group4|6)."""
    s = socket.socket(family, socket.SOCK_RAW, IPPROTO_VRRP)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        _set_buf(s, SO_RCVBUFFORCE, socket.SO_RCVBUF, rcvbuf_bytes(instances))
        if family == socket.AF_INET:
            # Without IP_MULTICAST_ALL=0 a raw socket receives every group joined by anyone on the host.
            s.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
            if not unicast:
                s.setsockopt(
                    socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _ip_mreqn(group or VRRP_GROUP4, ifindex)
                )
            # The IPv4 raw socket delivers the IP header: TTL and source are read from it (no cmsg needed).
        elif family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
            if not unicast:
                mreq = socket.inet_pton(socket.AF_INET6, group or VRRP_GROUP6) + struct.pack("@I", ifindex)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
            # No IP header on IPv6 raw sockets: the hop limit (RFC 5798 7.1) and destination come as cmsgs.
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            # The kernel verifies the checksum at offset 6 and silently drops bad ones
            # (docs/kernel-notes.md#ipv6-raw-checksum).
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, 6)
        else:
            raise ValueError(f"unsupported address family {family}")
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


def open_tx(
    ifname: str,
    ifindex: int,
    family: int,
    *,
    primary_ip: str | None = None,
    unicast: bool = False,
    unicast_ttl: int = VRRP_TTL,
) -> socket.socket:
    """The transmit socket: bound to `primary_ip` (pins the advert's source), deaf, non-blocking.

    IPv6: `primary_ip` is the interface's link-local address (RFC 5798 5.1.2.1: the source of an IPv6 advert
    is the link-local address of the interface).
    """
    s = socket.socket(family, socket.SOCK_RAW, IPPROTO_VRRP)
    try:
        _deafen(s)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        if family == socket.AF_INET:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, VRRP_TTL)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, _ip_mreqn(None, ifindex))
            # Our own adverts must not come back to sockets in this namespace
            # (docs/kernel-notes.md#multicast-loop).
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, TOS_NETWORK_CONTROL)
            if unicast:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, unicast_ttl)
            if primary_ip:
                s.bind((primary_ip, 0))
        elif family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, 6)  # kernel fills the checksum
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, TOS_NETWORK_CONTROL)
            if unicast:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, unicast_ttl)
            if primary_ip:
                scope = ifindex if ipaddress.IPv6Address(primary_ip).is_link_local else 0
                s.bind((primary_ip, 0, 0, scope))
        else:
            raise ValueError(f"unsupported address family {family}")
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


def open_rx_tx(
    ifname: str,
    ifindex: int,
    family: int,
    primary_ip: str | None = None,
    unicast: bool = False,
    *,
    instances: int = 1,
    unicast_ttl: int = VRRP_TTL,
    group: str | None = None,
) -> VrrpSockets:
    """Both sockets of one (interface, family)."""
    rx = open_rx(ifname, ifindex, family, unicast=unicast, instances=instances, group=group)
    try:
        tx = open_tx(ifname, ifindex, family, primary_ip=primary_ip, unicast=unicast, unicast_ttl=unicast_ttl)
    except BaseException:
        rx.close()
        raise
    return VrrpSockets(ifname, ifindex, family, rx, tx, unicast)


def open_rx_tx_in_netns(netns: str | None, ifname: str, family: int, **kwargs) -> VrrpSockets:
    """`open_rx_tx` evaluated inside `netns` (the interface index is looked up there too)."""

    def make() -> VrrpSockets:
        return open_rx_tx(ifname, socket.if_nametoindex(ifname), family, **kwargs)

    return call_in_netns(netns, make)


def multicast_dest(family: int, ifindex: int) -> tuple:
    """The sendto() address of the VRRP group on an interface."""
    if family == socket.AF_INET:
        return (VRRP_GROUP4, 0)
    return (VRRP_GROUP6, 0, 0, ifindex)


def drain(s: socket.socket, bufsize: int = 65536, limit: int = 1 << 30) -> list[bytes]:
    """Everything queued on a non-blocking socket (tests and slow paths; the engine uses recvmmsg)."""
    out: list[bytes] = []
    while len(out) < limit:
        try:
            out.append(s.recv(bufsize))
        except BlockingIOError:
            break
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EINTR):
                break
            raise
    return out
