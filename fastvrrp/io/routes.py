"""virtual_routes / virtual_rules: installed while MASTER, removed otherwise (keepalived.conf(5)).

The reader keeps each route or rule as its iproute2-like words (`config.model.Route` / `Rule`); here they are
turned, once at config load, into the keyword arguments of pyroute2's `IPRoute.route()` / `IPRoute.rule()`,
and applied in the netlink worker thread (`NetlinkWorker.call`, VRRP-NOTES 2: pyroute2 never runs on the
uvloop loop). Interface names are resolved when applied, so a route may name an interface that appears later.

Understood words - routes: `[TYPE] [to] DEST via|gw ADDR dev IF src ADDR table ID metric|preference N
scope S proto P onlink no_track inet6`; rules: `from NET to NET table|lookup ID priority|pref|preference N
fwmark V[/M] iif IF oif IF goto N blackhole|unreachable|prohibit no_track inet6`. Anything else is
refused with the word (`RouteSyntaxError`), which the daemon reports before any instance starts.

Reconcile semantics, as for addresses: adding what exists (EEXIST) and deleting what is gone (ESRCH, ENOENT)
count as done.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastvrrp.config.model import Route, Rule

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
TABLES = {"default": 253, "main": 254, "local": 255}
SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
PROTOS = {"kernel": 2, "boot": 3, "static": 4}
# linux/fib_rules.h actions
FR_ACT_TO_TBL, FR_ACT_GOTO, FR_ACT_BLACKHOLE, FR_ACT_UNREACHABLE, FR_ACT_PROHIBIT = 1, 2, 6, 7, 8
RULE_ACTIONS = {"blackhole": FR_ACT_BLACKHOLE, "unreachable": FR_ACT_UNREACHABLE, "prohibit": FR_ACT_PROHIBIT}

_BENIGN_ADD = {errno.EEXIST}
_BENIGN_DEL = {errno.ESRCH, errno.ENOENT, errno.EADDRNOTAVAIL}


class RouteSyntaxError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class NetSpec:
    """One route or rule ready for pyroute2: `kw` without the interface indexes, `devs` to resolve."""

    kind: str  # "route" | "rule"
    text: str  # the words, for logs
    kw: tuple[tuple[str, Any], ...]
    devs: tuple[tuple[str, str], ...] = ()  # (pyroute2 keyword, interface name), resolved when applied

    def kwargs(self, index_of: Any) -> dict[str, Any]:
        kw = dict(self.kw)
        for key, name in self.devs:
            idx = index_of(name)
            if idx is None:
                raise LookupError(f"interface {name} does not exist")
            kw[key] = idx
        return kw


def _table(word: str) -> int:
    if word in TABLES:
        return TABLES[word]
    t = int(word)
    if not 0 < t < 2**32:
        raise ValueError(word)
    return t


def _num(word: str, hi: int = 2**32 - 1) -> int:
    v = int(word, 0)
    if not 0 <= v <= hi:
        raise ValueError(word)
    return v


def route_spec(r: Route, default_dev: str | None = None) -> NetSpec:
    """The pyroute2 arguments of one virtual_routes line. `default_dev`: keepalived puts a route without
    `dev` and without a gateway on the instance's interface."""
    w = list(r.words)
    kw: dict[str, Any] = {"family": socket.AF_INET6 if r.family == 6 else socket.AF_INET}
    devs: list[tuple[str, str]] = []
    dest_seen = False
    gateway = False
    i = 0
    try:
        while i < len(w):
            x = w[i]
            nxt = w[i + 1] if i + 1 < len(w) else None
            if x in ("no_track", "inet", "inet6", "onlink"):
                if x == "onlink":
                    kw["flags"] = kw.get("flags", 0) | 4  # RTNH_F_ONLINK
                i += 1
                continue
            if x in ROUTE_TYPES and not dest_seen:
                kw["type"] = ROUTE_TYPES[x]
                i += 1
                continue
            if nxt is None and x not in ROUTE_TYPES:
                if dest_seen:
                    raise RouteSyntaxError(f"'{x}' needs a value")
            if x in ("via", "gw"):
                kw["gateway"] = str(ipaddress.ip_address(nxt))  # type: ignore[arg-type]
                gateway = True
            elif x == "or":
                raise RouteSyntaxError("multipath routes ('or') are not supported")
            elif x == "dev" or x == "oif":
                devs.append(("oif", nxt))  # type: ignore[arg-type]
            elif x == "src":
                kw["prefsrc"] = str(ipaddress.ip_address(nxt))  # type: ignore[arg-type]
            elif x == "table":
                kw["table"] = _table(nxt)  # type: ignore[arg-type]
            elif x in ("metric", "preference", "priority"):
                kw["priority"] = _num(nxt)  # type: ignore[arg-type]
            elif x == "scope":
                kw["scope"] = SCOPES[nxt] if nxt in SCOPES else _num(nxt, 255)  # type: ignore[arg-type,index]
            elif x in ("proto", "protocol"):
                kw["proto"] = PROTOS[nxt] if nxt in PROTOS else _num(nxt, 255)  # type: ignore[arg-type,index]
            elif x == "to" or not dest_seen:
                text = nxt if x == "to" else x
                if text == "default":
                    net = ipaddress.ip_network("::/0" if r.family == 6 else "0.0.0.0/0")
                else:
                    net = ipaddress.ip_network(text, strict=False)  # type: ignore[arg-type]
                kw["dst"] = str(net.network_address)
                kw["dst_len"] = net.prefixlen
                dest_seen = True
                i += 2 if x == "to" else 1
                continue
            else:
                raise RouteSyntaxError(f"'{x}' is not understood in a route")
            i += 2
    except (ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, RouteSyntaxError):
            raise RouteSyntaxError(f"route '{' '.join(w)}': {exc}") from None
        raise RouteSyntaxError(f"route '{' '.join(w)}': bad value ({exc})") from None
    if not dest_seen:
        raise RouteSyntaxError(f"route '{' '.join(w)}': no destination")
    kw.setdefault("table", TABLES["main"])
    kw.setdefault("proto", PROTOS["boot"])  # what `ip route add` sets
    rtype = kw.get("type", ROUTE_TYPES["unicast"])
    kw.setdefault("type", rtype)
    if rtype == ROUTE_TYPES["unicast"] and not devs and default_dev and not gateway:
        devs.append(("oif", default_dev))
    if "scope" not in kw:
        # iproute2's default: link scope for a directly connected unicast route, universe otherwise; host
        # for local ones.
        if rtype == ROUTE_TYPES["local"]:
            kw["scope"] = SCOPES["host"]
        elif rtype == ROUTE_TYPES["unicast"] and not gateway and devs:
            kw["scope"] = SCOPES["link"]
        else:
            kw["scope"] = SCOPES["global"]
    return NetSpec("route", " ".join(w), tuple(sorted(kw.items())), tuple(devs))


def rule_spec(r: Rule) -> NetSpec:
    """The pyroute2 arguments of one virtual_rules line."""
    w = list(r.words)
    kw: dict[str, Any] = {"family": socket.AF_INET6 if r.family == 6 else socket.AF_INET}
    devs: list[tuple[str, str]] = []
    i = 0
    try:
        while i < len(w):
            x = w[i]
            if x in ("no_track", "inet", "inet6"):
                i += 1
                continue
            if x in RULE_ACTIONS:
                kw["action"] = RULE_ACTIONS[x]
                i += 1
                continue
            if i + 1 >= len(w):
                raise RouteSyntaxError(f"'{x}' needs a value")
            v = w[i + 1]
            if x in ("from", "to"):
                if v != "all":
                    net = ipaddress.ip_network(v, strict=False)
                    key = "src" if x == "from" else "dst"
                    kw[key] = str(net.network_address)
                    kw[key + "_len"] = net.prefixlen
            elif x in ("table", "lookup"):
                kw["table"] = _table(v)
                kw.setdefault("action", FR_ACT_TO_TBL)
            elif x in ("priority", "pref", "preference"):
                kw["priority"] = _num(v)
            elif x == "fwmark":
                mark, _, mask = v.partition("/")
                kw["fwmark"] = _num(mark)
                if mask:
                    kw["fwmask"] = _num(mask)
            elif x in ("iif", "dev"):
                kw["iifname"] = v
            elif x == "oif":
                kw["oifname"] = v
            elif x == "goto":
                kw["goto"] = _num(v)
                kw["action"] = FR_ACT_GOTO
            else:
                raise RouteSyntaxError(f"'{x}' is not understood in a rule")
            i += 2
    except (ValueError, KeyError) as exc:
        if isinstance(exc, RouteSyntaxError):
            raise RouteSyntaxError(f"rule '{' '.join(w)}': {exc}") from None
        raise RouteSyntaxError(f"rule '{' '.join(w)}': bad value ({exc})") from None
    if "action" not in kw:
        raise RouteSyntaxError(f"rule '{' '.join(w)}': no action (table, goto, blackhole ...)")
    return NetSpec("rule", " ".join(w), tuple(sorted(kw.items())), tuple(devs))


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
            fn("add" if add else "del", **kw)
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
