"""The tracker definitions instances and sync groups refer to: vrrp_script, track_file and
vrrp_track_process, each a schema, a slotted state while its block is read, and the model it becomes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from . import _fast
from .blocks import (
    Kw,
    Schema,
    int_kw,
    joined_kw,
    present_kw,
    read_flag,
    secs_kw,
    special,
    store,
    walk,
    word_kw,
    words_kw,
)
from .lexer import Node
from .model import TrackFile, TrackProcess, VrrpScript
from .values import Reporter


def set_weight(r: Reporter, n: Node, st: Any, kw: Kw) -> None:
    """`weight N [reverse|noreverse]`: both are set, a bad weight to None (the tracker's default)."""
    st.weight, st.reverse = r.weight(n, n.args, kw.lo, kw.hi)


def _defaults(cls: type) -> list[Any]:
    return [f.default for f in dataclasses.fields(cls)]


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
        "init_fail": Kw(store, "init_fail", read=read_flag),
    },
    unknown_no_block=True,
)
_VRRP_SCRIPT_DEFAULTS = _defaults(VrrpScript)
_build_vrrp_script = _fast.from_state(VrrpScript, VrrpScriptState)


def read_vrrp_script(r: Any, n: Node, st: Any, kw: Kw) -> None:
    """A top-level `vrrp_script NAME { }` into r.scripts."""
    name = r.named(n, "vrrp_script", r.scripts)
    s = VrrpScriptState(name)
    walk(r, n, VRRP_SCRIPT, s)
    if s.script is None:
        r.err(n, f"vrrp_script '{name}' has no 'script'")
        return
    if name is not None:
        r.scripts[name] = _build_vrrp_script(s, _VRRP_SCRIPT_DEFAULTS)


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
_TRACK_FILE_DEFAULTS = _defaults(TrackFile)
_build_track_file = _fast.from_state(TrackFile, TrackFileState)


def read_track_file(r: Any, n: Node, st: Any, kw: Kw) -> None:
    """A top-level `track_file NAME { }` (or vrrp_track_file) into r.track_files."""
    name = r.named(n, "track_file", r.track_files)
    s = TrackFileState(name)
    walk(r, n, TRACK_FILE, s)
    if s.file is None:
        r.err(n, f"track_file '{name}' has no 'file'")
        return
    if name is not None:
        r.track_files[name] = _build_track_file(s, _TRACK_FILE_DEFAULTS)


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
_TRACK_PROCESS_DEFAULTS = _defaults(TrackProcess)
_build_track_process = _fast.from_state(TrackProcess, TrackProcessState)


def read_track_process(r: Any, n: Node, st: Any, kw: Kw) -> None:
    """A top-level `vrrp_track_process NAME { }` into r.track_processes."""
    name = r.named(n, "vrrp_track_process", r.track_processes)
    s = TrackProcessState(name)
    walk(r, n, TRACK_PROCESS, s)
    if s.process is None:
        r.err(n, f"vrrp_track_process '{name}' has no 'process'")
        return
    q, qm = s.quorum, s.quorum_max
    if q is not None and qm is not None and qm < q:
        r.err(n, f"vrrp_track_process '{name}': quorum_max {qm} is below quorum {q}")
    if name is not None:
        r.track_processes[name] = _build_track_process(s, _TRACK_PROCESS_DEFAULTS)
