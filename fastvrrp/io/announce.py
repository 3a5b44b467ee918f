"""Gratuitous ARP and unsolicited NA: when to send (sans-I/O) and how (an AF_PACKET socket).

RFC 5798 6.4.1 / 6.4.2: on becoming master, broadcast a gratuitous ARP for each IPv4 VIP and an unsolicited
neighbour advertisement for each IPv6 VIP, with the virtual MAC as link-layer source. keepalived repeats
these, and its knobs (keepalived.conf(5)) are the ones `AnnounceSettings` carries, with the same defaults:

- garp_master_delay 5 s: a second burst this long after becoming master (0: no second burst);
- garp_master_repeat 5: each VIP is announced this many times per burst;
- garp_master_refresh 0 (off): while master, announce again every this often ...
- garp_master_refresh_repeat 1: ... this many times per VIP;
- vrrp_garp_interval / vrrp_gna_interval 0 (or a garp_group's garp_interval / gna_interval): the least
  time between two ARP / two NA frames sent on the same interface, whichever instances they announce.

`AnnounceSchedule` (one per instance) takes `now_ms` and returns the frames of the bursts due plus its next
deadline, so the daemon's one timer drives it; `became_master` returns the first burst itself. `Pacer` (one
per interface, or per garp_group) spaces the frames of every instance sent there, as keepalived does: after
a mass takeover the bursts of a thousand instances queue there and go out one per interval, and the frames
of an instance that resigned meanwhile are dropped from the queue.
"""

from __future__ import annotations

import collections
import errno
import math
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastvrrp._wire import garp_frame, unsolicited_na_frame
from fastvrrp.io.nsexec import call_in_netns


@dataclass(frozen=True, slots=True)
class AnnounceSettings:
    master_delay_ms: int = 5000  # garp_master_delay
    master_repeat: int = 5  # garp_master_repeat
    master_refresh_ms: int = 0  # garp_master_refresh (0 = off)
    master_refresh_repeat: int = 1  # garp_master_refresh_repeat

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


_NONE = [-1, 0]  # (Pacer._owners' entry of an owner with nothing current queued)

ETH_ARP = b"\x08\x06"  # the EtherType of a gratuitous ARP frame (bytes 12..13); anything else is an NA


class _Lane:
    """One family's frames waiting on one interface, oldest first, at most one sent per `gap_ms`."""

    __slots__ = ("gap_ms", "queue", "next_ms", "sent_now")

    def __init__(self, gap_ms: float) -> None:
        self.gap_ms = gap_ms
        self.queue: collections.deque[tuple[Any, int, bytes]] = collections.deque()
        self.next_ms = -math.inf  # when the next frame may go
        self.sent_now = False  # the last due() took a frame from this lane

    def due(
        self,
        now_ms: float,
        alive: Callable[[Any, int], bool],
        out: list[tuple[Any, bytes]],
        gone: Callable[[Any, int], None],
    ) -> None:
        self.sent_now = False
        q = self.queue
        while q and now_ms >= self.next_ms:
            owner, epoch, frame = q.popleft()
            gone(owner, epoch)
            if not alive(owner, epoch):
                continue  # its instance resigned (or was removed) before the frame went: no slot spent
            out.append((owner, frame))
            if self.gap_ms > 0:
                self.sent_now = True
                self.next_ms = now_ms + self.gap_ms  # restamp() moves it to after the send
                return

    def drop(self, owner: Any) -> None:
        if self.queue:
            self.queue = collections.deque(e for e in self.queue if e[0] is not owner)


class Pacer:
    """The gratuitous ARPs and unsolicited NAs of every instance on one interface (or on the interfaces of
    one garp_group), at most one ARP per `arp_gap_ms` and one NA per `na_gap_ms` across all of them
    (keepalived.conf(5) vrrp_garp_interval / vrrp_gna_interval and garp_group garp_interval / gna_interval);
    with a gap of 0 a family goes out back to back. No I/O and no clock: `now_ms` comes in.

    Frames are queued with their owner (an instance) and its announcement epoch (AnnounceSchedule.epoch);
    `due` asks `alive(owner, epoch)` before each, so the frames of an instance that resigned before they went
    out are dropped without taking a slot. The caller sends what `due` returns and then calls `restamp` with
    the clock read after the send: the next frame of that family goes no sooner than `gap` after it, however
    late the send ran (spacing is never compressed to catch up)."""

    __slots__ = ("_arp", "_na", "sent", "dropped", "_owners", "_stale")

    def __init__(self, arp_gap_ms: float = 0, na_gap_ms: float = 0) -> None:
        if arp_gap_ms < 0 or na_gap_ms < 0:
            raise ValueError("an announcement interval must not be negative")
        self._arp = _Lane(arp_gap_ms)
        self._na = _Lane(na_gap_ms)
        self.sent = 0
        self.dropped = 0
        # Per owner with frames queued: [the epoch of its newest frames, how many of those are queued].
        # Frames of an owner's earlier epochs are stale (due() skips them); `_stale` counts them, and the
        # queues are compacted when they are most of what is queued, so an instance flapping while a long
        # paced queue drains cannot grow it without end.
        self._owners: dict[Any, list[int]] = {}
        self._stale = 0

    @property
    def gaps_ms(self) -> tuple[float, float]:
        return self._arp.gap_ms, self._na.gap_ms

    def set_gaps(self, arp_gap_ms: float, na_gap_ms: float) -> None:
        """New intervals (a reload); frames already queued keep their order."""
        self._arp.gap_ms, self._na.gap_ms = arp_gap_ms, na_gap_ms

    def push(self, owner: Any, epoch: int, frames: Iterable[bytes]) -> None:
        arp, na = self._arp.queue, self._na.queue
        n = 0
        for f in frames:
            (arp if f[12:14] == ETH_ARP else na).append((owner, epoch, f))
            n += 1
        mine = self._owners.get(owner)
        if mine is None:
            self._owners[owner] = [epoch, n]
        elif mine[0] == epoch:
            mine[1] += n
        else:
            self._stale += mine[1]
            mine[0], mine[1] = epoch, n
        if self._stale > 64 and 2 * self._stale > len(self):
            self._compact()

    def waiting(self, owner: Any, epoch: int) -> bool:
        """Frames of `owner`'s announcement `epoch` are still queued."""
        mine = self._owners.get(owner)
        return mine is not None and mine[0] == epoch and mine[1] > 0

    def _gone(self, owner: Any, epoch: int) -> None:
        mine = self._owners.get(owner)
        if mine is None or mine[0] != epoch:
            self._stale -= 1
        elif mine[1] > 1:
            mine[1] -= 1
        else:
            del self._owners[owner]

    def _compact(self) -> None:
        owners = self._owners
        for lane in (self._arp, self._na):
            lane.queue = collections.deque(e for e in lane.queue if owners.get(e[0], _NONE)[0] == e[1])
        self.dropped += self._stale
        self._stale = 0

    def due(self, now_ms: float, alive: Callable[[Any, int], bool]) -> list[tuple[Any, bytes]]:
        """(owner, frame) to send now, in order: every due ARP then every due NA."""
        out: list[tuple[Any, bytes]] = []
        before = len(self._arp.queue) + len(self._na.queue)
        self._arp.due(now_ms, alive, out, self._gone)
        self._na.due(now_ms, alive, out, self._gone)
        self.sent += len(out)
        self.dropped += before - len(self._arp.queue) - len(self._na.queue) - len(out)
        return out

    def restamp(self, now_ms: float) -> None:
        """The frames of the last `due` are out at `now_ms`: the gaps count from here."""
        for lane in (self._arp, self._na):
            if lane.sent_now:
                lane.next_ms = now_ms + lane.gap_ms
                lane.sent_now = False

    def drop(self, owner: Any) -> None:
        """Forget every queued frame of `owner` (an instance removed by a reload)."""
        self._arp.drop(owner)
        self._na.drop(owner)
        self._owners.pop(owner, None)
        owners = self._owners
        self._stale = sum(
            1 for lane in (self._arp, self._na) for o, ep, _f in lane.queue if owners.get(o, _NONE)[0] != ep
        )

    def deadline(self) -> float | None:
        """When `due` has something to return (None: nothing queued)."""
        times = [lane.next_ms for lane in (self._arp, self._na) if lane.queue]
        return max(min(times), -1.0) if times else None

    def __len__(self) -> int:
        return len(self._arp.queue) + len(self._na.queue)


class AnnounceSchedule:
    """When to (re)announce the VIPs of one instance; no I/O, no clock: `now_ms` comes in. The frames of a
    burst are returned all at once; the spacing between frames on an interface is the Pacer's."""

    __slots__ = (
        "settings",
        "garp_frames",
        "na_frames",
        "_second_at",
        "_refresh_at",
        "active",
        "epoch",
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
        self._second_at: int | None = None
        self._refresh_at: int | None = None
        self.active = False
        self.epoch = 0  # one more at every stop(): frames queued in a Pacer before it are stale
        self.bursts = 0
        self.arp_sent = 0
        self.na_sent = 0

    def _burst(self, repeat: int, out: list[bytes]) -> None:
        if repeat <= 0:
            return
        self.bursts += 1
        out.extend(self.garp_frames * repeat)  # round-robin over the VIPs, like keepalived's bursts
        out.extend(self.na_frames * repeat)
        self.arp_sent += len(self.garp_frames) * repeat
        self.na_sent += len(self.na_frames) * repeat

    def became_master(self, now_ms: int) -> list[bytes]:
        """Start announcing; returns the frames of the first burst."""
        s = self.settings
        self.stop()
        self.active = True
        out: list[bytes] = []
        self._burst(s.master_repeat, out)  # RFC 5798 6.4.1 (IPv4) / 6.4.2 (IPv6), repeated as keepalived
        self._second_at = now_ms + s.master_delay_ms if s.master_delay_ms > 0 else None
        self._refresh_at = now_ms + s.master_refresh_ms if s.master_refresh_ms > 0 else None
        return out

    def burst(self, now_ms: int, repeat: int) -> list[bytes]:
        """An extra burst while master (keepalived garp_lower_prio_repeat); returns its frames."""
        out: list[bytes] = []
        if self.active:
            self._burst(repeat, out)
        return out

    def stop(self) -> None:
        """Left master: nothing more is sent (a backup must not announce the VIPs, RFC 5798 6.4.2)."""
        self.active = False
        self.epoch += 1
        self._second_at = None
        self._refresh_at = None

    def poll(self, now_ms: int) -> list[bytes]:
        """Frames of the bursts due at `now_ms`, in send order."""
        if not self.active:
            return []
        s = self.settings
        out: list[bytes] = []
        if self._second_at is not None and now_ms >= self._second_at:
            self._second_at = None
            self._burst(s.master_repeat, out)
        if self._refresh_at is not None and now_ms >= self._refresh_at:
            self._refresh_at = now_ms + s.master_refresh_ms
            self._burst(s.master_refresh_repeat, out)
        return out

    @property
    def next_deadline_ms(self) -> int | None:
        if not self.active:
            return None
        times = [t for t in (self._second_at, self._refresh_at) if t is not None]
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
