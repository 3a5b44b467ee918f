"""A simulated LAN for VrrpInstances: a virtual microsecond clock (the core's unit), an event queue, and
every advert built and decoded through the real codec (fastvrrp._wire.build_advert / decode_ipv4 /
decode_ipv6).

Faults: per-packet loss, random delay (which reorders), duplication, partitions (a node only hears nodes in
its own group; decided at send time), crashes (a node just stops: no timer, no packet in or out, its VIPs
vanish with it) and restarts (a fresh VrrpInstance started at that moment). Randomness comes from one seeded
random.Random, so a run is reproducible from its seed.

The driver part (`_apply`) does what fastvrrp's daemon does with the core's actions: sends adverts, keeps
the set of VIPs a node holds, logs state changes. Demultiplexing by VRID stands in for the engine.
"""

from __future__ import annotations

import heapq
import ipaddress
import random
import struct
from dataclasses import dataclass, field

from fastvrrp import _wire
from fastvrrp.core import (
    Action,
    AddAddresses,
    Advert,
    Announce,
    InstanceParams,
    RemoveAddresses,
    SendAdvert,
    State,
    StateChanged,
    VrrpInstance,
)

MCAST4 = ipaddress.ip_address("224.0.0.18").packed
MCAST6 = ipaddress.ip_address("ff02::12").packed


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def ipv4_packet(src: bytes, dst: bytes, payload: bytes, ttl: int = 255) -> bytes:
    """An IPv4 header (protocol 112, TOS CS6) in front of a VRRP message, as a raw socket delivers it."""
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 0, 0, ttl, 112, 0, src, dst)
    csum = _wire.checksum(hdr)
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:] + payload


@dataclass
class Node:
    name: str
    configs: dict[int, InstanceParams]  # by VRID
    instances: dict[int, VrrpInstance] = field(default_factory=dict)
    alive: bool = False
    group: int = 0  # partition group
    holding: set[int] = field(default_factory=set)  # VRIDs whose VIPs are installed here
    announced: int = 0


@dataclass
class Link:
    loss: float = 0.0
    delay_min_us: int = 0
    delay_max_us: int = 0
    dup: float = 0.0


@dataclass(frozen=True)
class Sent:
    t: int  # us
    node: str
    vrid: int
    priority: int
    size: int


@dataclass(frozen=True)
class Change:
    t: int  # us
    node: str
    vrid: int
    old: State
    new: State
    reason: str


class Lan:
    def __init__(self, seed: int = 0) -> None:
        self.now = 0  # us
        self.rng = random.Random(seed)
        self.link = Link()
        self.nodes: dict[str, Node] = {}
        self._q: list[tuple[int, int, str, object]] = []
        self._seq = 0
        self.sent: list[Sent] = []
        self.changes: list[Change] = []
        self.drops: dict[str, int] = {}
        self.delivered = 0

    # --- topology -------------------------------------------------------------------------------------------

    def add(self, name: str, *configs: InstanceParams) -> Node:
        node = Node(name, {c.vrid: c for c in configs})
        self.nodes[name] = node
        return node

    def start(self, name: str) -> None:
        node = self.nodes[name]
        node.alive = True
        node.holding.clear()
        node.instances = {vrid: VrrpInstance(c) for vrid, c in node.configs.items()}
        for vrid, inst in node.instances.items():
            self._apply(node, vrid, inst.start(self.now))

    def crash(self, name: str) -> None:
        """The node stops dead: nothing more is sent, received or timed; its VIPs vanish with it."""
        node = self.nodes[name]
        node.alive = False
        node.holding.clear()

    def shutdown(self, name: str) -> None:
        """Graceful stop (SIGTERM): each instance resigns (S10), then the node is gone."""
        node = self.nodes[name]
        for vrid, inst in node.instances.items():
            self._apply(node, vrid, inst.shutdown(self.now))
        node.alive = False

    def partition(self, groups: dict[str, int]) -> None:
        for name, g in groups.items():
            self.nodes[name].group = g

    def heal(self) -> None:
        for node in self.nodes.values():
            node.group = 0
        self.link = Link()

    # --- the clock ------------------------------------------------------------------------------------------

    def at(self, t: int, fn, *args) -> None:
        """Run fn(*args) at virtual time t in us (a scripted fault, a priority change ...)."""
        self._push(t, "call", (fn, args))

    def _push(self, t: int, kind: str, payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._q, (t, self._seq, kind, payload))

    def _next_deadline(self) -> tuple[int, Node, int] | None:
        best = None
        for node in self.nodes.values():
            if not node.alive:
                continue
            for vrid, inst in node.instances.items():
                d = inst.next_deadline_us
                if d is not None and (best is None or d < best[0]):
                    best = (d, node, vrid)
        return best

    def run_until(self, end: int) -> None:
        """Advance the clock to `end` (us), processing packets and calls before timers due at the same
        microsecond."""
        while True:
            timer = self._next_deadline()
            tq = self._q[0][0] if self._q else None
            t_timer = timer[0] if timer else None
            candidates = [t for t in (tq, t_timer) if t is not None and t <= end]
            if not candidates:
                break
            t = min(candidates)
            assert t >= self.now, "time went backwards"
            self.now = t
            if tq == t:
                _, _, kind, payload = heapq.heappop(self._q)
                if kind == "deliver":
                    self._deliver(*payload)  # type: ignore[misc]
                else:
                    fn, args = payload  # type: ignore[misc]
                    fn(*args)
                continue
            assert timer is not None
            _, node, vrid = timer
            inst = node.instances[vrid]
            self._apply(node, vrid, inst.on_timer(t))
            d = inst.next_deadline_us
            assert d is None or d > t, f"{node.name}/{vrid}: a due timer did not move ({d} at {t})"
        self.now = end

    # --- the driver -----------------------------------------------------------------------------------------

    def _apply(self, node: Node, vrid: int, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, SendAdvert):
                self._send(node, vrid, a.priority)
            elif isinstance(a, AddAddresses):
                node.holding.add(vrid)
            elif isinstance(a, RemoveAddresses):
                node.holding.discard(vrid)
            elif isinstance(a, Announce):
                node.announced += 1
            elif isinstance(a, StateChanged):
                self.changes.append(Change(self.now, node.name, vrid, a.old, a.new, a.reason))
            else:  # pragma: no cover - a new action type the sim does not know
                raise AssertionError(f"unknown action {a!r}")

    def _send(self, node: Node, vrid: int, priority: int) -> None:
        c = node.configs[vrid]
        dst = MCAST4 if c.family == 4 else MCAST6
        msg = _wire.build_advert(
            version=c.version,
            family=c.family,
            vrid=vrid,
            priority=priority,
            adver_int_ms=c.adver_int_ms,
            addresses=c.addresses,
            src=c.primary_ip,
            dst=dst,
            auth_type=c.auth_type,
            auth_data=c.auth_data,
        )
        wire: object = ipv4_packet(c.primary_ip, dst, msg) if c.family == 4 else (msg, c.primary_ip, dst, 255)
        self.sent.append(Sent(self.now, node.name, vrid, priority, len(msg)))
        link = self.link
        for peer in self.nodes.values():
            if peer is node or not peer.alive or peer.group != node.group:
                continue  # multicast loop is off; partitions cut the segment
            copies = 2 if link.dup and self.rng.random() < link.dup else 1
            for _ in range(copies):
                if link.loss and self.rng.random() < link.loss:
                    continue
                delay = self.rng.randint(link.delay_min_us, link.delay_max_us) if link.delay_max_us else 0
                self._push(self.now + delay, "deliver", (peer.name, c.family, wire))

    def _deliver(self, name: str, family: int, wire: object) -> None:
        node = self.nodes[name]
        if not node.alive:
            return
        if family == 4:
            assert isinstance(wire, bytes)
            pkt = _wire.decode_ipv4(wire)
        else:
            msg, src, dst, hop = wire  # type: ignore[misc]
            pkt = _wire.decode_ipv6(msg, src, dst, hop)
        if not pkt.valid:
            self.drops[pkt.reason or "?"] = self.drops.get(pkt.reason or "?", 0) + 1
            return
        inst = node.instances.get(pkt.vrid)
        if inst is None:
            self.drops["no_instance"] = self.drops.get("no_instance", 0) + 1
            return
        self.delivered += 1
        adv = Advert(
            src=pkt.src,
            vrid=pkt.vrid,
            priority=pkt.priority,
            adver_int_ms=pkt.adver_int_ms,
            version=pkt.version,
            addresses=pkt.addresses,
            auth_type=pkt.auth_type,
        )
        self._apply(node, pkt.vrid, inst.on_advert(adv, self.now))

    # --- observations ---------------------------------------------------------------------------------------

    def masters(self, vrid: int) -> list[str]:
        return [
            n.name
            for n in self.nodes.values()
            if n.alive and vrid in n.instances and n.instances[vrid].state is State.MASTER
        ]

    def holders(self, vrid: int) -> list[str]:
        return [n.name for n in self.nodes.values() if n.alive and vrid in n.holding]

    def became_master(self, name: str, vrid: int, after: int = 0) -> int | None:
        for c in self.changes:
            if c.node == name and c.vrid == vrid and c.new is State.MASTER and c.t >= after:
                return c.t
        return None
