"""Building the frozen, slotted model dataclasses quickly, positionally.

A frozen dataclass's __init__ stores every field through object.__setattr__ (about 0.12 us a field), and a
InstanceConfig has sixty-odd fields: on a 65,024-instance config that alone is half a second. Here each class
gets a twin with the same __slots__ and no frozen __setattr__; a generated function fills the twin with
plain slot stores and then gives the object its real class (`__class__` assignment, which CPython allows
between classes whose instance layouts are identical). The result is an ordinary instance of the dataclass,
equal to what `cls(*values)` makes.

The shortcut is only taken for classes it is exact for: no __post_init__, every field in __init__, and a
probe object built both ways compares equal field by field. Otherwise `maker(cls)` is just `cls`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


def maker(cls: type) -> Callable[..., Any]:
    """A function f(*values) -> cls(*values) for a frozen slotted dataclass, with every value given."""
    fields = dataclasses.fields(cls)
    if (
        hasattr(cls, "__post_init__")
        or any(not f.init for f in fields)
        or tuple(getattr(cls, "__slots__", ())) != tuple(f.name for f in fields)
    ):
        return cls
    slots = cls.__slots__  # type: ignore[attr-defined]
    twin = type(f"_{cls.__name__}Twin", (object,), {"__slots__": slots})
    names = [f.name for f in fields]
    args = ", ".join(f"v{i}" for i in range(len(names)))
    body = "".join(f"    o.{name} = v{i}\n" for i, name in enumerate(names))
    src = f"def make({args}):\n    o = _new(_twin)\n{body}    o.__class__ = _cls\n    return o\n"
    ns: dict[str, Any] = {"_new": object.__new__, "_twin": twin, "_cls": cls}
    exec(src, ns)  # noqa: S102 - generated from the field names above, as dataclasses itself does
    make = ns["make"]
    probe = [object() for _ in names]
    try:
        a, b = make(*probe), cls(*probe)
    except TypeError:
        return cls
    if type(a) is not cls or any(getattr(a, n) is not getattr(b, n) for n in names):
        return cls
    return make


def from_state(cls: type, state_cls: type) -> Callable[[Any, list[Any]], Any]:
    """A function f(state, defaults) -> cls(...) taking each field of `cls` from the attribute of the same
    name on `state` when the state has one and it is not None, else from defaults[i] (the field's value
    when the block did not set it). One generated expression per field: no loop over the fields per
    object built."""
    make = maker(cls)
    have = set(getattr(state_cls, "__slots__", ()))
    exprs = []
    for i, f in enumerate(dataclasses.fields(cls)):
        if f.name in have:
            exprs.append(f"b[{i}] if (v{i} := st.{f.name}) is None else v{i}")
        else:
            exprs.append(f"b[{i}]")
    src = f"def build(st, b):\n    return _make({', '.join(exprs)})\n"
    ns: dict[str, Any] = {"_make": make}
    exec(src, ns)  # noqa: S102 - generated from the field names above, as maker() does
    return ns["build"]


def blank(cls: type, *given: str) -> Callable[..., Any]:
    """A function f(*values) -> cls(*values) for a slotted dataclass whose fields after `given` all have a
    constant default (None, a bool, a number or a string): one chained store per default value instead of
    the dataclass __init__'s one argument per field (a block state has about eighty). Checked against
    cls(...) on a probe; falls back to cls if the shortcut does not apply."""
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    if list(given) != names[: len(given)] or hasattr(cls, "__post_init__"):
        return cls
    by_default: dict[Any, list[str]] = {}
    for f in fields[len(given) :]:
        if f.default is dataclasses.MISSING or not isinstance(f.default, bool | int | str | type(None)):
            return cls
        by_default.setdefault((type(f.default), f.default), []).append(f.name)
    args = ", ".join(given)
    body = "".join(f"    o.{name} = {name}\n" for name in given)
    consts: dict[str, Any] = {}
    for i, ((_t, value), group) in enumerate(by_default.items()):
        consts[f"_d{i}"] = value
        body += "    " + " = ".join(f"o.{name}" for name in group) + f" = _d{i}\n"
    src = f"def new({args}):\n    o = _new(_cls)\n{body}    return o\n"
    ns: dict[str, Any] = {"_new": object.__new__, "_cls": cls, **consts}
    exec(src, ns)  # noqa: S102 - generated from the field names above, as maker() does
    new = ns["new"]
    probe = [object() for _ in given]
    a, b = new(*probe), cls(*probe)
    if any(getattr(a, n) is not getattr(b, n) for n in names):
        return cls
    return new
