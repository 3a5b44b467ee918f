"""Gratuitous ARP and unsolicited NA: when to send (sans-I/O) and how (an AF_PACKET socket).

RFC 5798 6.4.1 / 6.4.2: on becoming master, broadcast a gratuitous ARP for each IPv4 VIP and an unsolicited
neighbour advertisement for each IPv6 VIP, with the virtual MAC as link-layer source. keepalived repeats
these, and its knobs (keepalived.conf(5)) are the ones `AnnounceSettings` carries, with the same defaults:

- garp_master_delay 5 s: a second burst this long after becoming master (0: no second burst);
- garp_master_repeat 5: each VIP is announced this many times per burst;
- garp_master_refresh 0 (off): while master, announce again every this often ...
- garp_master_refresh_repeat 1: ... this many times per VIP;
- vrrp_garp_interval / vrrp_gna_interval 0: gap between two ARP / two NA frames within a burst.

`AnnounceSchedule` takes `now_ms` and returns frames to send plus its next deadline, so the daemon's one
timer drives it; the first frame of each family is returned by `became_master` itself, so it goes out in the
same loop iteration as the transition. Deviation from keepalived: the inter-frame gap is kept per schedule
(one per instance), whereas keepalived spaces frames per interface across instances.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fastvrrp._wire import garp_frame, unsolicited_na_frame
from fastvrrp.io.nsexec import call_in_netns


@dataclass(frozen=True, slots=True)
class AnnounceSettings:
    master_delay_ms: int = 5000  # garp_master_delay
    master_repeat: int = 5  # garp_master_repeat
    master_refresh_ms: int = 0  # garp_master_refresh (0 = off)
    master_refresh_repeat: int = 1  # garp_master_refresh_repeat
    garp_interval_ms: int = 0  # vrrp_garp_interval
    gna_interval_ms: int = 0  # vrrp_gna_interval

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


def announcement_frames(
    mac: bytes, vips: Iterable[bytes], router: bool = True
) -> tuple[list[bytes], list[bytes]]:
    """(gratuitous ARP frames, unsolicited NA frames) for packed VIPs (4 or 16 bytes) announced from `mac`.

    `mac` is the VMAC with use_vmac, else the interface's own MAC. `router` sets the NA's R flag (keepalived
    sets it when IPv6 forwarding is on).
    """
    arp: list[bytes] = []
    na: list[bytes] = []
    for vip in vips:
        if len(vip) == 4:
            arp.append(garp_frame(mac, vip))
        elif len(vip) == 16:
            na.append(unsolicited_na_frame(mac, vip, router))
        else:
            raise ValueError(f"a packed address is 4 or 16 bytes, not {len(vip)}")
    return arp, na


class _Lane:
    """Frames of one family waiting to go out, at most one per `gap_ms` (all at once when the gap is 0).

    The queue is a plain list, reversed (the next frame is the last): an empty deque costs ~600 bytes, and a
    thousand instances hold two lanes each (docs/costs.md#memory)."""

    __slots__ = ("gap_ms", "queue", "next_ms")

    def __init__(self, gap_ms: int):
        self.gap_ms = gap_ms
        self.queue: list[bytes] = []  # newest first: pop() takes the oldest
        self.next_ms = 0

    def push(self, frames: Sequence[bytes], repeat: int, now_ms: int) -> None:
        if not self.queue:
            self.next_ms = now_ms  # an idle lane sends its first frame at once
        burst = list(frames) * repeat  # round-robin over the VIPs, like keepalived's bursts
        burst.reverse()
        self.queue[:0] = burst

    def due(self, now_ms: int, out: list[bytes]) -> None:
        if not self.queue or now_ms < self.next_ms:
            return
        if self.gap_ms == 0:
            out.extend(reversed(self.queue))
            self.queue.clear()
            return
        out.append(self.queue.pop())
        # Keep the spacing even when the timer fired late: never catch up with a burst.
        self.next_ms = now_ms + self.gap_ms

    def deadline(self) -> int | None:
        return self.next_ms if self.queue else None


class AnnounceSchedule:
    """When to (re)announce the VIPs of one instance; no I/O, no clock: `now_ms` comes in."""

    __slots__ = (
        "settings",
        "garp_frames",
        "na_frames",
        "_arp",
        "_na",
        "_second_at",
        "_refresh_at",
        "active",
        "bursts",
        "arp_sent",
        "na_sent",
    )

    def __init__(
        self,
        garp_frames: Sequence[bytes],
        na_frames: Sequence[bytes],
        settings: AnnounceSettings | None = None,
    ):
        self.settings = settings or AnnounceSettings()
        self.garp_frames = list(garp_frames)
        self.na_frames = list(na_frames)
        self._arp = _Lane(self.settings.garp_interval_ms)
        self._na = _Lane(self.settings.gna_interval_ms)
        self._second_at: int | None = None
        self._refresh_at: int | None = None
        self.active = False
        self.bursts = 0
        self.arp_sent = 0
        self.na_sent = 0

    def _burst(self, now_ms: int, repeat: int) -> None:
        if repeat <= 0:
            return
        self.bursts += 1
        self._arp.push(self.garp_frames, repeat, now_ms)
        self._na.push(self.na_frames, repeat, now_ms)

    def became_master(self, now_ms: int) -> list[bytes]:
        """Start announcing; returns the frames due now (the first one of each family at least)."""
        s = self.settings
        self.stop()
        self.active = True
        self._burst(now_ms, s.master_repeat)  # RFC 5798 6.4.1 (IPv4) / 6.4.2 (IPv6), repeated as keepalived
        self._second_at = now_ms + s.master_delay_ms if s.master_delay_ms > 0 else None
        self._refresh_at = now_ms + s.master_refresh_ms if s.master_refresh_ms > 0 else None
        return self.poll(now_ms)

    def burst(self, now_ms: int, repeat: int) -> list[bytes]:
        """An extra burst while master (keepalived garp_lower_prio_repeat); returns the frames due now."""
        if self.active:
            self._burst(now_ms, repeat)
        return self.poll(now_ms)

    def stop(self) -> None:
        """Left master: nothing more is sent (a backup must not announce the VIPs, RFC 5798 6.4.2)."""
        self.active = False
        self._arp.queue.clear()
        self._na.queue.clear()
        self._second_at = None
        self._refresh_at = None

    def poll(self, now_ms: int) -> list[bytes]:
        """Frames due at `now_ms`, in send order."""
        if not self.active:
            return []
        s = self.settings
        if self._second_at is not None and now_ms >= self._second_at:
            self._second_at = None
            self._burst(now_ms, s.master_repeat)
        if self._refresh_at is not None and now_ms >= self._refresh_at:
            self._refresh_at = now_ms + s.master_refresh_ms
            self._burst(now_ms, s.master_refresh_repeat)
        out: list[bytes] = []
        self._arp.due(now_ms, out)
        n_arp = len(out)
        self._na.due(now_ms, out)
        self.arp_sent += n_arp
        self.na_sent += len(out) - n_arp
        return out

    @property
    def next_deadline_ms(self) -> int | None:
        if not self.active:
            return None
        candidates = (self._second_at, self._refresh_at, self._arp.deadline(), self._na.deadline())
        times = [t for t in candidates if t is not None]
        return min(times) if times else None


class FrameSender:
    """A send-only AF_PACKET socket bound to one interface (protocol 0: it receives nothing,
    docs/kernel-notes.md#send-only-packet-sockets).

    Frames are complete Ethernet frames; the source MAC is whatever the frame says (the VMAC).
    Send failures are counted by errno, never raised: an announcement is best effort.
    """

    def __init__(self, ifname: str, netns: str | None = None):
        def make() -> socket.socket:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            try:
                s.bind((ifname, 0))
                s.setblocking(False)
            except BaseException:
                s.close()
                raise
            return s

        self.ifname = ifname
        self.sock = call_in_netns(netns, make)
        self.sent = 0
        self.errors: dict[str, int] = {}

    def send(self, frames: Iterable[bytes]) -> int:
        n = 0
        for frame in frames:
            try:
                self.sock.send(frame)
                n += 1
            except OSError as exc:
                name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
                self.errors[name] = self.errors.get(name, 0) + 1
        self.sent += n
        return n

    def close(self) -> None:
        self.sock.close()
