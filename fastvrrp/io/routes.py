"""virtual_routes / virtual_rules: installed while MASTER, removed otherwise (keepalived.conf(5)).

The reader types each route and rule at read time (`config.model.Route` / `Rule`, config/route_lines.py);
here their fields become, once at config load, the keyword arguments of pyroute2's `IPRoute.route()` /
`IPRoute.rule()` - no words are read again - and they are applied in the netlink worker thread
(`NetlinkWorker.call`: pyroute2 never runs on the uvloop loop). Interface names are resolved when applied,
so a route may name an interface that appears later.

Reconcile semantics, as for addresses: adding what exists (EEXIST) and deleting what is gone (ESRCH, ENOENT)
count as done.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastvrrp.config.model import Nexthop, Route, Rule

# linux/rtnetlink.h
ROUTE_TYPES = {
    "unicast": 1,
    "local": 2,
    "broadcast": 3,
    "anycast": 4,
    "multicast": 5,
    "blackhole": 6,
    "unreachable": 7,
    "prohibit": 8,
    "throw": 9,
    "nat": 10,
}
SCOPE_UNIVERSE, SCOPE_LINK, SCOPE_HOST = 0, 253, 254
_TYPE_SCOPES = {
    ROUTE_TYPES["local"]: SCOPE_HOST,
    ROUTE_TYPES["broadcast"]: SCOPE_LINK,
    ROUTE_TYPES["anycast"]: SCOPE_LINK,
}
RTNH_F_ONLINK = 4
# linux/fib_rules.h
RULE_ACTIONS = {"table": 1, "goto": 2, "nop": 3, "blackhole": 6, "unreachable": 7, "prohibit": 8}
FIB_RULE_INVERT = 2

_BENIGN_ADD = {errno.EEXIST}
_BENIGN_DEL = {errno.ESRCH, errno.ENOENT, errno.EADDRNOTAVAIL}


@dataclass(frozen=True, slots=True)
class NetSpec:
    """One route or rule ready for pyroute2: `kw` without the interface indexes, `devs` to resolve."""

    kind: str  # "route" | "rule"
    text: str  # the line, for logs
    kw: tuple[tuple[str, Any], ...]
    devs: tuple[tuple[str, str], ...] = ()  # (pyroute2 keyword, interface name), resolved when applied
    add_command: str = "add"  # pyroute2's command when adding: "add", or "append" (NLM_F_APPEND)

    def kwargs(self, index_of: Any) -> dict[str, Any]:
        kw = dict(self.kw)
        for key, name in self.devs:
            kw[key] = _index(index_of, name)
        if "multipath" in kw:  # each path's interface by name (`dev`), resolved here too
            kw["multipath"] = [
                {k: (_index(index_of, v) if k == "oif" else v) for k, v in hop} for hop in kw["multipath"]
            ]
        return kw


def _index(index_of: Any, name: str) -> int:
    idx = index_of(name)
    if idx is None:
        raise LookupError(f"interface {name} does not exist")
    return int(idx)


def _family(version: int) -> int:
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def route_spec(r: Route, default_dev: str | None = None) -> NetSpec:
    """The pyroute2 arguments of one route. `default_dev`: keepalived puts a unicast route without `dev`
    and without a gateway on the instance's interface."""
    rtype = ROUTE_TYPES[r.type]
    kw: dict[str, Any] = {
        "family": _family(r.family),
        "dst": str(r.destination.network_address),
        "dst_len": r.destination.prefixlen,
        "type": rtype,
        "table": r.table,
        "proto": r.protocol,
    }
    devs: list[tuple[str, str]] = []
    dev = r.dev
    if dev is None and rtype == ROUTE_TYPES["unicast"] and r.via is None and not r.nexthops:
        dev = default_dev
    if dev is not None and not r.nexthops:
        devs.append(("oif", dev))
    if r.via is not None:
        kw["gateway"] = str(r.via)
    if r.src is not None:
        kw["prefsrc"] = str(r.src)
    if r.metric is not None:
        kw["priority"] = r.metric
    if r.tos is not None:
        kw["tos"] = r.tos
    if r.onlink:
        kw["flags"] = RTNH_F_ONLINK
    if r.realms is not None:
        kw["flow"] = r.realms
    if r.pref is not None:
        kw["pref"] = r.pref
    if r.expires is not None:
        kw["expires"] = struct.pack("=I", r.expires)  # RTA_EXPIRES: pyroute2 0.9 takes it as raw bytes
    if r.nexthops:
        kw["multipath"] = tuple(_hop(h, r.dev) for h in r.nexthops)
    if r.metrics:
        metrics: dict[str, Any] = {m.name: m.value for m in r.metrics}
        lock = sum(1 << _RTAX[m.name] for m in r.metrics if m.lock)
        if lock:
            metrics["lock"] = lock
        kw["metrics"] = metrics
    # keepalived 2.2.7 sends universe scope unless the line gives one (not iproute2's link scope for a route
    # without gateway); the kernel refuses that for local, broadcast and anycast routes, which get theirs.
    kw["scope"] = r.scope if r.scope is not None else _TYPE_SCOPES.get(rtype, SCOPE_UNIVERSE)
    return NetSpec("route", r.text, tuple(sorted(kw.items())), tuple(devs), "append" if r.append else "add")


def _hop(h: Nexthop, route_dev: str | None) -> tuple[tuple[str, Any], ...]:
    """One path of RTA_MULTIPATH for pyroute2: weight as rtnh_hops (weight - 1); `oif` still a name (the
    route's `dev` for a path without its own)."""
    hop: dict[str, Any] = {"hops": h.weight - 1}
    if h.via is not None:
        hop["gateway"] = str(h.via)
    dev = h.dev or route_dev
    if dev is not None:
        hop["oif"] = dev
    if h.onlink:
        hop["flags"] = RTNH_F_ONLINK
    if h.realms is not None:
        hop["flow"] = h.realms
    return tuple(sorted(hop.items()))


# linux/rtnetlink.h RTAX_* (the lock bit of a metric is 1 << its number)
_RTAX = {
    "mtu": 2,
    "window": 3,
    "rtt": 4,
    "rttvar": 5,
    "ssthresh": 6,
    "cwnd": 7,
    "advmss": 8,
    "reordering": 9,
    "hoplimit": 10,
    "initcwnd": 11,
    "features": 12,
    "rto_min": 13,
    "initrwnd": 14,
    "quickack": 15,
    "cc_algo": 16,
}


def rule_spec(r: Rule) -> NetSpec:
    """The pyroute2 arguments of one rule."""
    kw: dict[str, Any] = {
        "family": _family(r.family),
        "priority": r.priority,
        "action": RULE_ACTIONS[r.action],
        "protocol": r.protocol,
    }
    if r.table is not None:
        kw["table"] = r.table
    for key, net in (("src", r.src), ("dst", r.dst)):
        if net is not None:
            kw[key] = str(net.network_address)
            kw[key + "_len"] = net.prefixlen
    if r.invert:
        kw["flags"] = FIB_RULE_INVERT
    optional = {
        "goto": r.goto,
        "fwmark": r.fwmark,
        "fwmask": r.fwmask,
        "iifname": r.iif,
        "oifname": r.oif,
        "tos": r.tos,
        "flow": r.realms,
        "suppress_prefixlen": r.suppress_prefixlength,
        "suppress_ifgroup": r.suppress_ifgroup,
        "ip_proto": r.ip_proto,
    }
    kw.update((k, v) for k, v in optional.items() if v is not None)
    for key, rng in (("uid_range", r.uidrange), ("sport_range", r.sport), ("dport_range", r.dport)):
        if rng is not None:
            kw[key] = f"{rng[0]}:{rng[1]}"
    if r.l3mdev:
        kw["l3mdev"] = 1
    return NetSpec("rule", r.text, tuple(sorted(kw.items())))


@dataclass(slots=True)
class NetResult:
    done: list[NetSpec] = field(default_factory=list)
    already: list[NetSpec] = field(default_factory=list)
    failed: list[tuple[NetSpec, str]] = field(default_factory=list)


def apply(ipr: Any, specs: Sequence[NetSpec], add: bool) -> NetResult:
    """Add (in order) or delete (in reverse order) routes and rules with an `IPRoute`. Blocking: run it in
    the netlink worker thread (`await worker.call(apply, specs, True)`)."""
    from pyroute2.netlink.exceptions import NetlinkError

    res = NetResult()
    cache: dict[str, int | None] = {}

    def index_of(name: str) -> int | None:
        if name not in cache:
            found = ipr.link_lookup(ifname=name)
            cache[name] = found[0] if found else None
        return cache[name]

    benign = _BENIGN_ADD if add else _BENIGN_DEL
    # Rules point at tables the routes fill: add routes first and remove rules first.
    order = (
        sorted(specs, key=lambda s: s.kind != "route")
        if add
        else sorted(specs, key=lambda s: s.kind != "rule")
    )
    for spec in order:
        try:
            kw = spec.kwargs(index_of)
            fn = ipr.route if spec.kind == "route" else ipr.rule
            fn(spec.add_command if add else "del", **kw)
            res.done.append(spec)
        except NetlinkError as exc:
            if exc.code in benign:
                res.already.append(spec)
            else:
                res.failed.append((spec, f"{errno.errorcode.get(exc.code, exc.code)}: {exc}"))
        except LookupError as exc:
            if add:
                res.failed.append((spec, str(exc)))
            else:
                res.already.append(spec)  # the interface is gone, so is the route
    return res
