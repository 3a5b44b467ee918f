"""The tracker definitions instances and sync groups refer to: vrrp_script, track_file and
vrrp_track_process, each a schema, a slotted state while its block is read, and the model it becomes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _fast
from .blocks import (
    Kw,
    Schema,
    flag_kw,
    int_kw,
    joined_kw,
    present_kw,
    secs_kw,
    special,
    walk,
    word_kw,
    words_kw,
)
from .lexer import Node
from .model import TrackFile, TrackProcess, VrrpScript
from .values import Reporter


class Definition:
    """A named tracker definition (`WHAT NAME { }`): its schema, the keyword it cannot do without, the model
    it becomes and the reader attribute holding them by name. `read` is its top-level handler."""

    __slots__ = ("what", "schema", "state", "required", "table", "check", "_build", "_defaults")

    def __init__(
        self,
        schema: Schema,
        state: type,
        model: type,
        required: str,
        table: str,
        check: Callable[[Any, Node, Any], None] | None = None,
    ) -> None:
        assert schema.name is not None
        self.what, self.schema, self.required, self.table, self.check = (
            schema.name,
            schema,
            required,
            table,
            check,
        )
        self._build = _fast.from_state(model, state)
        self._defaults = [f.default for f in dataclasses.fields(model)]
        self.state = state

    def read(self, r: Any, n: Node, st: Any, kw: Kw) -> None:
        table = getattr(r, self.table)
        name = r.named(n, self.what, table)
        s = self.state(name)
        walk(r, n, self.schema, s)
        if getattr(s, self.required) is None:
            if self.what == "vrrp_script":
                # keepalived 2.2.7: "No script set for vrrp_script X - removing"; a track_script naming it is
                # then not tracked (instance_rules.tracker_refs).
                r.adjust(n, f"{self.what} '{name}' has no '{self.required}': removed, as keepalived does")
            else:
                r.err(n, f"{self.what} '{name}' has no '{self.required}'")
            return
        if self.check is not None:
            self.check(r, n, s)
        if name is not None:  # (None: missing or already defined, reported by named())
            table[name] = self._build(s, self._defaults)


def set_weight(r: Reporter, n: Node, st: Any, kw: Kw) -> None:
    """`weight N [reverse|noreverse]`: both are set, a bad weight to None (the tracker's default)."""
    st.weight, st.reverse = r.weight(n, n.args, kw.lo, kw.hi)


# --- vrrp_script
@dataclass(slots=True)
class VrrpScriptState:
    name: str | None = None
    script: str | None = None
    interval_ms: int | None = None
    timeout_ms: int | None = None
    weight: int | None = None
    reverse: bool | None = None
    rise: int | None = None
    fall: int | None = None
    user: str | None = None
    group: str | None = None
    init_fail: bool | None = None


def _script_user(r: Reporter, n: Node, st: VrrpScriptState, kw: Kw) -> None:
    if r.nargs(n, 1, 2):
        st.user, st.group = n.args[0], (n.args[1] if len(n.args) > 1 else None)


VRRP_SCRIPT = Schema(
    "vrrp_script",
    VrrpScriptState,
    {
        "script": joined_kw("script"),
        "interval": secs_kw("interval_ms", 0.001, 86400),
        "timeout": secs_kw("timeout_ms", 0.001, 86400),
        "weight": special(set_weight, "weight", -253, 253),
        "rise": int_kw("rise", 1, 2**31 - 1),
        "fall": int_kw("fall", 1, 2**31 - 1),
        "user": special(_script_user),
        "init_fail": flag_kw("init_fail"),
    },
    unknown_no_block=True,
)
VRRP_SCRIPT_DEFINITION = Definition(VRRP_SCRIPT, VrrpScriptState, VrrpScript, "script", "scripts")


# --- track_file
@dataclass(slots=True)
class TrackFileState:
    name: str | None = None
    file: str | None = None
    weight: int | None = None
    reverse: bool | None = None
    init_file: bool | None = None
    init_value: int | None = None
    init_overwrite: bool | None = None


def _init_file(r: Reporter, n: Node, st: TrackFileState, kw: Kw) -> None:
    """`init_file [VALUE] [overwrite]`: create the file at start (with VALUE), even if it exists."""
    st.init_file = True
    for x in n.args:
        if x == "overwrite":
            st.init_overwrite = True
        else:
            st.init_value = r.int_in(n, x, -(2**31), 2**31 - 1, "init_file value")


TRACK_FILE = Schema(
    "track_file",
    TrackFileState,
    {
        "file": word_kw("file"),
        "weight": special(set_weight, "weight", -254, 254),
        "init_file": special(_init_file),
    },
    unknown_no_block=True,
)
TRACK_FILE_DEFINITION = Definition(TRACK_FILE, TrackFileState, TrackFile, "file", "track_files")


# --- vrrp_track_process
@dataclass(slots=True)
class TrackProcessState:
    name: str | None = None
    process: tuple[str, ...] | None = None
    param_match: str | None = None
    weight: int | None = None
    reverse: bool | None = None
    quorum: int | None = 1  # None once a bad value was written (then quorum_max is not compared with it)
    quorum_max: int | None = None
    fork_delay_ms: int | None = None
    terminate_delay_ms: int | None = None
    full_command: bool | None = None


def _param_match(r: Reporter, n: Node, st: TrackProcessState, kw: Kw) -> None:
    if r.nargs(n, 1):
        if n.args[0] in ("initial", "partial"):
            st.param_match = n.args[0]
        else:
            r.err(n, f"param_match '{n.args[0]}' is not initial or partial")


def _quorum(r: Reporter, n: Node, st: TrackProcessState, kw: Kw) -> None:
    """quorum / quorum_max: a bad value is kept as None, so that it is not compared with the other."""
    if r.nargs(n, 1):
        setattr(st, kw.field, r.int_in(n, n.args[0], 0, 65535))


def _delay(r: Reporter, n: Node, st: TrackProcessState, kw: Kw) -> None:
    """fork_delay, terminate_delay, or delay for both."""
    if r.nargs(n, 1):
        ms = r.secs_in(n, n.args[0], 0, 3600)
        if n.kw in ("fork_delay", "delay"):
            st.fork_delay_ms = ms
        if n.kw in ("terminate_delay", "delay"):
            st.terminate_delay_ms = ms


TRACK_PROCESS = Schema(
    "vrrp_track_process",
    TrackProcessState,
    {
        "process": words_kw("process"),
        "param_match": special(_param_match),
        "weight": special(set_weight, "weight", -254, 254),
        "quorum": special(_quorum, "quorum"),
        "quorum_max": special(_quorum, "quorum_max"),
        "fork_delay": special(_delay),
        "terminate_delay": special(_delay),
        "delay": special(_delay),
        "full_command": present_kw("full_command"),
    },
    unknown_no_block=True,
)


def _quorum_range(r: Any, n: Node, s: TrackProcessState) -> None:
    q, qm = s.quorum, s.quorum_max
    if q is not None and qm is not None and qm < q:
        r.err(n, f"vrrp_track_process '{s.name}': quorum_max {qm} is below quorum {q}")


TRACK_PROCESS_DEFINITION = Definition(
    TRACK_PROCESS, TrackProcessState, TrackProcess, "process", "track_processes", _quorum_range
)
