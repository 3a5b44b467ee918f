"""One way to read a block: a schema that declares each keyword once, and one walker for every schema.

A `Kw` says how one keyword is read: a handler, the state attribute it sets (`field`), its range or value,
and whether it takes a `{ }` block. Most keywords use the generic handler `store` with a value reader
(`int_kw`, `secs_kw`, `flag_kw` ...); a keyword with rules of its own has a small named handler with the
same signature, `handler(reader, statement, state, kw)`, registered in the same table.

The state is a slotted class per block (see instance.py, trackers.py ...): the attribute of a value that
was not written stays None. When the state class has an attribute `FIELD_at`, the statement that set FIELD
is kept there, so that a later check can point at it.

The global_defs kinds and the keywords of keepalived features fastvrrp does not implement are tables in
schema.py; global_defs.py turns them into a Schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .lexer import Node
from .values import SMALL_INTS, Reporter

Handler = Callable[[Any, Node, Any, "Kw"], None]
Read = Callable[[Reporter, Node, "Kw"], Any]


@dataclass(frozen=True, slots=True)
class Kw:
    """How one keyword of a block is read (see the module docstring)."""

    handle: Handler
    field: str = ""
    lo: Any = None
    hi: Any = None
    value: Any = True  # what a flag stores
    what: str | None = None  # the value's name in messages (default: the keyword)
    block: bool | None = False  # True: takes a block; False: a block is refused; None: not looked at
    read: Read | None = None  # the value reader of `store`
    entry: Callable[[Any, Node], Any] | None = None  # the parser of each line of `more_lines`
    at: str = ""  # the state attribute keeping the statement (filled in by Schema)


class Schema:
    """The keywords of one block: `keywords` (keyword -> Kw), keepalived keywords fastvrrp does not
    implement (`unsupported`: keyword -> feature), and whether an unknown statement may carry a block."""

    __slots__ = ("name", "keywords", "unsupported", "unknown_no_block", "unknown_ignored")

    def __init__(
        self,
        name: str | None,
        state: type | None,
        keywords: Mapping[str, Kw],
        unsupported: Mapping[str, str] | None = None,
        unknown_no_block: bool = False,
        unknown_ignored: bool = True,
    ) -> None:
        self.name = name  # None: the top level ("unknown keyword 'x'" without a block name)
        slots = set(getattr(state, "__slots__", ())) if state is not None else set()
        self.keywords = {
            k: (replace(kw, at=kw.field + "_at") if kw.field + "_at" in slots and not kw.at else kw)
            for k, kw in keywords.items()
        }
        self.unsupported = dict(unsupported or {})
        self.unknown_no_block = unknown_no_block
        # keepalived skips a statement it does not know (and its block) and starts the file: so does
        # fastvrrp, with a warning. Blocks that are fastvrrp's own (vrrp_check) refuse them instead.
        self.unknown_ignored = unknown_ignored


def walk(r: Reporter, n: Node, schema: Schema, st: Any) -> bool:
    """Read the block of `n` against `schema` into `st`; False if a statement was unknown (or no block)."""
    kids = n.children
    if kids is None:
        r.want_block(n)
        return True
    return read_statements(r, kids, schema, st)


def read_statements(r: Reporter, statements: Iterable[Node], schema: Schema, st: Any) -> bool:
    """Each statement to its keyword's handler; unknown ones reported. False if one was unknown."""
    keywords = schema.keywords
    known = True
    for k in statements:
        kw = keywords.get(k.kw)
        if kw is not None:
            if k.children is not None and kw.block is False:
                r.no_block(k)
            kw.handle(r, k, st, kw)
            continue
        if schema.unknown_no_block:
            r.no_block(k)
        feature = schema.unsupported.get(k.kw)
        if feature is not None:
            r.unsupported(k, feature)
        elif schema.unknown_ignored:
            where = f" in {schema.name}" if schema.name else ""
            r.adjust(k, f"unknown keyword '{k.kw}'{where}: ignored (keepalived skips it too)")
        else:
            known = False
            r.err(k, f"unknown keyword '{k.kw}'" + (f" in {schema.name}" if schema.name else ""))
    return known


def entries(r: Reporter, n: Node) -> list[Node] | tuple[()]:
    """The statements of a block whose entries are values, not keywords (addresses, routes, names)."""
    kids = n.children
    if kids is None:
        r.want_block(n)
        return ()
    return kids


# --- the generic handler and its value readers
def store(r: Reporter, n: Node, st: Any, kw: Kw) -> None:
    """Set `kw.field` to the value read, if it is valid (a problem is reported otherwise)."""
    assert kw.read is not None
    v = kw.read(r, n, kw)
    if v is not None:
        setattr(st, kw.field, v)
        if kw.at:
            setattr(st, kw.at, n)


def store_int(r: Reporter, n: Node, st: Any, kw: Kw) -> None:
    """`store` for integers, with a shortcut for the usual well-formed statement."""
    a = n.args
    if len(a) == 1:
        v = SMALL_INTS.get(a[0])
        if v is not None and kw.lo <= v <= kw.hi:
            setattr(st, kw.field, v)
            if kw.at:
                setattr(st, kw.at, n)
            return
    store(r, n, st, kw)


def read_int(r: Reporter, n: Node, kw: Kw) -> int | None:
    return r.int_in(n, n.args[0], kw.lo, kw.hi, kw.what) if r.nargs(n, 1) else None


def read_secs(r: Reporter, n: Node, kw: Kw) -> int | None:
    return r.secs_in(n, n.args[0], kw.lo, kw.hi, kw.what) if r.nargs(n, 1) else None


def read_flag(r: Reporter, n: Node, kw: Kw) -> Any:
    return kw.value if r.nargs(n, 0) else None


def read_bool(r: Reporter, n: Node, kw: Kw) -> bool | None:
    return r.boolean(n)


def read_ip(r: Reporter, n: Node, kw: Kw) -> Any:
    return r.ip(n, n.args[0], kw.what or "address") if r.nargs(n, 1) else None


def read_word(r: Reporter, n: Node, kw: Kw) -> str | None:
    return n.args[0] if len(n.args) == 1 or r.nargs(n, 1) else None


def read_words(r: Reporter, n: Node, kw: Kw) -> tuple[str, ...] | None:
    return tuple(n.args) if r.nargs(n, 1, -1) else None


def read_joined(r: Reporter, n: Node, kw: Kw) -> str | None:
    return " ".join(n.args) if r.nargs(n, 1, -1) else None


def read_optwords(r: Reporter, n: Node, kw: Kw) -> tuple[str, ...]:
    return tuple(n.args)


def read_present(r: Reporter, n: Node, kw: Kw) -> Any:
    return kw.value


def read_script(r: Reporter, n: Node, kw: Kw) -> Any:
    return r.script(n)


def read_words_block(r: Reporter, n: Node, kw: Kw) -> tuple[str, ...]:
    return r.words_block(n)


def int_kw(field: str, lo: int, hi: int, what: str | None = None) -> Kw:
    return Kw(store_int, field, lo, hi, what=what, read=read_int)


def secs_kw(field: str, lo: float, hi: float, what: str | None = None) -> Kw:
    return Kw(store, field, lo, hi, what=what, read=read_secs)


def flag_kw(field: str, value: Any = True) -> Kw:
    return Kw(store, field, value=value, read=read_flag)


def present_kw(field: str, value: Any = True) -> Kw:
    """Like a flag, but words after it are not looked at."""
    return Kw(store, field, value=value, read=read_present)


def bool_kw(field: str) -> Kw:
    return Kw(store, field, read=read_bool)


def ip_kw(field: str, what: str = "address") -> Kw:
    return Kw(store, field, what=what, read=read_ip)


def word_kw(field: str) -> Kw:
    return Kw(store, field, read=read_word)


def words_kw(field: str) -> Kw:
    return Kw(store, field, read=read_words)


def joined_kw(field: str) -> Kw:
    return Kw(store, field, read=read_joined)


def script_kw(field: str) -> Kw:
    return Kw(store, field, read=read_script)


def words_block_kw(field: str) -> Kw:
    return Kw(store, field, block=True, read=read_words_block)


def special(
    handle: Handler, field: str = "", lo: Any = None, hi: Any = None, block: bool | None = False
) -> Kw:
    """A keyword read by a handler of its own."""
    return Kw(handle, field, lo, hi, block=block)


def more_lines(r: Reporter, n: Node, st: Any, kw: Kw) -> None:
    """A block of value lines (addresses, routes, rules), each read by `kw.entry`; the good ones are added
    to what earlier blocks of the same keyword gave."""
    assert kw.entry is not None
    out = list(getattr(st, kw.field) or ())
    for k in entries(r, n):
        x = kw.entry(r, k)
        if x is not None:
            out.append(x)
    setattr(st, kw.field, tuple(out))


def lines_kw(field: str, entry: Callable[[Any, Node], Any]) -> Kw:
    return Kw(more_lines, field, block=True, entry=entry)


def checked_only(r: Reporter, n: Node, st: Any, kw: Kw) -> None:
    """A keyword whose value is checked and not kept (keepalived's default, or not modelled)."""
    if kw.read is not None:
        kw.read(r, n, kw)


def ignored(r: Reporter, n: Node, st: Any, kw: Kw) -> None:
    """A keyword accepted as it is, without any check (keepalived ignores it too)."""
