"""Addresses and link state over rtnetlink, usable from a uvloop event loop.

pyroute2's `IPRoute`/`AsyncIPRoute` cannot run on the uvloop loop itself
(docs/kernel-notes.md#uvloop-and-pyroute2), so:

- `NetlinkWorker` owns a one-thread executor that does every netlink call; the loop thread only awaits
  futures. What every run needs (interface indexes, address dumps, VIPs) is raw netlink on the worker's
  own socket; pyroute2 is imported, and the thread's `IPRoute` built on a private selector loop, only when a
  run first asks for what only pyroute2 does here (virtual routes and rules, VMAC interfaces): it costs
  about 15 MiB of memory (docs/costs.md#imports).
- Mass failover does not go through pyroute2 at all (its Python encoding costs ~180 us per request,
  docs/costs.md#netlink-encoding): each VIP's RTM_NEWADDR / RTM_DELADDR is encoded once (`AddrBatch`), and a
  whole failover's worth is written with a few `send()`s on a raw NETLINK_ROUTE socket, reading back only the
  ACKs (`NetlinkBatcher`). The worker thread runs it, so the loop keeps ticking while the kernel works.
- `LinkMonitor` is a raw NETLINK_ROUTE socket bound to the link and address groups and registered with
  `loop.add_reader`; the few fields the daemon needs are read straight from the message bytes. The kernel
  stamps an IPv4 address event with the port id of the socket whose request caused it: the events of this
  process's own `NetlinkBatcher` (its VIPs going in and out) are skipped unread (`own_events`), unless the
  monitor is asked to report them too (`report_own`, for -a).

Reconcile semantics throughout: adding an address that exists (EEXIST) and deleting one that is absent
(EADDRNOTAVAIL) count as success, so "make it so" can be repeated safely.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import itertools
import logging
import os
import socket
import struct
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fastvrrp.io.nsexec import call_in_netns, enter_netns

log = logging.getLogger("fastvrrp.io.netlink")

# --- rtnetlink constants (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h, linux/if.h) ----------------
NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # ACKs carry only the request's header, not the whole request
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_BROADCAST = 4
IFA_CACHEINFO = 6
IFA_FLAGS = 8
IFA_F_SECONDARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_HOMEADDRESS = 0x10
IFA_F_TENTATIVE = 0x40
IFA_F_MANAGETEMPADDR = 0x100
IFA_F_NOPREFIXROUTE = 0x200
IFA_F_MCAUTOJOIN = 0x400
INFINITY_LIFE_TIME = 0xFFFFFFFF
IFLA_IFNAME = 3
IFF_UP = 0x1
IFF_RUNNING = 0x40
IFNAMSIZ = 16  # labels are at most 15 characters (the kernel answers ERANGE beyond)

SCOPES = {"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
#: the flag words of an address line (keepalived.conf(5)) and the IFA_F_ flag each sets
ADDRESS_FLAGS = {
    "home": IFA_F_HOMEADDRESS,
    "mngtmpaddr": IFA_F_MANAGETEMPADDR,
    "noprefixroute": IFA_F_NOPREFIXROUTE,
    "autojoin": IFA_F_MCAUTOJOIN,
}

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFADDRMSG = struct.Struct("=BBBBi")  # family, prefixlen, flags, scope, index
_IFA_CACHEINFO = struct.Struct("=IIII")  # preferred, valid, cstamp, tstamp
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_RTATTR = struct.Struct("=HH")
_NLMSGERR = struct.Struct("=i")

#: what each operation forgives when reconciling
_BENIGN = {RTM_NEWADDR: errno.EEXIST, RTM_DELADDR: errno.EADDRNOTAVAIL}


def _align4(n: int) -> int:
    return (n + 3) & ~3


def _rtattr(kind: int, payload: bytes) -> bytes:
    n = _RTATTR.size + len(payload)
    return _RTATTR.pack(n, kind) + payload + b"\0" * (_align4(n) - n)


def _iter_attrs(buf: bytes | memoryview, off: int, end: int) -> Iterable[tuple[int, bytes | memoryview]]:
    while off + _RTATTR.size <= end:
        alen, kind = _RTATTR.unpack_from(buf, off)
        if alen < _RTATTR.size or off + alen > end:
            return  # malformed: stop reading this message
        yield kind & 0x3FFF, buf[off + _RTATTR.size : off + alen]
        off += _align4(alen)


def _iter_msgs(data: bytes) -> Iterable[tuple[int, int, int, int, int, int]]:
    """(type, flags, seq, port id, offset of payload, end) for each netlink message in a datagram."""
    off = 0
    while off + _NLMSGHDR.size <= len(data):
        mlen, mtype, mflags, seq, pid = _NLMSGHDR.unpack_from(data, off)
        if mlen < _NLMSGHDR.size or off + mlen > len(data):
            return
        yield mtype, mflags, seq, pid, off + _NLMSGHDR.size, off + mlen
        off += _align4(mlen)


def _iter_acks(data: bytes) -> Iterable[tuple[int, int]]:
    """(seq, errno) of each ACK (NLMSG_ERROR; errno 0 = done) in a datagram; one too short to hold its
    error code is skipped (its request is then reported unanswered)."""
    for mtype, _f, seq, _pid, p, end in _iter_msgs(data):
        if mtype == NLMSG_ERROR and end - p >= _NLMSGERR.size:
            yield seq, -_NLMSGERR.unpack_from(data, p)[0]


def _netns_inode() -> int:
    """The network namespace of the calling thread (port ids are unique only within one namespace)."""
    return os.stat("/proc/thread-self/ns/net").st_ino


#: (namespace inode, port id) of this process's NetlinkBatchers: the address events they cause are ours
_OWN_PORTS: set[tuple[int, int]] = set()


# --- VIPs ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VipSpec:
    """One address as configured (a `virtual_ipaddress` or `static_ipaddress` line), as the kernel gets it."""

    address: str
    prefixlen: int
    ifindex: int
    label: str | None = None
    scope: int = 0  # SCOPES values
    broadcast: str | None = None  # IPv4 only
    peer: str | None = None  # the other end of a point-to-point address (`peer`)
    flags: int = 0  # ADDRESS_FLAGS values (home, mngtmpaddr, noprefixroute, autojoin)
    dad: bool = False  # IPv6: run duplicate address detection (`-nodad`); by default the address skips it
    preferred_lft: int | None = None  # IPv6: seconds the address is preferred as a source; None: forever

    def __post_init__(self) -> None:
        ip = ipaddress.ip_address(self.address)
        if not 0 <= self.prefixlen <= ip.max_prefixlen:
            raise ValueError(f"prefix length {self.prefixlen} out of range for {self.address}")
        if self.label is not None and not 0 < len(self.label.encode("utf-8", "surrogateescape")) < IFNAMSIZ:
            raise ValueError(f"address label {self.label!r} must be 1..15 bytes")
        if self.broadcast is not None and ip.version != 4:
            raise ValueError("a broadcast address only exists for IPv4")
        if self.peer is not None and ipaddress.ip_address(self.peer).version != ip.version:
            raise ValueError(f"peer {self.peer} is not of the family of {self.address}")
        if self.preferred_lft is not None and not 0 <= self.preferred_lft < INFINITY_LIFE_TIME:
            raise ValueError(f"preferred_lft {self.preferred_lft} out of range")

    @property
    def family(self) -> int:
        return socket.AF_INET6 if ":" in self.address else socket.AF_INET

    @property
    def packed(self) -> bytes:
        return socket.inet_pton(self.family, self.address)

    def text(self) -> str:
        return f"{self.address}/{self.prefixlen}"


def encode_addr(spec: VipSpec, op: int, seq: int = 0) -> bytes:
    """The RTM_NEWADDR (create, exclusive, ACK) or RTM_DELADDR request for one address, as bytes."""
    v6 = spec.family == socket.AF_INET6
    local = spec.packed
    # IFA_ADDRESS is the peer of a point-to-point address (the kernel matches a removal on it too)
    attrs = [_rtattr(IFA_LOCAL, local), _rtattr(IFA_ADDRESS, _peer(spec) or local)]
    flags = 0
    if op == RTM_NEWADDR:
        flags = spec.flags
        if v6 and not spec.dad:
            # RFC 5798 8.2 (IPv6): a VIP must be usable at once; DAD would leave it tentative for ~1 s
            # (docs/kernel-notes.md#ipv6-dad).
            flags |= IFA_F_NODAD
        if spec.label:
            attrs.append(_rtattr(IFA_LABEL, spec.label.encode("utf-8", "surrogateescape") + b"\0"))
        if spec.broadcast:
            attrs.append(_rtattr(IFA_BROADCAST, socket.inet_aton(spec.broadcast)))
        if flags:
            attrs.append(_rtattr(IFA_FLAGS, struct.pack("=I", flags)))
        if v6 and spec.preferred_lft is not None:
            life = _IFA_CACHEINFO.pack(spec.preferred_lft, INFINITY_LIFE_TIME, 0, 0)
            attrs.append(_rtattr(IFA_CACHEINFO, life))
        mflags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    elif op == RTM_DELADDR:
        mflags = NLM_F_REQUEST | NLM_F_ACK
    else:
        raise ValueError(f"not an address operation: {op}")
    body = _IFADDRMSG.pack(spec.family, spec.prefixlen, flags & 0xFF, spec.scope, spec.ifindex)
    payload = body + b"".join(attrs)
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(payload), op, mflags, seq, 0) + payload


def _peer(spec: VipSpec) -> bytes | None:
    return socket.inet_pton(spec.family, spec.peer) if spec.peer else None


@dataclass(slots=True)
class ApplyResult:
    """Outcome of applying addresses: `done` changed something, `already` was already so, `failed` did not."""

    done: list[VipSpec] = field(default_factory=list)
    already: list[VipSpec] = field(default_factory=list)
    failed: list[tuple[VipSpec, int]] = field(default_factory=list)  # (spec, errno)

    @property
    def ok(self) -> bool:
        return not self.failed

    def record(self, spec: VipSpec, op: int, err: int) -> None:
        if err == 0:
            self.done.append(spec)
        elif err == _BENIGN[op]:
            self.already.append(spec)
        else:
            self.failed.append((spec, err))


class AddrBatch:
    """The encoded add and delete requests of a set of VIPs (one VRRP instance), made once at config load."""

    __slots__ = ("specs", "add_msgs", "del_msgs")

    def __init__(self, specs: Sequence[VipSpec]):
        self.specs = tuple(specs)
        self.add_msgs = tuple(encode_addr(s, RTM_NEWADDR) for s in self.specs)
        self.del_msgs = tuple(encode_addr(s, RTM_DELADDR) for s in self.specs)

    def __len__(self) -> int:
        return len(self.specs)


class NetlinkBatcher:
    """Writes pre-encoded address requests on a raw NETLINK_ROUTE socket and reads back only the ACKs.

    Blocking by design: run it in the netlink worker thread. rtnetlink handles a request inside the sender's
    send(), so once send() returns every ACK is already queued; chunks keep the queued ACKs well inside the
    receive buffer (an overflowing ACK queue loses ACKs and raises ENOBUFS).
    """

    CHUNK_MSGS = 512
    CHUNK_BYTES = 64 * 1024

    def __init__(self) -> None:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        try:
            for force, opt in ((32, socket.SO_SNDBUF), (33, socket.SO_RCVBUF)):
                try:
                    s.setsockopt(socket.SOL_SOCKET, force, 4 * 1024 * 1024)
                except PermissionError:
                    s.setsockopt(socket.SOL_SOCKET, opt, 4 * 1024 * 1024)
            s.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            s.bind((0, 0))
            s.settimeout(5.0)
            self.own = (_netns_inode(), s.getsockname()[0])
        except BaseException:
            s.close()
            raise
        self.sock = s
        self._seq = itertools.count(1)
        self.requests = 0
        self.lost_acks = 0
        _OWN_PORTS.add(self.own)

    def close(self) -> None:
        _OWN_PORTS.discard(self.own)
        self.sock.close()

    def dump(self, mtype: int, family: int) -> list[tuple[int, bytes, int, int]]:
        """A dump request (RTM_GETADDR, RTM_GETLINK) on this socket: (type, datagram, payload offset, end) of
        every answer. Blocking: the worker thread's."""
        seq = next(self._seq) & 0xFFFFFFFF
        body = (
            _IFADDRMSG.pack(family, 0, 0, 0, 0)
            if mtype == RTM_GETADDR
            else _IFINFOMSG.pack(family, 0, 0, 0, 0)
        )
        self.sock.send(
            _NLMSGHDR.pack(_NLMSGHDR.size + len(body), mtype, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body
        )
        out: list[tuple[int, bytes, int, int]] = []
        while True:
            data = self.sock.recv(1 << 20)
            for t, _f, s, _pid, p, end in _iter_msgs(data):
                if s != seq:
                    continue  # a late ACK of an earlier batch
                if t == NLMSG_DONE:
                    return out
                if t == NLMSG_ERROR:
                    err = -_NLMSGERR.unpack_from(data, p)[0] if end - p >= _NLMSGERR.size else errno.EPROTO
                    raise OSError(err, os.strerror(err))
                out.append((t, data, p, end))

    def apply(self, op: int, specs: Sequence[VipSpec], msgs: Sequence[bytes]) -> ApplyResult:
        result = ApplyResult()
        self._apply([(op, spec, msg, result) for spec, msg in zip(specs, msgs, strict=True)])
        return result

    def apply_batches(self, ops: Sequence[tuple[AddrBatch, bool]]) -> list[ApplyResult]:
        """Several instances' VIPs added (True) or removed (False) in order, in as few send()s as the chunk
        limits allow (a mass failover: one trip to the kernel for hundreds of instances); one result each."""
        results = [ApplyResult() for _ in ops]
        items: list[tuple[int, VipSpec, bytes, ApplyResult]] = []
        for (batch, add), result in zip(ops, results, strict=True):
            op = RTM_NEWADDR if add else RTM_DELADDR
            msgs = batch.add_msgs if add else batch.del_msgs
            items.extend((op, spec, msg, result) for spec, msg in zip(batch.specs, msgs, strict=True))
        self._apply(items)
        return results

    def _apply(self, items: Sequence[tuple[int, VipSpec, bytes, ApplyResult]]) -> None:
        i = 0
        n = len(items)
        while i < n:
            j = i
            size = 0
            while j < n and j - i < self.CHUNK_MSGS and size + len(items[j][2]) <= self.CHUNK_BYTES:
                size += len(items[j][2])
                j += 1
            j = max(j, i + 1)
            self._apply_chunk(items[i:j])
            i = j

    def _apply_chunk(self, items: Sequence[tuple[int, VipSpec, bytes, ApplyResult]]) -> None:
        buf = bytearray(b"".join(it[2] for it in items))
        pending: dict[int, tuple[int, VipSpec, bytes, ApplyResult]] = {}
        off = 0
        for it in items:
            seq = next(self._seq) & 0xFFFFFFFF
            struct.pack_into("=I", buf, off + 8, seq)  # nlmsg_seq: match each ACK to its VIP
            pending[seq] = it
            off += len(it[2])
        self.sock.send(buf)
        self.requests += len(items)
        while pending:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            for seq, err in _iter_acks(data):
                if seq not in pending:
                    continue
                op, spec, _msg, result = pending.pop(seq)
                result.record(spec, op, err)
        for _op, spec, _msg, result in pending.values():  # no ACK within the timeout: report, do not guess
            self.lost_acks += 1
            result.failed.append((spec, errno.ETIMEDOUT))

    def add(self, batch: AddrBatch) -> ApplyResult:
        return self.apply(RTM_NEWADDR, batch.specs, batch.add_msgs)

    def remove(self, batch: AddrBatch) -> ApplyResult:
        return self.apply(RTM_DELADDR, batch.specs, batch.del_msgs)


# --- the worker -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddrInfo:
    """An address as the kernel lists it."""

    address: str
    prefixlen: int
    family: int
    ifindex: int
    label: str | None
    scope: int
    flags: int


class NetlinkWorker:
    """A one-thread executor that owns an `IPRoute` and a `NetlinkBatcher`; every method is a coroutine.

    `netns`: run the thread inside that namespace (tests); the daemon runs inside its namespace already.
    """

    def __init__(self, netns: str | None = None):
        self.netns = netns
        self._ipr_obj: Any = None
        self._batcher: NetlinkBatcher | None = None
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="netlink", initializer=self._init
        )
        self._closed = False

    def _init(self) -> None:
        # Runs in the worker thread.
        if self.netns is not None:
            enter_netns(self.netns)
        self._batcher = NetlinkBatcher()

    @property
    def _ipr(self) -> Any:
        """The worker thread's pyroute2 IPRoute, made on first use. pyroute2 refuses a loop created in another
        thread, and no loop runs in this thread, so it gets a private selector loop
        (docs/kernel-notes.md#uvloop-and-pyroute2)."""
        if self._ipr_obj is None:
            from pyroute2 import IPRoute

            self._ipr_obj = IPRoute(use_event_loop=asyncio.SelectorEventLoop())
        return self._ipr_obj

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._closed:
            raise RuntimeError("netlink worker is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def start(self) -> None:
        """Build the thread's sockets now (construction costs a few ms), so the first failover does not."""
        await self._run(lambda: None)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def shutdown() -> None:
            if self._batcher is not None:
                self._batcher.close()
            if self._ipr_obj is not None:
                self._ipr_obj.close()

        try:
            self._executor.submit(shutdown).result(timeout=10)
        finally:
            self._executor.shutdown(wait=True)

    # --- addresses one call at a time (static addresses, tests) ---------------------------------------------
    def _addr_call(self, op: int, specs: Sequence[VipSpec]) -> ApplyResult:
        """The same requests a failover sends (encode_addr), one ACK each: a VIP and a static address are
        added alike."""
        return self._require_batcher().apply(op, specs, [encode_addr(s, op) for s in specs])

    async def add_addresses(self, specs: Sequence[VipSpec]) -> ApplyResult:
        return await self._run(self._addr_call, RTM_NEWADDR, list(specs))

    async def remove_addresses(self, specs: Sequence[VipSpec]) -> ApplyResult:
        return await self._run(self._addr_call, RTM_DELADDR, list(specs))

    def _list(self, ifindex: int | None, family: int) -> list[AddrInfo]:
        out = []
        for _t, data, p, end in self._require_batcher().dump(RTM_GETADDR, family):
            info = _addr_info(data, p, end)
            if info is not None and (ifindex is None or info.ifindex == ifindex):
                out.append(info)
        return out

    async def list_addresses(self, ifindex: int | None = None, family: int = 0) -> list[AddrInfo]:
        return await self._run(self._list, ifindex, family)

    async def link_index(self, ifname: str) -> int | None:
        if self.netns is None:
            # One ioctl, in the namespace the loop runs in (the daemon's): no trip to the worker thread,
            # which a start-up of a thousand instances would make a thousand times.
            return _if_index(ifname)
        return await self._run(_if_index, ifname)

    def _primary(self, ifname: str, family: int) -> str | None:
        index = _if_index(ifname)
        if index is None:
            return None
        for a in self._list(index, family):
            if family == socket.AF_INET and not a.flags & IFA_F_SECONDARY:
                return a.address  # the first primary address: the one the kernel sources from
            if family == socket.AF_INET6 and a.scope == SCOPES["link"] and not a.flags & IFA_F_TENTATIVE:
                return a.address  # RFC 5798 5.1.2.1: IPv6 adverts come from the link-local address
        return None

    async def primary_address(self, ifname: str, family: int) -> str | None:
        """The interface's primary IPv4 address, or its (non-tentative) IPv6 link-local address."""
        return await self._run(self._primary, ifname, family)

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(ipr, *args) in the worker thread, for anything else pyroute2 can do (links, routes, rules)."""
        return await self._run(lambda: fn(self._ipr, *args))

    async def in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(*args) in the worker thread (in its namespace), without pyroute2."""
        return await self._run(fn, *args)

    # --- pre-encoded batches (failover) ---------------------------------------------------------------------
    async def fast_add(self, batch: AddrBatch) -> ApplyResult:
        return await self._run(lambda: self._require_batcher().add(batch))

    async def fast_remove(self, batch: AddrBatch) -> ApplyResult:
        return await self._run(lambda: self._require_batcher().remove(batch))

    async def fast_apply(self, ops: Sequence[tuple[AddrBatch, bool]]) -> list[ApplyResult]:
        """Many instances' address changes at once, in order (NetlinkBatcher.apply_batches)."""
        return await self._run(lambda: self._require_batcher().apply_batches(ops))

    def _require_batcher(self) -> NetlinkBatcher:
        if self._batcher is None:
            raise RuntimeError("netlink worker thread failed to start")
        return self._batcher

    async def remove_stale(self, specs: Sequence[VipSpec]) -> list[VipSpec]:
        """Startup cleanup: delete these VIPs where a crashed earlier run left them; return those removed."""
        result = await self.fast_remove(AddrBatch(specs))
        return result.done


def _if_index(ifname: str) -> int | None:
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        return None


def _addr_info(data: bytes, p: int, end: int) -> AddrInfo | None:
    """An RTM_NEWADDR message as an AddrInfo (None without an address)."""
    family, prefixlen, flags, scope, index = _IFADDRMSG.unpack_from(data, p)
    local = address = label = None
    for kind, val in _iter_attrs(data, p + _IFADDRMSG.size, end):
        if kind == IFA_LOCAL:
            local = bytes(val)
        elif kind == IFA_ADDRESS:
            address = bytes(val)
        elif kind == IFA_LABEL:
            label = bytes(val).split(b"\0", 1)[0].decode()
        elif kind == IFA_FLAGS and len(val) >= 4:
            (flags,) = struct.unpack_from("=I", val)
    raw = local or address
    if raw is None or family not in (socket.AF_INET, socket.AF_INET6):
        return None
    return AddrInfo(socket.inet_ntop(family, raw), prefixlen, family, index, label, scope, flags)


# --- link and address events ------------------------------------------------------------------------------

LinkCallback = Callable[[int, str, bool], None]  # (ifindex, ifname, up)
AddrCallback = Callable[[int, int, str, int, bool], None]  # (ifindex, family, address, prefixlen, added)


class LinkMonitor:
    """Link up/down and address add/remove events, read on the event loop through `add_reader`.

    `on_link` is called when an interface's up state (IFF_UP and IFF_RUNNING, as keepalived judges it)
    changes, and once per interface at start; `on_addr` for every address event (the daemon puts back a VIP
    that disappears while MASTER). After a receive-buffer overflow (ENOBUFS) events were lost: the socket is
    recreated, links are dumped again (changes reported through `on_link`), and `on_resync` is called so the
    daemon can re-check its addresses.
    """

    GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_link: LinkCallback,
        on_addr: AddrCallback | None = None,
        on_resync: Callable[[], None] | None = None,
        netns: str | None = None,
        rcvbuf: int = 4 * 1024 * 1024,
    ):
        self.loop = loop
        self.on_link = on_link
        self.on_addr = on_addr
        self.on_resync = on_resync
        self.netns = netns
        self.rcvbuf = rcvbuf
        self.links: dict[int, tuple[str, bool]] = {}
        self._sock: socket.socket | None = None
        self._fd = -1
        self._ns = 0  # the monitored namespace's inode
        self.resyncs = 0
        self.malformed = 0
        self.callback_errors = 0
        self.own_events = 0  # address events of our own NetlinkBatcher, skipped
        self.report_own = False  # report them too (-a logs every address event)

    def _open(self) -> tuple[socket.socket, int]:
        def make() -> tuple[socket.socket, int]:
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, NETLINK_ROUTE)
            try:
                try:
                    s.setsockopt(socket.SOL_SOCKET, 33, self.rcvbuf)  # SO_RCVBUFFORCE
                except PermissionError:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
                s.bind((0, self.GROUPS))
            except BaseException:
                s.close()
                raise
            return s, _netns_inode()

        return call_in_netns(self.netns, make)

    def start(self) -> None:
        self._sock, self._ns = self._open()
        self._fd = self._sock.fileno()
        self.loop.add_reader(self._fd, self._on_readable)
        self._dump_links()

    def close(self) -> None:
        if self._sock is None:
            return
        # uvloop aborts the process if a registered fd is closed first
        # (docs/kernel-notes.md#remove-the-reader-before-closing).
        self.loop.remove_reader(self._fd)
        self._sock.close()
        self._sock = None
        self._fd = -1

    def _dump_links(self) -> None:
        # The answers are RTM_NEWLINK messages on this same socket, handled like events.
        assert self._sock is not None
        req = _NLMSGHDR.pack(_NLMSGHDR.size + 16, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
        self._sock.send(req + _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0))

    def _resync(self) -> None:
        self.resyncs += 1
        self.close()
        self.start()
        if self.on_resync is not None:
            self.on_resync()

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        # add_reader is level-triggered: drain until EAGAIN (docs/kernel-notes.md#readers-are-level-triggered)
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self._resync()
                    return
                raise
            self._handle(data)

    def _handle(self, data: bytes) -> None:
        for mtype, _flags, _seq, pid, p, end in _iter_msgs(data):
            try:
                if mtype in (RTM_NEWLINK, RTM_DELLINK):
                    self._link_msg(mtype, data, p, end)
                elif mtype in (RTM_NEWADDR, RTM_DELADDR) and self.on_addr is not None:
                    if pid and not self.report_own and (self._ns, pid) in _OWN_PORTS:
                        self.own_events += 1  # our own VIP change coming back: nothing to learn from it
                        continue
                    self._addr_msg(mtype, data, p, end)
            except (struct.error, ValueError, UnicodeDecodeError):
                self.malformed += 1

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a daemon bug must not kill the event source: count and log it
            self.callback_errors += 1
            log.exception("link monitor callback %r failed", fn)

    def _link_msg(self, mtype: int, data: bytes, p: int, end: int) -> None:
        if end - p < _IFINFOMSG.size:  # (unpack_from would read the next message's bytes)
            raise ValueError("RTM_*LINK shorter than its ifinfomsg")
        _fam, _type, index, flags, _change = _IFINFOMSG.unpack_from(data, p)
        name = ""
        for kind, val in _iter_attrs(data, p + _IFINFOMSG.size, end):
            if kind == IFLA_IFNAME:
                name = bytes(val).split(b"\0", 1)[0].decode()
        up = mtype == RTM_NEWLINK and (flags & (IFF_UP | IFF_RUNNING)) == (IFF_UP | IFF_RUNNING)
        old = self.links.get(index)
        if mtype == RTM_DELLINK:
            self.links.pop(index, None)
            name = name or (old[0] if old else "")
        else:
            self.links[index] = (name, up)
        if old is None or old[1] != up:
            self._call(self.on_link, index, name, up)

    def _addr_msg(self, mtype: int, data: bytes, p: int, end: int) -> None:
        if end - p < _IFADDRMSG.size:
            raise ValueError("RTM_*ADDR shorter than its ifaddrmsg")
        family, prefixlen, _flags, _scope, index = _IFADDRMSG.unpack_from(data, p)
        local = address = None
        for kind, val in _iter_attrs(data, p + _IFADDRMSG.size, end):
            if kind == IFA_LOCAL:
                local = bytes(val)
            elif kind == IFA_ADDRESS:
                address = bytes(val)
        raw = local or address
        if raw is None or family not in (socket.AF_INET, socket.AF_INET6):
            self.malformed += 1
            return
        assert self.on_addr is not None
        self._call(
            self.on_addr, index, family, socket.inet_ntop(family, raw), prefixlen, mtype == RTM_NEWADDR
        )
