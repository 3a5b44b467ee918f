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
    # netlink attributes pyroute2's own route message cannot carry (RTA_TTL_PROPAGATE, an ip / ip6 encap):
    # appended to the message (see RouteMsg)
    nlas: tuple[tuple[str, Any], ...] = ()
    vrf: str | None = None  # the route's table is this VRF device's, looked up when applied

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
    nlas: list[tuple[str, Any]] = []
    if r.ttl_propagate is not None:
        nlas.append(("RTA_TTL_PROPAGATE", int(r.ttl_propagate)))
    if r.encap is not None:
        if r.encap.type == "mpls":
            kw["encap"] = {"type": "mpls", "labels": list(r.encap.labels)}
        else:
            nlas += _ip_encap(r)
    # keepalived 2.2.7 sends universe scope unless the line gives one (not iproute2's link scope for a route
    # without gateway); the kernel refuses that for local, broadcast and anycast routes, which get theirs.
    kw["scope"] = r.scope if r.scope is not None else _TYPE_SCOPES.get(rtype, SCOPE_UNIVERSE)
    cmd = "append" if r.append else "add"
    return NetSpec("route", r.text, tuple(sorted(kw.items())), tuple(devs), cmd, tuple(nlas), r.vrf)


def _ip_encap(r: Route) -> list[tuple[str, Any]]:
    """RTA_ENCAP_TYPE and RTA_ENCAP of an `encap ip` / `encap ip6` route (linux/lwtunnel.h)."""
    e = r.encap
    assert e is not None
    p = "LWTUNNEL_IP6_" if e.type == "ip6" else "LWTUNNEL_IP_"
    ttl, tos = ("HOPLIMIT", "TC") if e.type == "ip6" else ("TTL", "TOS")
    attrs = [
        [p + name, value]
        for name, value in (
            ("ID", e.id),
            ("DST", None if e.dst is None else str(e.dst)),
            ("SRC", None if e.src is None else str(e.src)),
            (ttl, e.ttl),
            (tos, e.tos),
            ("FLAGS", e.flags),
        )
        if value is not None
    ]
    kind = LWTUNNEL_ENCAP_IP6 if e.type == "ip6" else LWTUNNEL_ENCAP_IP
    return [("RTA_ENCAP_TYPE", kind), ("RTA_ENCAP", {"attrs": attrs})]


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
    "fastopen_no_cookie": 17,
}
LWTUNNEL_ENCAP_IP, LWTUNNEL_ENCAP_IP6 = 2, 4  # linux/lwtunnel.h


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
            if spec.kind == "route":
                if spec.vrf is not None:
                    kw["table"] = vrf_table(ipr, spec.vrf)
                send_route(ipr, spec.add_command if add else "del", kw, spec.nlas)
            else:
                ipr.rule(spec.add_command if add else "del", **kw)
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


def vrf_table(ipr: Any, name: str) -> int:
    """The routing table of VRF device `name` (IFLA_VRF_TABLE), as keepalived puts a `vrf NAME` route there.
    LookupError if there is no such VRF."""
    links = ipr.link("get", ifname=name) if ipr.link_lookup(ifname=name) else ()
    for link in links:
        info = link.get_attr("IFLA_LINKINFO")
        if info is not None and info.get_attr("IFLA_INFO_KIND") == "vrf":
            data = info.get_attr("IFLA_INFO_DATA")
            table = data.get_attr("IFLA_VRF_TABLE") if data is not None else None
            if table is not None:
                return int(table)
        raise LookupError(f"{name} is not a VRF")
    raise LookupError(f"VRF {name} does not exist")


def send_route(ipr: Any, command: str, kw: dict[str, Any], nlas: Sequence[tuple[str, Any]]) -> None:
    """`ipr.route(command, **kw)`, with the attributes pyroute2's rtmsg lacks: pyroute2 turns the keywords
    into fields and attributes as its own route() does, into a RouteMsg, to which `nlas` are appended."""
    from pyroute2.iproute.linux import get_arguments_processor
    from pyroute2.netlink import NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
    from pyroute2.netlink.rtnl import RTM_DELROUTE, RTM_NEWROUTE

    msg_class = route_msg_class()
    proc = get_arguments_processor("route", command, dict(kw), {"strict_check": ipr.status["strict_check"]})
    msg = msg_class()
    for fld in msg.fields:
        msg[fld[0]] = proc.get_value(fld[0], default=0, mode="field")
    for key, value in proc.items():
        nla = msg_class.name2nla(key)
        if msg.valid_nla(nla) and value is not None:
            msg["attrs"].append([nla, value])
    msg["attrs"].extend([list(x) for x in nlas])
    flags = NLM_F_REQUEST | NLM_F_ACK
    if command == "del":
        kind = RTM_DELROUTE
    else:
        kind = RTM_NEWROUTE
        flags |= NLM_F_CREATE | (NLM_F_APPEND if command == "append" else NLM_F_EXCL)
    # pyroute2 0.9.7's synchronous nlm_request reads this status key, which IPRoute does not set
    ipr.status.setdefault("nlm_generator", False)
    ipr.nlm_request(msg, kind, flags)


_ROUTE_MSG: list[Any] = []


def route_msg_class() -> Any:
    """pyroute2's rtmsg with what Linux has and pyroute2 0.9 lacks: RTA_TTL_PROPAGATE (26), the
    RTAX_FASTOPEN_NO_COOKIE metric (17) and the ip / ip6 lightweight tunnels (linux/lwtunnel.h).

    The tunnel `flags` go in host byte order, as keepalived 2.2.7 sends them (the kernel reads them
    big-endian, so keepalived's `flags 1` is not TUNNEL_CSUM on a little-endian host): the same number
    installs the same route with either daemon."""
    if _ROUTE_MSG:
        return _ROUTE_MSG[0]
    from pyroute2.netlink import nla
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    class IpEncap(nla):
        prefix = "LWTUNNEL_IP_"
        nla_map = (
            ("LWTUNNEL_IP_UNSPEC", "none"),
            ("LWTUNNEL_IP_ID", "be64"),
            ("LWTUNNEL_IP_DST", "ip4addr"),
            ("LWTUNNEL_IP_SRC", "ip4addr"),
            ("LWTUNNEL_IP_TTL", "uint8"),
            ("LWTUNNEL_IP_TOS", "uint8"),
            ("LWTUNNEL_IP_FLAGS", "uint16"),  # host byte order: see the docstring
        )

    class Ip6Encap(nla):
        prefix = "LWTUNNEL_IP6_"
        nla_map = (
            ("LWTUNNEL_IP6_UNSPEC", "none"),
            ("LWTUNNEL_IP6_ID", "be64"),
            ("LWTUNNEL_IP6_DST", "ip6addr"),
            ("LWTUNNEL_IP6_SRC", "ip6addr"),
            ("LWTUNNEL_IP6_HOPLIMIT", "uint8"),
            ("LWTUNNEL_IP6_TC", "uint8"),
            ("LWTUNNEL_IP6_FLAGS", "uint16"),
        )

    class RouteMsg(rtmsg):
        nla_map = (*rtmsg.nla_map, ("RTA_PAD", "hex"), ("RTA_UID", "uint32"), ("RTA_TTL_PROPAGATE", "uint8"))
        encaps = {**rtmsg.encaps, LWTUNNEL_ENCAP_IP: IpEncap, LWTUNNEL_ENCAP_IP6: Ip6Encap}

        class metrics(rtmsg.metrics):  # noqa: N801 - pyroute2 finds the nested class by this name
            nla_map = (*rtmsg.metrics.nla_map, ("RTAX_FASTOPEN_NO_COOKIE", "uint32"))

    _ROUTE_MSG.append(RouteMsg)
    return RouteMsg
