"""Address, route and rule lines: virtual_ipaddress / static_ipaddress, virtual_routes / static_routes,
virtual_rules / static_rules. Each function reads one line (a statement whose keyword is the first word); the
route and rule lines are read in route_lines.py."""

from __future__ import annotations

from typing import Any

from . import _fast
from .lexer import Node
from .model import VirtualAddress
from .route_lines import route, rule, static_route, static_rule
from .values import SMALL_INTS, Reporter, cached_ip, parse_ip

_SCOPES = frozenset({"site", "link", "host", "nowhere", "global"})
_ADDR_FLAGS = frozenset({"home", "-nodad", "mngtmpaddr", "noprefixroute", "autojoin"})
_ADDR_OPTIONS = frozenset(
    {"brd", "broadcast", "dev", "scope", "label", "peer", "track_group", "preferred_lft"}
)
__all__ = ["route", "rule", "static_route", "static_rule", "vaddr"]

_make_vaddr = _fast.maker(VirtualAddress)


def vaddr(r: Reporter, n: Node, static: bool = False) -> VirtualAddress | None:
    """`ADDR[/PREFIX] [brd X] [dev IF] [scope S] [label L] [peer P] [flags...]`."""
    if n.children is not None:
        r.no_block(n)
    text = n.kw
    addr_s, slash, plen_s = text.partition("/")
    addr = cached_ip(addr_s)
    if addr is None:
        try:
            addr = parse_ip(addr_s)
        except ValueError:
            # keepalived 2.2.7: "VRRP parsed invalid IP 192.0.2.300/24. skipping IP..."
            r.adjust(n, f"invalid address '{text}': line skipped, as keepalived does")
            return None
    maxlen = 32 if addr.version == 4 else 128
    plen = maxlen
    if slash:
        plen_v = SMALL_INTS.get(plen_s)
        if plen_v is None or not 0 <= plen_v <= maxlen:
            # keepalived 2.2.7: "Invalid address prefix len 33 for address 192.0.2.1/33 - using 32"
            r.adjust(n, f"invalid prefix length '{plen_s}' of {text}: using /{maxlen}, as keepalived does")
            plen_v = maxlen
        plen = plen_v
    a = n.args
    if not a:
        return _make_vaddr(
            addr, plen, None, None, None, None, None, False, False, None, None, (), n.file, n.line
        )
    f: dict[str, Any] = {}  # VirtualAddress keyword arguments
    flags: list[str] = []
    i = 0
    while i < len(a):
        w = a[i]
        if w in _ADDR_OPTIONS:
            if i + 1 >= len(a):
                r.err(n, f"'{w}' needs a value")
                return None
            if not _addr_option(r, n, w, a[i + 1], addr, static, f):
                return None
            i += 2
        elif w == "use_vmac":
            f["use_vmac"] = True
            i += 1
            if i < len(a) and ":" in a[i] and not a[i].startswith("dev"):
                i += 1  # an optional MAC
        elif w == "no_track":
            f["no_track"] = True
            i += 1
        elif w in _ADDR_FLAGS:
            flags.append(w)
            i += 1
        else:
            r.err(n, f"unknown option '{w}' for address {n.kw}")
            return None
    if f.get("peer") is not None:
        if plen != maxlen:
            # keepalived 2.2.7: "Cannot specify address prefix when specifying peer address - ignoring"
            r.adjust(n, f"prefix length of {text} with a peer: /{maxlen} is used, as keepalived does")
            plen = maxlen
        if f.get("brd") not in (None, "+", "-"):
            # keepalived 2.2.7: "Cannot specify broadcast and peer addresses - ignoring broadcast address"
            r.adjust(n, f"broadcast address of {text} with a peer: ignored, as keepalived does")
            del f["brd"]
    if addr.version == 6:
        for k in ("scope", "label"):
            if f.pop(k, None) is not None:
                # keepalived 2.2.7: "Cannot specify scope for IPv6 addresses (...) - ignoring scope"
                r.adjust(n, f"{k} of the IPv6 address {text}: ignored, as keepalived does")
    if f.get("brd") in ("+", "-") and addr.version == 4 and plen > 30:
        # keepalived 2.2.7: "Address prefix length 32 too long for broadcast"
        r.adjust(n, f"'brd {f['brd']}' on a /{plen}: no broadcast address, as keepalived does")
    return VirtualAddress(addr, plen, flags=tuple(flags), file=n.file, line=n.line, **f)


def _addr_option(r: Reporter, n: Node, w: str, v: str, addr: Any, static: bool, f: dict[str, Any]) -> bool:
    """One `OPTION VALUE` pair of an address line into `f`; False (reported) if the value is wrong."""
    if w in ("brd", "broadcast"):
        if v not in ("-", "+"):
            b = r.ip(n, v, "broadcast address")
            if b is None:
                return False
            if b.version != addr.version or addr.version == 6:
                r.err(n, f"broadcast address {v} does not fit {n.kw}")
                return False
        f["brd"] = v
    elif w == "scope":
        if v in _SCOPES or (v.isdigit() and int(v) <= 255):
            f["scope"] = v
        else:
            # keepalived 2.2.7: "Invalid scope '300' specified for 192.0.2.7/24 - ignoring"
            r.adjust(n, f"invalid scope '{v}' of {n.kw}: ignored, as keepalived does")
    elif w == "peer":
        # keepalived 2.2.7 takes a bare address of the same family ("Invalid peer address 192.0.2.9/30",
        # "Peer address ... does not match address family": the line is kept without a peer)
        try:
            p = parse_ip(v)
        except ValueError:
            p = None
        if p is None or p.version != addr.version:
            msg = (
                f"peer '{v}' of {n.kw} is no address of its family: added without a peer, as keepalived does"
            )
            r.adjust(n, msg)
        else:
            f["peer"] = p
    elif w == "label" and len(v.encode("utf-8", "surrogateescape")) >= 16:
        # keepalived 2.2.7: "Address label ... is longer than maximum length 15 - removing address"
        r.adjust(n, f"label '{v}' of {n.kw} is longer than 15 characters: line skipped, as keepalived does")
        return False
    elif w == "track_group":
        if not static:
            r.err(n, "'track_group' only applies to static addresses")
            return False
        f["track_group"] = v
    elif w == "preferred_lft":
        if v == "forever" or (v.isdigit() and int(v) <= 0xFFFFFFFF):
            f["preferred_lft"] = v
        else:
            # keepalived 2.2.7: "preferred_lft abc is invalid" (the line is kept)
            r.adjust(n, f"invalid preferred_lft '{v}' of {n.kw}: ignored, as keepalived does")
    else:
        f[w] = v
    return True
