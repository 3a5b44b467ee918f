"""Route and rule lines (virtual_routes, static_routes, virtual_rules, static_rules) read into typed fields.

The keywords are keepalived 2.2.7's (keepalived.conf(5), and what `keepalived -t` accepts; the verdicts are
compared with it in tests/netns/test_route_verdicts.py). Three outcomes for a line:
- read: a `Route` / `Rule` whose fields io/routes.py turns into netlink messages without reading words again;
- skipped: keepalived drops the line with a message and starts (an unknown keyword, a bad value, a rule
  without action ...): fastvrrp drops it too and reports an adjustment that names the problem;
- refused: a keyword without its value: a configuration error.
Adjustments that keep the line, as keepalived does: `gw` (deprecated for `via`), `or` (deprecated for
`nexthop`), words after the nexthops (not read), a prefix length over the maximum (the maximum is used), a
tracked route or rule with a protocol other than keepalived's (reset to it), a route without an interface
(not tracked), a rule without priority (keepalived's 16384, 16383, ...).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from . import iproute2_names as names
from .lexer import Node
from .model import Nexthop, Route, RouteEncap, RouteMetric, Rule
from .values import Reporter

U32 = 2**32 - 1
RTPROT_KEEPALIVED = 18
FIRST_DEFAULT_RULE_PRIORITY = 16384  # keepalived counts down from here for rules without one

ROUTE_TYPES = frozenset(
    (
        "unicast",
        "local",
        "broadcast",
        "anycast",
        "multicast",
        "blackhole",
        "unreachable",
        "prohibit",
        "throw",
        "nat",
    )
)
# u32 metrics, with the upper bound keepalived checks
_METRICS = {
    "mtu": U32,
    "hoplimit": 255,
    "advmss": U32,
    "reordering": U32,
    "window": U32,
    "cwnd": U32,
    "ssthresh": U32,
    "initcwnd": U32,
    "initrwnd": U32,
}
_MPLS_LABEL_MAX = 2**20 - 1
# Times: a bare number is the kernel's own unit (as with ip route), `Nms` / `Ns` are milliseconds turned into
# it. keepalived 2.2.7 installs none below 200 ms (TCP's minimum RTO): what it installs is what is kept.
_TIME_METRICS = {"rtt": 8, "rttvar": 4, "rto_min": 1}  # kernel units per millisecond
_MIN_RTT_MS = 200
_PREFS = {"medium": 0, "high": 1, "low": 3}  # ICMPV6_ROUTER_PREF_*
_RULE_ACTIONS = frozenset({"blackhole", "unreachable", "prohibit", "nop"})
# IP protocol names without /etc/protocols (netbase); the file, when present, knows the others.
_IP_PROTOS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58}


class Skip(Exception):
    """keepalived drops the line (and says why)."""


class Refuse(Exception):
    """fastvrrp cannot give the line keepalived's meaning."""


class _Words:
    """The words of one line, read left to right."""

    def __init__(self, words: list[str]) -> None:
        self.w = words
        self.i = 0

    def more(self) -> bool:
        return self.i < len(self.w)

    def next(self) -> str:
        x = self.w[self.i]
        self.i += 1
        return x

    def value(self, kw: str) -> str:
        if self.i >= len(self.w):
            raise Refuse(f"'{kw}' needs a value")
        return self.next()


def _uint(text: str, hi: int, what: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise Skip(f"invalid {what} '{text}'") from None
    if not 0 <= v <= hi:
        raise Skip(f"{what} {text} out of range [0, {hi}]")
    return v


def _named(kind: str, text: str, hi: int, what: str) -> int:
    v = names.number(kind, text, hi)
    if v is None:
        raise Skip(f"{what} '{text}' is not a name in /etc/iproute2/{kind} nor a number 0..{hi}")
    return v


def _realms(text: str) -> int:
    src, slash, dst = text.rpartition("/")
    to = _named("rt_realms", dst, 0xFFFF, "realm")
    frm = _named("rt_realms", src, 0xFFFF, "realm") if slash else 0
    return (frm << 16) | to


def _net(r: Reporter, n: Node, text: str, what: str) -> Any:
    """An address with an optional prefix length; a length over the maximum becomes the maximum with an
    adjustment, as keepalived does."""
    addr_s, slash, plen_s = text.partition("/")
    try:
        addr = ipaddress.ip_address(addr_s)
    except ValueError:
        raise Skip(f"invalid {what} '{text}'") from None
    top: int = addr.max_prefixlen
    plen = top
    if slash:
        try:
            plen = int(plen_s, 10)
        except ValueError:
            raise Skip(f"invalid prefix length in {what} '{text}'") from None
        if plen < 0:
            raise Skip(f"invalid prefix length in {what} '{text}'")
        if plen > top:
            r.adjust(n, f"prefix length {plen} of {what} {text} is over {top}: {top} used (as keepalived)")
            plen = top
    return ipaddress.ip_network(f"{addr}/{plen}", strict=False)


def _family(f: dict[str, Any], version: int) -> None:
    fam = f.get("family")
    if fam is not None and fam != version:
        raise Skip("it mixes IPv4 and IPv6 addresses")
    f["family"] = version


def _line_words(n: Node) -> list[str]:
    return [n.kw, *n.args]


def _judge(r: Reporter, n: Node, kind: str, read: Any) -> Any:
    """Run one line's reader: a Skip becomes an adjustment (the line is dropped), a Refuse an error."""
    r.no_block(n)
    try:
        return read()
    except Skip as why:
        r.adjust(n, f"{kind} '{' '.join(_line_words(n))}' skipped, as keepalived does: {why}")
    except Refuse as why:
        r.err(n, f"{kind} '{' '.join(_line_words(n))}': {why}")
    return None


# --- routes -------------------------------------------------------------------------------------------------
def route(r: Reporter, n: Node, static: bool = False) -> Route | None:
    """One virtual_routes (or static_routes) line into a Route, or None (reported)."""
    return _judge(r, n, "route", lambda: _route(r, n, static))


def static_route(r: Reporter, n: Node) -> Route | None:
    return route(r, n, static=True)


def _route(r: Reporter, n: Node, static: bool) -> Route:
    w = _Words(_line_words(n))
    f: dict[str, Any] = {}
    metrics: dict[str, RouteMetric] = {}
    if w.w[0] in ROUTE_TYPES:
        f["type"] = w.next()
    ors: list[Any] = []
    while w.more():
        x = w.next()
        if x == "nexthop":
            f["nexthops"] = _nexthops(r, n, w, f)
        elif x == "or":
            ors.append(_addr(w.value(x), "'or' address", f))
        elif x == "encap":
            f["encap"] = _encap(w)
        elif x == "vrf":
            f["vrf"] = w.value(x)
        elif x == "ttl-propagate":
            v = w.value(x)
            if v not in ("enabled", "disabled"):
                # keepalived 2.2.7: "ttl-propagate value X not recognised", and it sends "disabled"
                r.adjust(
                    n, f"ttl-propagate value '{v}' is not enabled or disabled: disabled, as keepalived does"
                )
            f["ttl_propagate"] = v == "enabled"
        elif x == "fastopen_no_cookie":
            metrics[x] = RouteMetric(x, _uint(w.value(x), 1, "fastopen_no_cookie value"))
        elif x in _METRICS or x in _TIME_METRICS or x in ("congctl", "features", "quickack"):
            _route_metric(w, x, metrics)
        elif x in ("no_track", "onlink", "append"):
            f[x] = True
        elif x == "track_group" and static:
            f["track_group"] = w.value(x)
        elif not _route_option(r, n, w, x, f):
            if "destination" in f or x.startswith("-"):
                raise Skip(f"unknown route keyword '{x}'")
            _route_destination(r, n, x, f)
    if "destination" not in f:
        raise Skip("a route must have a destination")
    family = f.pop("family", 4)
    if f["destination"] is None:
        f["destination"] = ipaddress.ip_network("::/0" if family == 6 else "0.0.0.0/0")
    for v6_only in ("pref", "expires"):
        if f.get(v6_only) is not None and family != 6:
            raise Skip(f"{v6_only} is only valid for IPv6")
    if not f.get("no_track"):
        if f.get("protocol", RTPROT_KEEPALIVED) != RTPROT_KEEPALIVED:
            r.adjust(n, "a tracked route's protocol is reset to keepalived (18), as keepalived does")
            f["protocol"] = RTPROT_KEEPALIVED
        if f.get("dev") is None:
            r.adjust(n, "route without 'dev' is not tracked, as keepalived does")
            f["no_track"] = True
    if ors:
        _or_as_nexthops(r, n, f, ors)
    _not_tracked(r, n, f, static)
    return Route(" ".join(w.w), family=family, metrics=tuple(metrics.values()), file=n.file, line=n.line, **f)


def _nexthops(r: Reporter, n: Node, w: _Words, f: dict[str, Any]) -> tuple[Nexthop, ...]:
    """`nexthop ...` groups up to the end of the line (what follows them is not read, as keepalived)."""
    hops: list[dict[str, Any]] = [{}]
    while w.more():
        x = w.next()
        hop = hops[-1]
        if x == "nexthop":
            hops.append({})
        elif x == "via":
            v = w.value(x)
            hop["via"] = _addr(w.value(x) if v in ("inet", "inet6") else v, "nexthop via address", f)
        elif x == "dev":
            hop["dev"] = w.value(x)
        elif x == "weight":
            v = w.value(x)
            hop["weight"] = _uint(v, 256, "nexthop weight")
            if hop["weight"] == 0:
                raise Skip("nexthop weight 0 is invalid (1-256)")
        elif x == "onlink":
            hop["onlink"] = True
        elif x == "realms":
            hop["realms"] = _realms(w.value(x))
        elif x == "encap":
            # keepalived 2.2.7 gives the path its own tunnel; installing it without one would send in clear
            raise Skip("encap inside a nexthop (a tunnel per path) is not implemented by fastvrrp")
        else:
            rest = " ".join(w.w[w.i - 1 :])
            r.adjust(n, f"'{rest}' after the nexthops is not read, as keepalived does")
            w.i = len(w.w)
    if any(not h.get("via") and not h.get("dev") for h in hops):
        raise Skip("a nexthop needs 'via' or 'dev'")
    return tuple(Nexthop(**h) for h in hops)


def _or_as_nexthops(r: Reporter, n: Node, f: dict[str, Any], ors: list[Any]) -> None:
    """`via A or B`: keepalived's deprecated spelling of nexthops of weight 1 (each on `dev`, if given)."""
    if "via" not in f or "nexthops" in f:
        raise Skip("'or' only follows 'via' in a route without 'nexthop'")
    r.adjust(n, "'or' is deprecated for routes, read as nexthops, as keepalived does")
    dev = f.pop("dev", None)
    f["nexthops"] = tuple(Nexthop(via=a, dev=dev) for a in (f.pop("via"), *ors))


def _route_destination(r: Reporter, n: Node, x: str, f: dict[str, Any]) -> None:
    if x == "default":
        f["destination"] = None  # its family is the route's, known at the end of the line
        return
    net = _net(r, n, x, "destination")
    _family(f, net.version)
    f["destination"] = net


def _route_option(r: Reporter, n: Node, w: _Words, x: str, f: dict[str, Any]) -> bool:
    """A `KEYWORD VALUE` route option into `f`; False if `x` is not one."""
    if x == "to":
        _route_destination(r, n, w.value(x), f)
    elif x in ("via", "gw"):
        v = w.value(x)
        if v in ("inet", "inet6"):
            v = w.value(x)
        if x == "gw":
            r.adjust(n, "'gw' is deprecated for routes, read as 'via', as keepalived does")
        f["via"] = _addr(v, "via address", f)
    elif x == "src":
        f["src"] = _addr(w.value(x), "src address", f)
    elif x in ("dev", "oif"):
        f["dev"] = w.value(x)
    elif x == "table":
        f["table"] = _named("rt_tables", w.value(x), U32, "routing table")
    elif x in ("metric", "priority", "preference"):
        f["metric"] = _uint(w.value(x), U32, "metric")
    elif x == "protocol":
        f["protocol"] = _named("rt_protos", w.value(x), 255, "protocol")
    elif x == "scope":
        f["scope"] = _named("rt_scopes", w.value(x), 255, "scope")
    elif x in ("tos", "dsfield"):
        f["tos"] = _named("rt_dsfield", w.value(x), 255, "TOS value")
    elif x == "realms":
        f["realms"] = _realms(w.value(x))
    elif x == "pref":
        v = w.value(x)
        if v not in _PREFS:
            raise Skip(f"pref '{v}' is not low, medium or high")
        f["pref"] = _PREFS[v]
    elif x == "expires":
        f["expires"] = _uint(w.value(x), U32, "expires")
    else:
        return False
    return True


def _addr(text: str, what: str, f: dict[str, Any]) -> Any:
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        raise Skip(f"invalid {what} '{text}'") from None
    _family(f, a.version)
    return a


def _encap(w: _Words) -> RouteEncap:
    """`encap mpls L[/L...]`, `encap ip|ip6 KEY VALUE ...` (keepalived 2.2.7's types but ila, which fastvrrp
    cannot install: the line is skipped)."""
    kind = w.value("encap")
    if kind == "mpls":
        text = w.value("encap mpls")
        labels = tuple(_uint(x, _MPLS_LABEL_MAX, "MPLS label") for x in text.split("/"))
        return RouteEncap("mpls", labels=labels)
    if kind not in ("ip", "ip6"):
        why = "ILA encapsulation is not implemented by fastvrrp" if kind == "ila" else "unknown encap type"
        raise Skip(f"{why} '{kind}'")
    v6 = kind == "ip6"
    keys = {"ttl": "hoplimit", "tos": "tc"} if v6 else {"ttl": "ttl", "tos": "tos"}
    e: dict[str, Any] = {}
    while w.i + 1 < len(w.w):
        key, val = w.w[w.i], w.w[w.i + 1]
        if key == "id":
            e["id"] = _uint(val, 2**64 - 1, f"encap {kind} id")
        elif key in ("dst", "src"):
            try:
                a = ipaddress.ip_address(val)
            except ValueError:
                raise Skip(f"invalid encap {kind} {key} '{val}'") from None
            if a.version != (6 if v6 else 4):
                raise Skip(f"{val} is not valid for {kind} encapsulation")
            e[key] = a
        elif key == keys["ttl"]:
            e["ttl"] = _uint(val, 255, f"encap {kind} {key}")
        elif key == keys["tos"]:
            e["tos"] = _named("rt_dsfield", val, 255, f"encap {kind} {key}")
        elif key == "flags":
            e["flags"] = _uint(val, 0xFFFF, f"encap {kind} flags")
        else:
            break
        w.i += 2
    if "dst" not in e and "id" not in e:
        raise Skip(f"address or id missing for {kind} encapsulation")
    return RouteEncap(kind, **e)


def _route_metric(w: _Words, x: str, metrics: dict[str, RouteMetric]) -> None:
    v = w.value(x)
    lock = v == "lock" and x not in ("features", "quickack")
    if lock:
        v = w.value(x)
    if x == "congctl":
        metrics["cc_algo"] = RouteMetric("cc_algo", v, lock)
    elif x == "features":
        if v != "ecn":
            raise Skip(f"feature '{v}' not supported (ecn is)")
        metrics["features"] = RouteMetric("features", 1)
    elif x == "quickack":
        metrics["quickack"] = RouteMetric("quickack", _uint(v, 1, "quickack value"))
    elif x in _TIME_METRICS:
        metrics[x] = RouteMetric(x, _time_metric(x, v), lock)
    else:
        metrics[x] = RouteMetric(x, _uint(v, _METRICS[x], x), lock)


def _time_metric(x: str, v: str) -> int:
    """rtt / rttvar / rto_min in the kernel's unit (1/8 ms, 1/4 ms, ms)."""
    per_ms = _TIME_METRICS[x]
    if v.endswith("ms"):
        raw = _uint(v[:-2], U32 // 8, x) * per_ms
    elif v.endswith("s"):
        raw = _uint(v[:-1], U32 // 8000, x) * 1000 * per_ms
    else:
        raw = _uint(v, U32, x)
    return max(raw, _MIN_RTT_MS * per_ms)


# --- rules --------------------------------------------------------------------------------------------------
def rule(r: Reporter, n: Node, static: bool = False) -> Rule | None:
    """One virtual_rules (or static_rules) line into a Rule, or None (reported)."""
    return _judge(r, n, "rule", lambda: _rule(r, n, static))


def static_rule(r: Reporter, n: Node) -> Rule | None:
    return rule(r, n, static=True)


def _rule(r: Reporter, n: Node, static: bool) -> Rule:
    w = _Words(_line_words(n))
    f: dict[str, Any] = {}
    while w.more():
        x = w.next()
        if x in ("no_track", "l3mdev"):
            f[x] = True
        elif x == "not":
            f["invert"] = True
        elif x in _RULE_ACTIONS:
            f["action"] = x
        elif x == "track_group" and static:
            f["track_group"] = w.value(x)
        elif not _rule_option(r, n, w, x, f) and not _rule_match(w, x, f):
            raise Skip(f"unknown rule option '{x}'")
    if f.get("l3mdev"):
        f.setdefault("action", "table")
    if "action" not in f:
        raise Skip("no action (table, goto, blackhole, unreachable, prohibit, nop, l3mdev)")
    if "priority" not in f:
        f["priority"] = _default_rule_priority(r, n)
    if f["action"] == "goto" and f["priority"] >= f["goto"]:
        raise Skip(f"priority {f['priority']} is not below the goto target {f['goto']}")
    if not f.get("no_track") and f.get("protocol", RTPROT_KEEPALIVED) != RTPROT_KEEPALIVED:
        r.adjust(n, "a tracked rule's protocol is reset to keepalived (18), as keepalived does")
        f["protocol"] = RTPROT_KEEPALIVED
    _not_tracked(r, n, f, static)
    return Rule(" ".join(w.w), family=f.pop("family", 4), file=n.file, line=n.line, **f)


_TRACKING = "tracking of virtual routes and rules (keepalived leaves MASTER when one is deleted)"
STATIC_TRACK_GROUP = "track_group of static addresses, routes and rules"


def _not_tracked(r: Reporter, n: Node, f: dict[str, Any], static: bool) -> None:
    """What fastvrrp does not do with a route or rule: a note (one per feature) rather than silence. A
    static line's track_group must still name a track_group (checked with the static addresses')."""
    if static and f.get("track_group") is not None:
        r.unsupported(n, STATIC_TRACK_GROUP)
        groups = getattr(r, "static_track_groups", None)  # the Reader's list (config/reader.py)
        if groups is not None:
            groups.append((f["track_group"], n))
    elif not static and not f.get("no_track"):
        r.unsupported(n, _TRACKING)


def _default_rule_priority(r: Reporter, n: Node) -> int:
    """keepalived gives rules without a priority 16384, then 16383 ... in the order of the file."""
    v = getattr(r, "_next_rule_priority", FIRST_DEFAULT_RULE_PRIORITY)
    r._next_rule_priority = v - 1  # type: ignore[attr-defined]
    r.adjust(n, f"rule has no priority: {v} given, as keepalived does")
    return v


def _rule_option(r: Reporter, n: Node, w: _Words, x: str, f: dict[str, Any]) -> bool:
    """Where a rule points and what it is: from, to, priority, table, goto, type."""
    if x in ("from", "to"):
        v = w.value(x)
        if v != "all":
            net = _net(r, n, v, f"rule {x} address")
            _family(f, net.version)
            f["src" if x == "from" else "dst"] = net
    elif x in ("priority", "preference"):
        f["priority"] = _uint(w.value(x), U32, "rule priority")
    elif x in ("table", "lookup"):
        t = _named("rt_tables", w.value(x), U32, "routing table")
        if t == 0:
            raise Skip("table 0 is not valid")
        f["table"] = t
        f["action"] = "table"
    elif x == "goto":
        f["goto"] = _uint(w.value(x), U32, "goto target")
        f["action"] = "goto"
    elif x == "type":
        v = w.value(x)
        if v not in _RULE_ACTIONS:
            raise Skip(f"invalid rule action '{v}'")
        f["action"] = v
    else:
        return False
    return True


def _rule_match(w: _Words, x: str, f: dict[str, Any]) -> bool:
    """What a rule matches besides addresses: marks, interfaces, TOS, ranges, protocols."""
    if x == "fwmark":
        v = w.value(x)
        mark, slash, mask = v.partition("/")
        f["fwmark"] = _uint(mark, U32, "fwmark")
        if slash:
            f["fwmask"] = _uint(mask, U32, "fwmark mask")
    elif x in ("iif", "dev"):
        f["iif"] = w.value(x)
    elif x == "oif":
        f["oif"] = w.value(x)
    elif x in ("tos", "dsfield"):
        f["tos"] = _named("rt_dsfield", w.value(x), 255, "TOS value")
    elif x == "realms":
        f["realms"] = _realms(w.value(x))
    elif x == "suppress_prefixlength":
        f["suppress_prefixlength"] = _uint(w.value(x), 128, "suppress_prefixlength")
    elif x == "suppress_ifgroup":
        f["suppress_ifgroup"] = _uint(w.value(x), U32, "suppress_ifgroup")
    elif x == "uidrange":
        f["uidrange"] = _range(w.value(x), U32, "uidrange")
    elif x in ("sport", "dport"):
        f[x] = _range(w.value(x), 0xFFFF, f"{x} range")
    elif x == "ipproto":
        v = w.value(x)
        f["ip_proto"] = _ip_proto(v)
    elif x == "protocol":
        f["protocol"] = _uint(w.value(x), 255, "protocol")
    else:
        return False
    return True


def _ip_proto(v: str) -> int:
    if v in _IP_PROTOS:
        return _IP_PROTOS[v]
    if not v.isdigit():
        try:
            return socket.getprotobyname(v)
        except OSError:
            pass
    return _uint(v, 255, "ipproto")


def _range(text: str, hi: int, what: str) -> tuple[int, int]:
    lo_s, dash, hi_s = text.partition("-")
    if not dash:
        raise Skip(f"invalid {what} '{text}' (expected START-END)")
    return _uint(lo_s, hi, what), _uint(hi_s, hi, what)
