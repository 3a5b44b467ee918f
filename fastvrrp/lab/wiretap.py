"""A wire tap for tests, the demo and the failover benchmarks: what crossed a link, and when, by the kernel.

    with WireTap("lab-sw", "br0", pcap_path="/tmp/x.pcap") as tap:
        ...                               # make things happen
        last = tap.last_advert_from("192.0.2.1", vrid=51)
        took = tap.first_advert_from("192.0.2.2", vrid=51, after=last.t)
        garp = tap.first_garp("192.0.2.100", after=last.t)
        gap = tap.ping_gap("192.0.2.100", start=last.t)   # the client's outage, seconds

A background thread enters the namespace (setns on that thread only; a socket keeps the namespace it was
made in), opens an AF_PACKET/SOCK_RAW/ETH_P_ALL socket bound to one interface, puts it in promiscuous mode
(a bridge only passes frames between its ports up to its own taps when promiscuous) and turns on
SO_TIMESTAMPNS: every frame carries the kernel's receive time (CLOCK_REALTIME, ns), which does not depend on
how late this thread got the CPU. `mono_ns` records time.monotonic_ns() when the frame was read, to relate
wire times to a process's monotonic clock (the difference is the delivery latency plus the clock offset).

Frames are classified into `Event`s: VRRP adverts (decoded by the daemon's own codec, valid or not),
gratuitous ARPs, unsolicited neighbour advertisements, and ICMP/ICMPv6 echo requests and replies. Everything
else is ignored, but written to the optional pcap file, which `fastvrrp decode` can read.

Events keep the stamp as integer ns (`t_ns`); the query helpers take and compare float seconds on the
time.time() clock (`Event.t`), because their callers (fastvrrp.lab.testbed, the interop tests, the benchmarks,
the demo) mark moments with time.time().
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastvrrp.io.nsexec import enter_netns
from fastvrrp.tools import decode, pcap

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
SO_TIMESTAMPNS = 35  # == SCM_TIMESTAMPNS
SO_RCVBUFFORCE = 33
PACKET_OUTGOING = 4

ADVERT = "advert"
GARP = "garp"
NA = "na"
ECHO_REQUEST = "echo_request"
ECHO_REPLY = "echo_reply"
PING = "ping"  # a query kind: echo requests and replies

_TIMESPEC = struct.Struct("@qq")


@dataclass(frozen=True, slots=True)
class Event:
    """Something seen on the wire. `t_ns` is the kernel receive time (CLOCK_REALTIME, ns)."""

    t_ns: int
    kind: str  # ADVERT, GARP, NA, ECHO_REQUEST, ECHO_REPLY
    src: str  # IP source (adverts, pings); the announced address (GARP sender IP, NA target)
    dst: str = ""
    src_mac: str = ""  # Ethernet source; for GARP the ARP sender MAC, for NA the target link-layer address
    family: int = 4
    vrid: int = 0
    priority: int = 0
    version: int = 0
    adver_int_ms: int = 0
    addresses: tuple[str, ...] = ()
    valid: bool = True
    reason: str | None = None
    ident: int = 0  # ICMP echo identifier
    seq: int = 0  # ICMP echo sequence number
    outgoing: bool = False  # sent by the tapped host itself (PACKET_OUTGOING)
    mono_ns: int = 0  # time.monotonic_ns() when this thread read the frame
    frame: int = 0  # frame number in the tap (1-based), as in the pcap file

    @property
    def t(self) -> float:
        """The kernel receive time in seconds, the clock of time.time()."""
        return self.t_ns / 1e9

    @property
    def icmp(self) -> str:
        """For an echo "request" or "reply"; "" for any other event."""
        return {ECHO_REQUEST: "request", ECHO_REPLY: "reply"}.get(self.kind, "")


def canonical(addr: str) -> str:
    """An address (a /prefix allowed) as inet_ntop writes it, which is how events carry theirs."""
    return str(ipaddress.ip_address(addr.split("/")[0]))


def _mac_text(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def classify(
    frame: bytes, t_ns: int, codec: Any, outgoing: bool = False, mono_ns: int = 0, index: int = 0
) -> Event | None:
    """The Event an Ethernet frame represents, or None if it is none of the kinds we follow."""
    lp = pcap.link_payload(pcap.LINKTYPE_ETHERNET, frame)
    if lp is None:
        return None
    etype, payload = lp
    eth_src = _mac_text(frame[6:12])
    common: dict[str, Any] = {"outgoing": outgoing, "mono_ns": mono_ns, "frame": index}
    if etype == pcap.ETH_P_IP:
        if len(payload) < 20 or payload[0] >> 4 != 4:
            return None
        proto = payload[9]
        src = socket.inet_ntop(socket.AF_INET, payload[12:16])
        dst = socket.inet_ntop(socket.AF_INET, payload[16:20])
        if proto == decode.IPPROTO_VRRP:
            ip = decode.ipv4_vrrp(payload)
            if ip is None:
                return None
            return _advert(codec.decode_ipv4(ip), t_ns, src, dst, eth_src, 4, common)
        if proto == 1:
            hl = (payload[0] & 0x0F) * 4
            icmp = payload[hl:]
            if len(icmp) >= 8 and icmp[0] in (0, 8) and int.from_bytes(payload[6:8], "big") & 0x1FFF == 0:
                ident, seq = struct.unpack("!HH", icmp[4:8])
                kind = ECHO_REQUEST if icmp[0] == 8 else ECHO_REPLY
                return Event(t_ns, kind, src, dst, eth_src, 4, ident=ident, seq=seq, **common)
        return None
    if etype == pcap.ETH_P_IPV6:
        up = decode.ipv6_upper(payload)
        if up is None:
            return None
        nh, body, src6, dst6, hlim = up
        src = socket.inet_ntop(socket.AF_INET6, src6)
        dst = socket.inet_ntop(socket.AF_INET6, dst6)
        if nh == decode.IPPROTO_VRRP:
            return _advert(codec.decode_ipv6(body, src6, dst6, hlim), t_ns, src, dst, eth_src, 6, common)
        if nh == 58 and len(body) >= 8:
            if body[0] in (128, 129):
                ident, seq = struct.unpack("!HH", body[4:8])
                kind = ECHO_REQUEST if body[0] == 128 else ECHO_REPLY
                return Event(t_ns, kind, src, dst, eth_src, 6, ident=ident, seq=seq, **common)
            # RFC 4861 4.4: an NA with Solicited clear is unsolicited (RFC 5798 6.4.2 / 8.2.2 duty).
            if body[0] == 136 and len(body) >= 24 and not body[4] & 0x40:
                target = socket.inet_ntop(socket.AF_INET6, body[8:24])
                return Event(t_ns, NA, target, dst, _tlla(body[24:]) or eth_src, 6, **common)
        return None
    if etype == pcap.ETH_P_ARP:
        # htype 1, ptype IPv4, hlen 6, plen 4; a gratuitous ARP has sender IP == target IP (RFC 5227 3,
        # RFC 5798 8.1.2), as a request (what keepalived and fastvrrp send) or a reply.
        if len(payload) < 28 or payload[:6] != b"\x00\x01\x08\x00\x06\x04":
            return None
        op = int.from_bytes(payload[6:8], "big")
        spa, tpa = payload[14:18], payload[24:28]
        if op in (1, 2) and spa == tpa:
            announced = socket.inet_ntop(socket.AF_INET, spa)
            return Event(t_ns, GARP, announced, "", _mac_text(payload[8:14]), 4, **common)
    return None


def _tlla(opts: bytes) -> str:
    pos = 0
    while pos + 8 <= len(opts):
        otype, olen = opts[pos], opts[pos + 1] * 8
        if olen == 0:
            return ""
        if otype == 2:  # Target Link-Layer Address (RFC 4861 4.6.1)
            return _mac_text(opts[pos + 2 : pos + 8])
        pos += olen
    return ""


def _advert(
    pkt: Any, t_ns: int, src: str, dst: str, eth_src: str, family: int, common: dict[str, Any]
) -> Event:
    return Event(
        t_ns, ADVERT, src, dst, eth_src, family,
        vrid=pkt.vrid, priority=pkt.priority, version=pkt.version, adver_int_ms=pkt.adver_int_ms,
        addresses=tuple(pkt.address_texts), valid=bool(pkt.valid), reason=pkt.reason, **common,
    )  # fmt: skip


@dataclass
class WireTap:
    """Capture on `ifname` inside namespace `ns` (None: this process's namespace) from a thread."""

    ns: str | None
    ifname: str | None
    pcap_path: str | None = None
    promisc: bool = True
    rcvbuf: int = 8 << 20
    _events: list[Event] = field(default_factory=list, init=False, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _stop_r: int = field(default=-1, init=False, repr=False)
    _stop_w: int = field(default=-1, init=False, repr=False)
    _error: BaseException | None = field(default=None, init=False, repr=False)
    frames: int = field(default=0, init=False)

    # --- life cycle -------------------------------------------------------------------------------------
    def start(self, timeout: float = 5.0) -> WireTap:
        """Start capturing; returns once the socket is open and bound (so nothing sent after is missed)."""
        if self._thread is not None:
            raise RuntimeError("WireTap already started")
        from fastvrrp import _wire

        self._codec = _wire
        self._stop_r, self._stop_w = os.pipe()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"wiretap-{self.ifname}", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("wiretap did not start")
        if self._error is not None:
            self._thread.join(1)
            self._thread = None
            raise self._error
        return self

    def stop(self, timeout: float = 5.0) -> list[Event]:
        """Stop capturing (frames already queued in the socket are still read) and return the events."""
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(timeout)
            self._thread = None
            os.close(self._stop_r)
            os.close(self._stop_w)
        return self.events

    def __enter__(self) -> WireTap:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _open(self) -> socket.socket:
        if self.ns is not None:
            enter_netns(self.ns)
        # Bound to one interface: protocol 0 until bind(), so no frame of another interface slips in before.
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0 if self.ifname else socket.htons(ETH_P_ALL))
        try:
            try:
                s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.rcvbuf)
            except OSError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            if self.ifname is not None:
                s.bind((self.ifname, ETH_P_ALL))
                if self.promisc:
                    # struct packet_mreq { int ifindex; u16 type; u16 alen; u8 address[8]; }
                    mreq = struct.pack(
                        "@iHH8s", socket.if_nametoindex(self.ifname), PACKET_MR_PROMISC, 0, b""
                    )
                    s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        return s

    def _run(self, ready: threading.Event) -> None:
        try:
            sock = self._open()
        except BaseException as e:  # reported by start()
            self._error = e
            ready.set()
            return
        writer = None
        pf = None
        if self.pcap_path:
            pf = open(self.pcap_path, "wb")  # noqa: SIM115 - closed below
            writer = pcap.PcapWriter(pf, pcap.LINKTYPE_ETHERNET, nano=True)
        ready.set()
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        ancsize = socket.CMSG_SPACE(_TIMESPEC.size)
        try:
            stopping = False
            while True:
                if not stopping:
                    for fd, _ev in poller.poll(1000):
                        if fd == self._stop_r:
                            stopping = True
                # Drain everything queued, also after a stop request: a frame the kernel already
                # timestamped belongs to the capture.
                while True:
                    try:
                        data, anc, _flags, addr = sock.recvmsg(65536, ancsize)
                    except BlockingIOError:
                        break
                    mono = time.monotonic_ns()
                    t_ns = 0
                    for level, ctype, cdata in anc:
                        if level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS:
                            sec, nsec = _TIMESPEC.unpack(cdata[: _TIMESPEC.size])
                            t_ns = sec * 1_000_000_000 + nsec
                    if t_ns == 0:  # no timestamp cmsg: should not happen, fall back to our own clock
                        t_ns = time.time_ns()
                    self.frames += 1
                    if writer is not None:
                        writer.write(t_ns, data)
                    # Malformed frames never raise out of this loop: classify() only reads what it checks.
                    ev = classify(data, t_ns, self._codec, addr[2] == PACKET_OUTGOING, mono, self.frames)
                    if ev is not None:
                        with self._cond:
                            self._events.append(ev)
                            self._cond.notify_all()
                if stopping:
                    break
        finally:
            poller.unregister(sock.fileno())
            sock.close()
            if pf is not None:
                pf.close()

    # --- queries ----------------------------------------------------------------------------------------
    @property
    def events(self) -> list[Event]:
        """A snapshot of the events so far, in capture order."""
        with self._cond:
            return list(self._events)

    def wait(
        self, predicate: Callable[[Event], bool], timeout: float = 10.0, what: str = "an event"
    ) -> Event:
        """The first event (already seen or still to come) matching `predicate`; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for ev in self._events[seen:]:
                    if predicate(ev):
                        return ev
                seen = len(self._events)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what} on the wire")
                self._cond.wait(left)

    def snapshot(self, kind: str | None = None) -> list[Event]:
        """The events of one kind so far (PING: echo requests and replies), or all of them."""
        kinds = (ECHO_REQUEST, ECHO_REPLY) if kind == PING else (kind,)
        return [e for e in self.events if kind is None or e.kind in kinds]

    # Times below are float seconds (Event.t). Adverts count whether or not the codec judged them valid
    # (`valid` narrows that), so a malformed advert still shows who was claiming the VRID.
    def adverts(
        self, vrid: int | None = None, src: str | None = None, after: float = 0.0, valid: bool | None = None
    ) -> list[Event]:
        """Adverts (for `vrid`, from `src`) received strictly after `after`, in capture order."""
        src = None if src is None else canonical(src)
        return [
            e
            for e in self.snapshot(ADVERT)
            if e.t > after
            and (vrid is None or e.vrid == vrid)
            and (src is None or e.src == src)
            and (valid is None or e.valid == valid)
        ]

    def last_advert_from(self, src: str, vrid: int, before: float = math.inf) -> Event | None:
        """The last advert from `src` for `vrid` at or before `before`."""
        found = [e for e in self.adverts(vrid, src) if e.t <= before]
        return found[-1] if found else None

    def first_advert_from(
        self, src: str, vrid: int, after: float = 0.0, min_priority: int = 1
    ) -> Event | None:
        """The first advert from `src` for `vrid` after `after` with at least `min_priority` (by default
        not a priority-0 resignation, RFC 5798 6.4.3: that is the old master leaving, not a new one)."""
        return next((e for e in self.adverts(vrid, src, after) if e.priority >= min_priority), None)

    def first_garp(self, vip: str, after: float = 0.0) -> Event | None:
        """The first gratuitous ARP (IPv4) or unsolicited NA (IPv6) announcing `vip` after `after`."""
        vip = canonical(vip)
        return next((e for e in self.events if e.kind in (GARP, NA) and e.src == vip and e.t > after), None)

    def ping_gap(self, vip: str, start: float, end: float | None = None) -> float | None:
        """Longest time in seconds without an echo reply from `vip` over [start, end] (end defaults to
        start): the gaps between consecutive replies from the last one at or before `start` to the first
        one after `end`. None while either of those two replies is missing."""
        end = start if end is None else end
        vip = canonical(vip)
        replies = sorted(e.t for e in self.events if e.kind == ECHO_REPLY and e.src == vip)
        before = [t for t in replies if t <= start]
        after = [t for t in replies if t > end]
        if not before or not after:
            return None
        span = [before[-1], *(t for t in replies if start < t <= end), after[0]]
        return max(b - a for a, b in itertools.pairwise(span))
