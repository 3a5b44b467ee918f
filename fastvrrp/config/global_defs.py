"""global_defs: its keyword schema (from the kind table in schema.py) and the GlobalDefs it becomes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from .blocks import (
    Kw,
    Schema,
    read_bool,
    read_flag,
    read_int,
    read_ip,
    read_optwords,
    read_script,
    read_secs,
    read_word,
    read_words,
    read_words_block,
    walk,
)
from .lexer import Node
from .model import GlobalDefs, Script
from .schema import GLOBAL_KEYWORDS, GLOBAL_UNSUPPORTED
from .values import Reporter

IPAddress = Any

# global_defs keywords stored as named GlobalDefs fields (keyword -> field); the rest go to `other`.
GLOBAL_FIELDS = {
    k: (k + "_ms" if GLOBAL_KEYWORDS[k][0] == "secs" else k)
    for k in (
        "router_id vrrp_version vrrp_mcast_group4 vrrp_mcast_group6 vrrp_garp_master_delay "
        "vrrp_garp_master_repeat vrrp_garp_lower_prio_delay vrrp_garp_lower_prio_repeat "
        "vrrp_garp_master_refresh vrrp_garp_master_refresh_repeat vrrp_garp_interval vrrp_gna_interval "
        "vrrp_min_garp vrrp_lower_prio_no_advert vrrp_higher_prio_send_advert vrrp_strict "
        "vrrp_skip_check_adv_addr vrrp_check_unicast_src vrrp_startup_delay vrrp_down_timer_adverts "
        "enable_script_security vrrp_notify_fifo vrrp_notify_fifo_script notify_fifo notify_fifo_script "
        "notification_email notification_email_from vmac_prefix"
    ).split()
}

# Global settings keepalived 2.2.7 takes at the top level, and only there.
TOP_LEVEL_GLOBALS = (
    "net_namespace",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
    "linkbeat_use_polling",
    "child_wait_time",
)


@dataclass(slots=True)
class GlobalState:
    """global_defs as written (None: not written); `other` holds the keywords GlobalDefs has no field for."""

    router_id: str | None = None
    vrrp_version: int | None = None
    vrrp_mcast_group4: IPAddress | None = None
    vrrp_mcast_group6: IPAddress | None = None
    vrrp_garp_master_delay_ms: int | None = None
    vrrp_garp_master_repeat: int | None = None
    vrrp_garp_lower_prio_delay_ms: int | None = None
    vrrp_garp_lower_prio_repeat: int | None = None
    vrrp_garp_master_refresh_ms: int | None = None
    vrrp_garp_master_refresh_repeat: int | None = None
    vrrp_garp_interval_ms: int | None = None
    vrrp_gna_interval_ms: int | None = None
    vrrp_min_garp: bool | None = None
    vrrp_lower_prio_no_advert: bool | None = None
    vrrp_higher_prio_send_advert: bool | None = None
    vrrp_strict: bool | None = None
    vrrp_skip_check_adv_addr: bool | None = None
    vrrp_check_unicast_src: bool | None = None
    vrrp_startup_delay_ms: int | None = None
    vrrp_down_timer_adverts: int | None = None
    script_user: str | None = None
    script_group: str | None = None
    enable_script_security: bool | None = None
    vrrp_notify_fifo: Script | None = None
    vrrp_notify_fifo_script: Script | None = None
    notify_fifo: Script | None = None
    notify_fifo_script: Script | None = None
    notification_email: tuple[str, ...] | None = None
    notification_email_from: str | None = None
    dynamic_interfaces: bool | None = None
    vmac_prefix: str | None = None
    other: dict[str, Any] = field(default_factory=dict)


def _store(r: Reporter, n: Node, st: GlobalState, kw: Kw) -> None:
    """The value into its GlobalDefs field, or into `other` for a keyword GlobalDefs does not model."""
    assert kw.read is not None
    v = kw.read(r, n, kw)
    if v is None:
        return
    if kw.field:
        setattr(st, kw.field, v)
    else:
        st.other[n.kw] = v


def _script_user(r: Reporter, n: Node, st: GlobalState, kw: Kw) -> None:
    v = read_words(r, n, kw)
    if v is None:
        return
    if len(v) > 2:
        r.err(n, "'script_user' expects a user and optionally a group")
        return
    st.script_user = v[0]
    st.script_group = v[1] if len(v) > 1 else None


def _dynamic_interfaces(r: Reporter, n: Node, st: GlobalState, kw: Kw) -> None:
    st.dynamic_interfaces = True


def _mcast_group(r: Reporter, n: Node, st: GlobalState, kw: Kw) -> None:
    """vrrp_mcast_group4 / vrrp_mcast_group6: an address of that family."""
    v = read_ip(r, n, kw)
    if v is None:
        return
    if v.version != int(n.kw[-1]):
        r.err(n, f"'{n.kw}' needs an IPv{n.kw[-1]} multicast address, got {v}")
        return
    setattr(st, kw.field, v)


def _int_word(w: str) -> int | None:
    try:
        return int(w)
    except ValueError:
        return None


def _process_setting(r: Reporter, n: Node, st: GlobalState, kw: Kw) -> None:
    """The process's scheduling keywords (daemon/scheduling.py) and the timeouts of the startup and shutdown
    scripts, read as keepalived 2.2.7 reads them: a value it works around is an adjustment naming the line,
    and `other` holds the value it then uses."""
    k, a = n.kw, n.args
    if k == "max_auto_priority" and not a:
        st.other[k] = 99  # the highest realtime priority
        return
    if k == "vrrp_cpu_affinity":
        online = os.sysconf("SC_NPROCESSORS_ONLN")
        cpus = [_int_word(w) for w in a]
        if not a or any(c is None or not 0 <= c < online for c in cpus):
            r.adjust(n, f"'{k}' needs CPUs 0..{online - 1} of this machine: not set, as keepalived does")
            return
        st.other[k] = tuple(sorted(set(cpus)))  # type: ignore[type-var]
        return
    v = _int_word(a[0]) if len(a) == 1 else None
    if k == "vrrp_rt_priority" and v is not None and not 1 <= v <= 99:
        r.adjust(n, f"vrrp_rt_priority {v} outside 1..99: {min(max(v, 1), 99)} is used, as keepalived does")
        v = min(max(v, 1), 99)
    lo, hi, then = {
        "startup_script_timeout": (1, 1000, "10 s"),
        "shutdown_script_timeout": (1, 1000, "10 s"),
        "vrrp_rt_priority": (1, 99, "not set"),
        "vrrp_priority": (-20, 19, "not set"),
        "vrrp_rlimit_rttime": (1, 2**32 - 1, "no realtime CPU limit"),
        "max_auto_priority": (-1, 99, "not set"),
        "min_auto_priority_delay": (1, 10_000_000, "not set"),
    }[k]
    if v is None or not lo <= v <= hi:
        r.adjust(n, f"'{k}' needs one number in [{lo}, {hi}]: {then}, as keepalived does")
        if k == "vrrp_rlimit_rttime":
            st.other[k] = 0
        return
    st.other[k] = max(v, 2) if k == "vrrp_rlimit_rttime" else max(v, 0) if k == "max_auto_priority" else v


_READERS = {
    "flag": read_flag,
    "bool": read_bool,
    "int": read_int,
    "secs": read_secs,
    "str": read_word,
    "ip": read_ip,
    "words": read_words,
    "optwords": read_optwords,
    "script": read_script,
    "block": read_words_block,
}
_SPECIAL = {
    "script_user": _script_user,
    "dynamic_interfaces": _dynamic_interfaces,
    "vrrp_mcast_group4": _mcast_group,
    "vrrp_mcast_group6": _mcast_group,
    **dict.fromkeys(
        (
            "vrrp_rt_priority",
            "vrrp_priority",
            "vrrp_rlimit_rttime",
            "vrrp_cpu_affinity",
            "max_auto_priority",
            "min_auto_priority_delay",
            "startup_script_timeout",
            "shutdown_script_timeout",
        ),
        _process_setting,
    ),
}


def _keyword(keyword: str, spec: tuple) -> Kw:
    kind = spec[0]
    return Kw(
        _SPECIAL.get(keyword, _store),
        GLOBAL_FIELDS.get(keyword, ""),
        spec[1] if len(spec) > 1 else None,
        spec[2] if len(spec) > 2 else None,
        block=kind == "block",
        read=_READERS[kind],
    )


# keepalived 2.2.7 takes these at the top level only: inside global_defs they are unknown keywords there
TOP_GLOBALS = {k: _keyword(k, GLOBAL_KEYWORDS[k]) for k in TOP_LEVEL_GLOBALS}
GLOBAL_DEFS = Schema(
    "global_defs",
    GlobalState,
    {k: _keyword(k, spec) for k, spec in GLOBAL_KEYWORDS.items() if k not in TOP_GLOBALS},
    unsupported=GLOBAL_UNSUPPORTED,
)


def read_global_defs(r: Any, n: Node, st: Any, kw: Kw) -> None:
    """A top-level `global_defs { }` into r.globals (several blocks add up)."""
    if n.args:
        r.err(n, "'global_defs' takes no name")
    walk(r, n, GLOBAL_DEFS, r.globals)


def global_at_top(r: Any, n: Node, st: Any, kw: Kw) -> None:
    """A keyword of the global settings keepalived takes at the top level (TOP_GLOBALS)."""
    g = TOP_GLOBALS[n.kw]
    g.handle(r, n, r.globals, g)


_FIELDS = tuple(f.name for f in fields(GlobalDefs) if f.name != "other")


def global_defs(st: GlobalState) -> GlobalDefs:
    """GlobalDefs from what was written; vrrp_min_garp changes two defaults."""
    given = {name: v for name in _FIELDS if (v := getattr(st, name)) is not None}
    gd = GlobalDefs(**given, other=MappingProxyType(dict(st.other)))
    if gd.vrrp_min_garp:
        # keepalived.conf(5): vrrp_min_garp sends one GARP/NA and no second block (unless set explicitly)
        if st.vrrp_garp_master_repeat is None:
            gd = replace(gd, vrrp_garp_master_repeat=1)
        if st.vrrp_garp_master_delay_ms is None:
            gd = replace(gd, vrrp_garp_master_delay_ms=0)
    return gd
