"""Typed values from statement words, and where problems go.

`Reporter` collects every problem as Problem(file, line, message) at the statement it is about, every
adjustment (a statement keepalived 2.2.7 works around when it starts the file - it rounds, drops or skips it -
and fastvrrp works around the same way, saying what it did), and one note per keepalived feature fastvrrp
does not implement. Its value methods turn a statement's words into a
typed value (an int in a range, seconds as ms, a boolean, an address ...) or report why they cannot and
return None.
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any

from .lexer import Node
from .model import Problem, Script

_TRUE = frozenset({"on", "true", "yes"})
_FALSE = frozenset({"off", "false", "no"})

_ip_cache: dict[str, Any] = {}
_new_ipv4 = ipaddress.IPv4Address.__new__
_OCTETS = {str(i): i for i in range(256)}  # the canonical spelling of each octet
# Canonical spellings of small integers (no sign on 0, no leading zeros): what int(text, 10) turns into
# that number, looked up directly on the common paths (weights, prefix lengths).
SMALL_INTS = {str(i): i for i in range(-256, 257)}


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """ipaddress.ip_address(text), remembered (a large config repeats its addresses)."""
    v = _ip_cache.get(text)
    if v is None:
        parts = text.split(".")
        if len(parts) == 4:
            # A dotted quad in canonical form (no leading zeros, each octet <= 255) is what ip_address
            # accepts for IPv4 and means the same; build it from the integer without its parser. Anything
            # else goes through ip_address, which gives the same value or the same error as always.
            o = _OCTETS
            a, b, c, d = parts
            if a in o and b in o and c in o and d in o:
                v = _new_ipv4(ipaddress.IPv4Address)
                v._ip = (o[a] << 24) | (o[b] << 16) | (o[c] << 8) | o[d]  # type: ignore[attr-defined]
        if v is None:
            v = ipaddress.ip_address(text)
        if len(_ip_cache) < 100_000:
            _ip_cache[text] = v
    return v


def cached_ip(text: str) -> Any:
    """The address parse_ip made from `text` before, or None."""
    return _ip_cache.get(text)


def secs_to_ms(x: float) -> int:
    return int(math.floor(x * 1000 + 0.5))


def looks_ip(w: str) -> bool:
    try:
        ipaddress.ip_address(w)
        return True
    except ValueError:
        return False


class Reporter:
    """Problems and unsupported-feature notes, and the typed-value readers that report into them."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        # Worked around as keepalived does; `fastvrrp -t` exits 5 for them, strict config makes them problems.
        self.adjustments: list[Problem] = []
        self._unsupported: dict[str, list] = {}  # feature -> [first node, count, its keyword]

    # --- reporting ------------------------------------------------------------------------------------------
    def err(self, node: Node, msg: str) -> None:
        self.problems.append(Problem(node.file, node.line, msg))

    def adjust(self, node: Node, msg: str) -> None:
        """A problem keepalived works around when it starts the file; `msg` says what fastvrrp did instead
        (the same as keepalived). Any block reader may report one; the file still runs."""
        self.adjustments.append(Problem(node.file, node.line, msg))

    def unsupported(self, node: Node, feature: str) -> None:
        """One note per feature: the first place it is used and how many places use it."""
        entry = self._unsupported.get(feature)
        if entry is None:
            self._unsupported[feature] = [node, 1, node.kw]
        else:
            entry[1] += 1

    def unsupported_notes(self) -> tuple[Problem, ...]:
        out = []
        for feature, (node, count, kw) in self._unsupported.items():
            more = f" (and {count - 1} more place{'s' if count > 2 else ''})" if count > 1 else ""
            out.append(
                Problem(node.file, node.line, f"'{kw}': {feature} not implemented by fastvrrp, ignored{more}")
            )
        return tuple(out)

    # --- shapes ---------------------------------------------------------------------------------------------
    def nargs(self, n: Node, lo: int, hi: int | None = None) -> bool:
        k = len(n.args)
        hi = lo if hi is None else hi
        if k < lo or (hi >= 0 and k > hi):
            if lo == hi:
                want = "no value" if lo == 0 else ("one value" if lo == 1 else f"{lo} values")
            elif hi < 0:
                want = f"at least {lo} value{'s' if lo != 1 else ''}"
            else:
                want = f"{lo} to {hi} values"
            self.err(n, f"'{n.kw}' expects {want}, got {k}")
            return False
        return True

    def no_block(self, n: Node) -> None:
        if n.children is not None:
            self.err(n, f"'{n.kw}' does not take a block")

    def want_block(self, n: Node) -> list[Node] | None:
        if n.children is None:
            self.err(n, f"'{n.kw}' needs a {{ }} block")
            return None
        return n.children

    def named(self, n: Node, what: str, seen: dict) -> str | None:
        """The one name of a `KEYWORD NAME { }` block, unless it is missing or already defined."""
        a = n.args
        if len(a) == 1 and a[0] not in seen:
            return a[0]
        if len(n.args) != 1:
            self.err(n, f"'{n.kw}' needs exactly one name")
            return None
        name = n.args[0]
        if name in seen:
            self.err(n, f"{what} '{name}' is already defined")
            return None
        return name

    # --- typed values ---------------------------------------------------------------------------------------
    def int_in(self, n: Node, text: str, lo: int, hi: int, what: str | None = None) -> int | None:
        try:
            v = int(text, 10)
        except ValueError:
            self.err(n, f"{what or n.kw} '{text}' is not an integer")
            return None
        if v < lo or v > hi:
            self.err(n, f"{what or n.kw} {v} out of range [{lo}, {hi}]")
            return None
        return v

    def secs_in(self, n: Node, text: str, lo: float, hi: float, what: str | None = None) -> int | None:
        """A time in seconds (fraction allowed) -> integer ms."""
        try:
            v = float(text)
            if not math.isfinite(v):
                raise ValueError
        except ValueError:
            self.err(n, f"{what or n.kw} '{text}' is not a number of seconds")
            return None
        if v < lo or v > hi:
            self.err(n, f"{what or n.kw} {text} out of range [{lo:g}, {hi:g}] seconds")
            return None
        return secs_to_ms(v)

    def boolean(self, n: Node) -> bool | None:
        """Optional <BOOL>: no value means on."""
        if not n.args:
            return True
        if len(n.args) != 1:
            self.err(n, f"'{n.kw}' expects at most one value (on|off|true|false|yes|no)")
            return None
        a = n.args[0].lower()
        if a in _TRUE:
            return True
        if a in _FALSE:
            return False
        self.err(n, f"'{n.kw}' value '{n.args[0]}' is not one of on|off|true|false|yes|no")
        return None

    def ip(
        self, n: Node, text: str, what: str = "address"
    ) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        try:
            return parse_ip(text)
        except ValueError:
            self.err(n, f"invalid {what} '{text}'")
            return None

    def net(self, n: Node, text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            self.err(n, f"invalid network '{text}'")
            return None

    def script(self, n: Node) -> Script | None:
        if not self.nargs(n, 1, 3):
            return None
        a = n.args
        return Script(a[0], a[1] if len(a) > 1 else None, a[2] if len(a) > 2 else None)

    def words_block(self, n: Node) -> tuple[str, ...]:
        kids = self.want_block(n)
        if kids is None:
            return ()
        out = []
        for k in kids:
            if k.args or k.children is not None:
                self.err(k, f"'{n.kw}' entries are single words, got '{' '.join([k.kw, *k.args])}'")
            else:
                out.append(k.kw)
        return tuple(out)

    def track_weight(self, k: Node, lo: int, hi: int) -> tuple[int | None, bool] | None:
        """A tracking line `NAME [weight W [reverse]]`: (weight or None, reverse); None if the words after
        the name are not a weight."""
        self.no_block(k)
        if not k.args:
            return None, False
        if k.args[0] != "weight":
            self.err(k, f"unexpected '{k.args[0]}' after '{k.kw}' (expected weight)")
            return None
        return self.weight(k, k.args[1:], lo, hi)

    def weight(self, n: Node, args: list[str], lo: int, hi: int) -> tuple[int | None, bool]:
        """`weight N [reverse|noreverse|no_reverse]` at the start of args."""
        if not args:
            self.err(n, "'weight' needs a value")
            return None, False
        if len(args) == 1:
            w = SMALL_INTS.get(args[0])
            if w is not None and lo <= w <= hi:
                return w, False
        w = self.int_in(n, args[0], lo, hi, "weight")
        rev = False
        for a in args[1:]:
            if a == "reverse":
                rev = True
            elif a in ("noreverse", "no_reverse"):
                rev = False
            else:
                self.err(n, f"unexpected '{a}' after weight (expected reverse or noreverse)")
        return w, rev
