"""From the statement tree to `Config`: keyword handlers, typed values, defaults and cross-checks.

Every problem is collected (never only the first) as Problem(file, line, message), located at the
statement the message is about. Where keepalived merely warns about something that cannot work as
written (it then "ignores" or "resets" a value), we report an error: a config must mean what it says.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections.abc import Callable, Iterable
from types import MappingProxyType
from typing import Any

from fastvrrp.health.spec import CheckSpec

from . import _fast
from .check_block import read_vrrp_check
from .lexer import Node
from .model import (
    Config,
    GarpGroup,
    GlobalDefs,
    InstanceConfig,
    Problem,
    Route,
    Rule,
    Script,
    SyncGroupConfig,
    TrackFile,
    TrackProcess,
    TrackRef,
    UnicastPeer,
    VirtualAddress,
    VrrpScript,
)
from .schema import GLOBAL_KEYWORDS, GLOBAL_UNSUPPORTED, INSTANCE_UNSUPPORTED, TOP_UNSUPPORTED

_TRUE = frozenset({"on", "true", "yes"})
_FALSE = frozenset({"off", "false", "no"})
_SCOPES = frozenset({"site", "link", "host", "nowhere", "global"})
_ADDR_FLAGS = frozenset({"home", "-nodad", "mngtmpaddr", "noprefixroute", "autojoin"})

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

_ip_cache: dict[str, Any] = {}
_new_ipv4 = ipaddress.IPv4Address.__new__
_OCTETS = {str(i): i for i in range(256)}  # the canonical spelling of each octet
# Canonical spellings of small integers (no sign on 0, no leading zeros): what int(text, 10) turns into
# that number, looked up directly on the common paths (weights, prefix lengths).
_SMALL_INTS = {str(i): i for i in range(-256, 257)}


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
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


def _maker(cls) -> tuple[list[Any], dict[str, int], Callable[..., Any]]:
    """(default values in field order, field name -> index, positional constructor) for `cls`: a frozen
    dataclass called with keywords spends most of its time matching them and storing through
    object.__setattr__, and large configs make tens of thousands of these (see _fast)."""
    fs = dataclasses.fields(cls)
    defaults = [f.default for f in fs]
    return defaults, {f.name: i for i, f in enumerate(fs)}, _fast.maker(cls)


def _build(
    spec: tuple[list[Any], dict[str, int], Callable[..., Any]], values: dict[str, Any], *first: Any
) -> Any:
    """cls(*first, **{k: v for k, v in values.items() if v is not None}) for field-name keys, positionally."""
    vals = spec[0].copy()
    if len(first) == 1:
        vals[0] = first[0]
    else:
        vals[: len(first)] = first
    index = spec[1]
    for k, v in values.items():
        if v is not None:
            vals[index[k]] = v
    return spec[2](*vals)


_TRACK_FILE = _maker(TrackFile)
_TRACK_PROCESS = _maker(TrackProcess)
_VRRP_SCRIPT = _maker(VrrpScript)
_INSTANCE = _maker(InstanceConfig)
_I = _INSTANCE[1]
_make_instance = _INSTANCE[2]
_make_track_ref = _fast.maker(TrackRef)
_make_vaddr = _fast.maker(VirtualAddress)


# Positions of the InstanceConfig fields _finish_instance resolves itself.
(
    _F_FAMILY,
    _F_VERSION,
    _F_PRIORITY,
    _F_STATE,
    _F_PREEMPT,
    _F_ADVERT_INT_MS,
    _F_ACCEPT,
    _F_STRICT_MODE,
    _F_GARP_LOWER_PRIO_DELAY_MS,
    _F_GARP_LOWER_PRIO_REPEAT,
    _F_LOWER_PRIO_NO_ADVERT,
    _F_CHECK_UNICAST_SRC,
) = (
    _I[k]
    for k in (
        "family version priority state preempt advert_int_ms accept strict_mode garp_lower_prio_delay_ms "
        "garp_lower_prio_repeat lower_prio_no_advert check_unicast_src"
    ).split()
)


def _instance_base(gd: GlobalDefs) -> list[Any]:
    """The InstanceConfig field values of an instance that sets none of its own: the dataclass defaults, and
    for the fields global_defs provides defaults for, those (an instance's own values replace them)."""
    f = _INSTANCE[0].copy()
    f[_I["garp_master_delay_ms"]] = gd.vrrp_garp_master_delay_ms
    f[_I["garp_master_repeat"]] = gd.vrrp_garp_master_repeat
    lower_delay = gd.vrrp_garp_lower_prio_delay_ms
    f[_F_GARP_LOWER_PRIO_DELAY_MS] = gd.vrrp_garp_master_delay_ms if lower_delay is None else lower_delay
    lower_repeat = gd.vrrp_garp_lower_prio_repeat
    f[_F_GARP_LOWER_PRIO_REPEAT] = gd.vrrp_garp_master_repeat if lower_repeat is None else lower_repeat
    f[_I["garp_master_refresh_ms"]] = gd.vrrp_garp_master_refresh_ms
    f[_I["garp_master_refresh_repeat"]] = gd.vrrp_garp_master_refresh_repeat
    f[_I["down_timer_adverts"]] = gd.vrrp_down_timer_adverts
    f[_I["higher_prio_send_advert"]] = gd.vrrp_higher_prio_send_advert
    f[_I["skip_check_adv_addr"]] = gd.vrrp_skip_check_adv_addr
    f[_F_CHECK_UNICAST_SRC] = gd.vrrp_check_unicast_src
    return f


def _secs_to_ms(x: float) -> int:
    return int(math.floor(x * 1000 + 0.5))


class Reader:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._unsupported: dict[str, list] = {}  # feature -> [first Problem, count]
        self.g: dict[str, Any] = {}
        self.g_other: dict[str, Any] = {}
        self.g_where: dict[str, Node] = {}
        self.instances: list[tuple[dict[str, Any], Node]] = []
        self.scripts: dict[str, VrrpScript] = {}
        self.checks: dict[str, tuple[CheckSpec, Node]] = {}  # vrrp_check: (check, its block)
        self._script_like: dict[str, Any] = {}  # what track_script may name: vrrp_scripts and vrrp_checks
        self.track_files: dict[str, TrackFile] = {}
        self.track_processes: dict[str, TrackProcess] = {}
        self.sync_groups: dict[str, tuple[SyncGroupConfig, Node]] = {}
        self.garp_groups: list[GarpGroup] = []
        self.static_ipaddress: list[VirtualAddress] = []
        self.static_routes: list[Route] = []
        self.static_rules: list[Rule] = []
        self.track_groups: dict[str, tuple[str, ...]] = {}
        self.linkbeat: list[str] = []
        self.updown: dict[str, tuple[int, int]] = {}
        self._static_tg: list[tuple[str, Node]] = []  # (track_group named, the static_ipaddress line)
        self._inst_handlers = self._instance_handlers()

    def close(self) -> None:
        """Drop the keyword handlers: closures over this reader, a reference cycle that would keep every
        statement read alive until the cyclic collector runs."""
        self._inst_handlers = {}

    # --- reporting ---------------------------------------------------------------------------------------
    def err(self, node: Node, msg: str) -> None:
        self.problems.append(Problem(node.file, node.line, msg))

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

    # --- typed values -------------------------------------------------------------------------------------
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
        return _secs_to_ms(v)

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
            return _ip(text)
        except ValueError:
            self.err(n, f"invalid {what} '{text}'")
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

    # --- top level ----------------------------------------------------------------------------------------
    def read(self, tree: Iterable[Node]) -> None:
        top: dict[str, Callable[[Node], None]] = {
            "global_defs": self.global_defs,
            "vrrp_instance": self.vrrp_instance,
            "vrrp_script": self.vrrp_script,
            "vrrp_check": lambda n: read_vrrp_check(self, n, self.checks),
            "vrrp_sync_group": self.sync_group,
            "vrrp_group": self.sync_group,
            "track_file": self.track_file,
            "vrrp_track_file": self.track_file,
            "vrrp_track_process": self.track_process,
            "garp_group": self.garp_group,
            "static_ipaddress": self.static_ipaddress_block,
            "static_routes": self.static_routes_block,
            "static_rules": self.static_rules_block,
            "track_group": self.track_group,
            "linkbeat_interfaces": self.linkbeat_block,
            "interface_up_down_delays": self.updown_block,
        }
        for n in tree:
            h = top.get(n.kw)
            if h is not None:
                h(n)
            elif n.kw in TOP_UNSUPPORTED:
                self.unsupported(n, TOP_UNSUPPORTED[n.kw])
            elif n.kw in GLOBAL_KEYWORDS and n.kw in (
                "net_namespace",
                "namespace_with_ipsets",
                "instance",
                "use_pid_dir",
                "linkbeat_use_polling",
                "child_wait_time",
            ):
                self.global_keyword(n)  # keepalived also allows these outside global_defs
            elif n.kw == "net_namespace_ipvs":
                self.unsupported(n, "LVS/IPVS")
            else:
                self.err(n, f"unknown keyword '{n.kw}'")

    # --- global_defs --------------------------------------------------------------------------------------
    def global_defs(self, n: Node) -> None:
        if n.args:
            self.err(n, "'global_defs' takes no name")
        for k in self.want_block(n) or ():
            if k.kw in GLOBAL_KEYWORDS:
                self.global_keyword(k)
            elif k.kw in GLOBAL_UNSUPPORTED:
                self.unsupported(k, GLOBAL_UNSUPPORTED[k.kw])
            else:
                self.err(k, f"unknown keyword '{k.kw}' in global_defs")

    def global_keyword(self, n: Node) -> None:
        spec = GLOBAL_KEYWORDS[n.kw]
        kind = spec[0]
        v: Any = None
        if kind == "block":
            v = self.words_block(n)
        else:
            self.no_block(n)
            if kind == "flag":
                if self.nargs(n, 0):
                    v = True
            elif kind == "bool":
                v = self.boolean(n)
            elif kind == "int":
                if self.nargs(n, 1):
                    v = self.int_in(n, n.args[0], spec[1], spec[2])
            elif kind == "secs":
                if self.nargs(n, 1):
                    v = self.secs_in(n, n.args[0], spec[1], spec[2])
            elif kind == "str":
                if self.nargs(n, 1):
                    v = n.args[0]
            elif kind == "ip":
                if self.nargs(n, 1):
                    v = self.ip(n, n.args[0])
            elif kind == "words":
                if self.nargs(n, 1, -1):
                    v = tuple(n.args)
            elif kind == "optwords":
                v = tuple(n.args)
            elif kind == "script":
                v = self.script(n)
        if v is None:
            return
        if n.kw == "script_user":
            if len(v) > 2:
                self.err(n, "'script_user' expects a user and optionally a group")
                return
            self.g["script_user"] = v[0]
            self.g["script_group"] = v[1] if len(v) > 1 else None
        elif n.kw == "dynamic_interfaces":
            self.g["dynamic_interfaces"] = True
        elif n.kw == "vrrp_mcast_group4" and v.version != 4 or n.kw == "vrrp_mcast_group6" and v.version != 6:
            self.err(n, f"'{n.kw}' needs an IPv{n.kw[-1]} multicast address, got {v}")
        elif n.kw in GLOBAL_FIELDS:
            self.g[GLOBAL_FIELDS[n.kw]] = v
        else:
            self.g_other[n.kw] = v
        self.g_where[n.kw] = n

    # --- vrrp_script / track_file / vrrp_track_process ------------------------------------------------------
    def _named(self, n: Node, what: str, seen: dict) -> str | None:
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

    def _weight(self, n: Node, args: list[str], lo: int, hi: int) -> tuple[int | None, bool]:
        """`weight N [reverse|noreverse|no_reverse]` at the start of args."""
        if not args:
            self.err(n, "'weight' needs a value")
            return None, False
        if len(args) == 1:
            w = _SMALL_INTS.get(args[0])
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

    def vrrp_script(self, n: Node) -> None:
        name = self._named(n, "vrrp_script", self.scripts)
        f: dict[str, Any] = {}
        for k in self.want_block(n) or ():
            kw, a = k.kw, k.args
            self.no_block(k)
            if kw == "script":
                if self.nargs(k, 1, -1):
                    f["script"] = " ".join(a)
            elif kw == "interval":
                if self.nargs(k, 1):
                    f["interval_ms"] = self.secs_in(k, a[0], 0.001, 86400)
            elif kw == "timeout":
                if self.nargs(k, 1):
                    f["timeout_ms"] = self.secs_in(k, a[0], 0.001, 86400)
            elif kw == "weight":
                f["weight"], f["reverse"] = self._weight(k, a, -253, 253)
            elif kw in ("rise", "fall"):
                if self.nargs(k, 1):
                    f[kw] = self.int_in(k, a[0], 1, 2**31 - 1)
            elif kw == "user":
                if self.nargs(k, 1, 2):
                    f["user"], f["group"] = a[0], (a[1] if len(a) > 1 else None)
            elif kw == "init_fail":
                if self.nargs(k, 0):
                    f["init_fail"] = True
            else:
                self.err(k, f"unknown keyword '{kw}' in vrrp_script")
        if "script" not in f:
            self.err(n, f"vrrp_script '{name}' has no 'script'")
            return
        if name is not None:
            self.scripts[name] = _build(_VRRP_SCRIPT, f, name)

    def track_file(self, n: Node) -> None:
        name = self._named(n, "track_file", self.track_files)
        f: dict[str, Any] = {}
        kids = n.children
        for k in (self.want_block(n) or ()) if kids is None else kids:
            kw, a = k.kw, k.args
            if k.children is not None:
                self.no_block(k)
            if kw == "file":
                if len(a) == 1 or self.nargs(k, 1):
                    f["file"] = a[0]
            elif kw == "weight":
                f["weight"], f["reverse"] = self._weight(k, a, -254, 254)
            elif kw == "init_file":
                f["init_file"] = True
                for x in a:
                    if x == "overwrite":
                        f["init_overwrite"] = True
                    else:
                        f["init_value"] = self.int_in(k, x, -(2**31), 2**31 - 1, "init_file value")
            else:
                self.err(k, f"unknown keyword '{kw}' in track_file")
        if "file" not in f:
            self.err(n, f"track_file '{name}' has no 'file'")
            return
        if name is not None:
            self.track_files[name] = _build(_TRACK_FILE, f, name)

    def track_process(self, n: Node) -> None:
        name = self._named(n, "vrrp_track_process", self.track_processes)
        f: dict[str, Any] = {}
        for k in self.want_block(n) or ():
            kw, a = k.kw, k.args
            self.no_block(k)
            if kw == "process":
                if self.nargs(k, 1, -1):
                    f["process"] = tuple(a)
            elif kw == "param_match":
                if self.nargs(k, 1):
                    if a[0] in ("initial", "partial"):
                        f["param_match"] = a[0]
                    else:
                        self.err(k, f"param_match '{a[0]}' is not initial or partial")
            elif kw == "weight":
                f["weight"], f["reverse"] = self._weight(k, a, -254, 254)
            elif kw in ("quorum", "quorum_max"):
                if self.nargs(k, 1):
                    f[kw] = self.int_in(k, a[0], 0, 65535)
            elif kw in ("fork_delay", "terminate_delay", "delay"):
                if self.nargs(k, 1):
                    ms = self.secs_in(k, a[0], 0, 3600)
                    if kw in ("fork_delay", "delay"):
                        f["fork_delay_ms"] = ms
                    if kw in ("terminate_delay", "delay"):
                        f["terminate_delay_ms"] = ms
            elif kw == "full_command":
                f["full_command"] = True
            else:
                self.err(k, f"unknown keyword '{kw}' in vrrp_track_process")
        if "process" not in f:
            self.err(n, f"vrrp_track_process '{name}' has no 'process'")
            return
        q, qm = f.get("quorum", 1), f.get("quorum_max")
        if q is not None and qm is not None and qm < q:
            self.err(n, f"vrrp_track_process '{name}': quorum_max {qm} is below quorum {q}")
        if name is not None:
            self.track_processes[name] = _build(_TRACK_PROCESS, f, name)

    # --- tracking references (shared by instances and sync groups) ------------------------------------------
    def track_refs(self, n: Node, lo: int, hi: int) -> tuple[TrackRef, ...]:
        out = []
        for k in self.want_block(n) or ():
            self.no_block(k)
            w, rev = None, False
            if k.args:
                if k.args[0] != "weight":
                    self.err(k, f"unexpected '{k.args[0]}' after '{k.kw}' (expected weight)")
                    continue
                w, rev = self._weight(k, k.args[1:], lo, hi)
            out.append(TrackRef(k.kw, w, rev))
            self._ref_where[(n.kw, k.kw, len(out))] = k
        return tuple(out)

    _ref_where: dict

    # --- sync groups ----------------------------------------------------------------------------------------
    def sync_group(self, n: Node) -> None:
        name = self._named(n, "vrrp_sync_group", self.sync_groups)
        f: dict[str, Any] = {}
        self._ref_where = {}
        for k in self.want_block(n) or ():
            kw = k.kw
            if kw == "group":
                f["group"] = self.words_block(k)
            elif kw in ("track_interface", "track_script", "track_file", "track_process"):
                f[kw] = self.track_refs(
                    k,
                    -253 if kw in ("track_interface", "track_script") else -254,
                    253 if kw in ("track_interface", "track_script") else 254,
                )
            elif kw in ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify"):
                self.no_block(k)
                f[kw] = self.script(k)
            elif kw == "notify_priority_changes":
                f[kw] = self.boolean(k)
            elif kw == "sync_group_tracking_weight":
                f[kw] = True
            elif kw == "global_tracking":
                pass  # deprecated by keepalived, no effect
            elif kw in ("smtp_alert", "track_bfd"):
                self.unsupported(k, "SMTP alerts" if kw == "smtp_alert" else "BFD")
            else:
                self.err(k, f"unknown keyword '{kw}' in vrrp_sync_group")
        if not f.get("group"):
            self.err(n, f"vrrp_sync_group '{name}' has no 'group' members")
            return
        if name is not None:
            self.sync_groups[name] = (
                SyncGroupConfig(name, **{k: v for k, v in f.items() if v is not None}),
                n,
            )
            self._sg_refs = getattr(self, "_sg_refs", {})
            self._sg_refs[name] = self._ref_where

    # --- garp_group, static_*, track_group, linkbeat, up/down delays ----------------------------------------
    def garp_group(self, n: Node) -> None:
        f: dict[str, Any] = {}
        ifs: list[str] = []
        for k in self.want_block(n) or ():
            if k.kw in ("garp_interval", "gna_interval"):
                if self.nargs(k, 1):
                    f[k.kw + "_ms"] = self.secs_in(k, k.args[0], 0, 1)
            elif k.kw == "interface":
                if self.nargs(k, 1):
                    ifs.append(k.args[0])
            elif k.kw == "interfaces":
                ifs.extend(self.words_block(k))
            else:
                self.err(k, f"unknown keyword '{k.kw}' in garp_group")
        if not ifs:
            self.err(n, "garp_group has no interface")
        self.garp_groups.append(GarpGroup(interfaces=tuple(ifs), **f))

    def static_ipaddress_block(self, n: Node) -> None:
        for k in self.want_block(n) or ():
            a = self.vaddr(k, static=True)
            if a is not None:
                self.static_ipaddress.append(a)
                if a.track_group:
                    self._static_tg.append((a.track_group, k))

    def static_routes_block(self, n: Node) -> None:
        for k in self.want_block(n) or ():
            r = self.route(k)
            if r is not None:
                self.static_routes.append(r)

    def static_rules_block(self, n: Node) -> None:
        for k in self.want_block(n) or ():
            r = self.rule(k)
            if r is not None:
                self.static_rules.append(r)

    def track_group(self, n: Node) -> None:
        name = self._named(n, "track_group", self.track_groups)
        members: tuple[str, ...] = ()
        for k in self.want_block(n) or ():
            if k.kw == "group":
                members = self.words_block(k)
            else:
                self.err(k, f"unknown keyword '{k.kw}' in track_group")
        if name is not None:
            self.track_groups[name] = members
            self._tg_where = getattr(self, "_tg_where", {})
            self._tg_where[name] = n

    def linkbeat_block(self, n: Node) -> None:
        for k in self.want_block(n) or ():
            if len(k.args) > 1 or (k.args and k.args[0].upper() not in ("MII", "ETHTOOL", "IOCTL")):
                self.err(k, "linkbeat_interfaces entries are: IFNAME [MII|ETHTOOL|IOCTL]")
            self.linkbeat.append(k.kw)

    def updown_block(self, n: Node) -> None:
        for k in self.want_block(n) or ():
            if not self.nargs(k, 1, 2):
                continue
            down = self.secs_in(k, k.args[0], 0, 255, "down delay")
            up = self.secs_in(k, k.args[1], 0, 255, "up delay") if len(k.args) > 1 else down
            if down is not None and up is not None:
                self.updown[k.kw] = (down, up)

    # --- addresses, routes, rules ---------------------------------------------------------------------------
    def vaddr(self, n: Node, static: bool = False) -> VirtualAddress | None:
        """`ADDR[/PREFIX] [brd X] [dev IF] [scope S] [label L] [peer P] [flags...]`."""
        if n.children is not None:
            self.no_block(n)
        text = n.kw
        addr_s, slash, plen_s = text.partition("/")
        addr = _ip_cache.get(addr_s)
        if addr is None:
            addr = self.ip(n, addr_s, "virtual address")
            if addr is None:
                return None
        maxlen = 32 if addr.version == 4 else 128
        plen = maxlen
        if slash:
            plen_v = _SMALL_INTS.get(plen_s)
            if plen_v is None or not 0 <= plen_v <= maxlen:
                plen_v = self.int_in(n, plen_s, 0, maxlen, f"prefix length of {text}")
                if plen_v is None:
                    return None
            plen = plen_v
        a = n.args
        if not a:
            return _make_vaddr(addr, plen, None, None, None, None, None, False, False, None, None, ())
        f: dict[str, Any] = {}
        flags: list[str] = []
        i = 0
        while i < len(a):
            w = a[i]
            if w in ("brd", "broadcast", "dev", "scope", "label", "peer", "track_group", "preferred_lft"):
                if i + 1 >= len(a):
                    self.err(n, f"'{w}' needs a value")
                    return None
                v = a[i + 1]
                i += 2
                if w in ("brd", "broadcast"):
                    if v not in ("-", "+"):
                        b = self.ip(n, v, "broadcast address")
                        if b is None:
                            return None
                        if b.version != addr.version or addr.version == 6:
                            self.err(n, f"broadcast address {v} does not fit {text}")
                            return None
                    f["brd"] = v
                elif w == "scope":
                    if v not in _SCOPES and not v.isdigit():
                        self.err(n, f"unknown scope '{v}' (site, link, host, nowhere, global)")
                        return None
                    f["scope"] = v
                elif w == "peer":
                    p = self.ip(n, v, "peer address")
                    if p is None:
                        return None
                    f["peer"] = p
                elif w == "track_group":
                    if not static:
                        self.err(n, "'track_group' only applies to static addresses")
                        return None
                    f["track_group"] = v
                elif w == "preferred_lft":
                    if v != "forever" and not v.isdigit():
                        self.err(n, f"preferred_lft '{v}' is not a number of seconds or 'forever'")
                        return None
                    f["preferred_lft"] = v
                else:
                    f[w] = v
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
                self.err(n, f"unknown option '{w}' for address {text}")
                return None
        return VirtualAddress(addr, plen, flags=tuple(flags), **f)

    def _net(self, n: Node, text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            self.err(n, f"invalid network '{text}'")
            return None

    def route(self, n: Node) -> Route | None:
        """Checks the destination and any gateway/source addresses; keeps the words."""
        self.no_block(n)
        words = [n.kw, *n.args]
        dest = None
        family = 0
        no_track = "no_track" in words
        if "inet6" in words:
            family = 6
        i = 0
        types = (
            "blackhole",
            "unreachable",
            "prohibit",
            "throw",
            "local",
            "broadcast",
            "anycast",
            "multicast",
            "unicast",
            "nat",
        )
        while i < len(words):
            w = words[i]
            if w in ("src", "via", "gw", "or", "to") and i + 1 < len(words):
                if w != "to":
                    a = self.ip(n, words[i + 1], f"{w} address")
                    if a is None:
                        return None
                    if family and a.version != family:
                        self.err(n, f"route mixes IPv4 and IPv6 ({words[i + 1]})")
                        return None
                    family = family or a.version
                    i += 2
                    continue
                i += 1
                continue
            if dest is None and (w in types or w == "default" or "/" in w or _looks_ip(w)):
                if w in types:
                    i += 1
                    continue
                if w == "default":
                    dest = ipaddress.ip_network("::/0" if family == 6 else "0.0.0.0/0")
                else:
                    dest = self._net(n, w)
                    if dest is None:
                        return None
                if family and dest.version != family:
                    self.err(n, f"route mixes IPv4 and IPv6 ({w})")
                    return None
                family = dest.version
            i += 1
        if dest is None:
            self.err(n, f"route has no destination: '{' '.join(words)}'")
            return None
        return Route(tuple(words), dest, family or 4, no_track)

    def rule(self, n: Node) -> Rule | None:
        self.no_block(n)
        words = [n.kw, *n.args]
        family = 6 if "inet6" in words else 0
        for i, w in enumerate(words):
            if w in ("from", "to") and i + 1 < len(words) and words[i + 1] != "all":
                net = self._net(n, words[i + 1])
                if net is None:
                    return None
                if family and net.version != family:
                    self.err(n, f"rule mixes IPv4 and IPv6 ({words[i + 1]})")
                    return None
                family = net.version
        if (
            not any(w in ("table", "goto", "blackhole", "unreachable", "prohibit", "no_track") for w in words)
            and "table" not in words
        ):
            self.err(n, f"rule has no action (table, goto, blackhole ...): '{' '.join(words)}'")
            return None
        return Rule(tuple(words), family or 4, "no_track" in words)

    # --- vrrp_instance --------------------------------------------------------------------------------------
    def _instance_handlers(self) -> dict[str, Callable[[Node, dict], None]]:
        h: dict[str, Callable[[Node, dict], None]] = {}

        def simple_int(field: str, lo: int, hi: int):
            where = "_" + field

            def f(n: Node, d: dict) -> None:
                a = n.args
                if n.children is None and len(a) == 1:
                    # Fast path for the usual well-formed statement; anything else takes the checks below.
                    try:
                        v = int(a[0], 10)
                    except ValueError:
                        v = None
                    if v is not None and lo <= v <= hi:
                        d[field] = v
                        d[where] = n
                        return
                self.no_block(n)
                if self.nargs(n, 1):
                    v = self.int_in(n, n.args[0], lo, hi)
                    if v is not None:
                        d[field] = v
                        d["_" + field] = n

            return f

        def simple_secs(field: str, lo: float, hi: float):
            def f(n: Node, d: dict) -> None:
                self.no_block(n)
                if self.nargs(n, 1):
                    v = self.secs_in(n, n.args[0], lo, hi)
                    if v is not None:
                        d[field] = v
                        d["_" + field] = n

            return f

        def flag(field: str, value: Any = True):
            def f(n: Node, d: dict) -> None:
                self.no_block(n)
                if self.nargs(n, 0):
                    d[field] = value
                    d["_" + field] = n

            return f

        def opt_bool(field: str):
            def f(n: Node, d: dict) -> None:
                self.no_block(n)
                v = self.boolean(n)
                if v is not None:
                    d[field] = v
                    d["_" + field] = n

            return f

        def notify(field: str):
            def f(n: Node, d: dict) -> None:
                self.no_block(n)
                s = self.script(n)
                if s is not None:
                    d[field] = s

            return f

        def one_ip(field: str):
            def f(n: Node, d: dict) -> None:
                self.no_block(n)
                if self.nargs(n, 1):
                    v = self.ip(n, n.args[0], field.replace("_", " "))
                    if v is not None:
                        d[field] = v
                        d["_" + field] = n

            return f

        h["interface"] = self._i_interface
        h["state"] = self._i_state
        h["virtual_router_id"] = simple_int("virtual_router_id", 1, 255)
        h["priority"] = simple_int("priority", 1, 255)
        h["advert_int"] = self._i_advert_int
        h["version"] = simple_int("version", 2, 3)
        h["nopreempt"] = flag("preempt", False)
        h["no_preempt"] = h["nopreempt"]
        h["preempt"] = flag("_preempt_kw", True)
        h["preempt_delay"] = simple_secs("preempt_delay_ms", 0, 1000)
        h["authentication"] = self._i_auth
        h["mcast_src_ip"] = one_ip("mcast_src_ip")
        h["mcast_dst_ip"] = one_ip("mcast_dst_ip")
        h["unicast_src_ip"] = one_ip("unicast_src_ip")
        h["unicast_peer"] = self._i_unicast_peer
        h["unicast_ttl"] = simple_int("unicast_ttl", 0, 255)
        h["unicast_fault_no_peer"] = flag("unicast_fault_no_peer")
        h["check_unicast_src"] = flag("check_unicast_src")
        h["virtual_ipaddress"] = self._i_vips("virtual_ipaddress")
        h["virtual_ipaddress_excluded"] = self._i_vips("virtual_ipaddress_excluded")
        h["virtual_routes"] = self._i_routes
        h["virtual_rules"] = self._i_rules
        h["accept"] = flag("accept", True)
        h["no_accept"] = flag("accept", False)
        h["track_interface"] = self._i_track("track_interface", -253, 253)
        h["track_script"] = self._i_track("track_script", -253, 253)
        h["track_file"] = self._i_track("track_file", -254, 254)
        h["track_process"] = self._i_track("track_process", -254, 254)
        h["dont_track_primary"] = flag("dont_track_primary")
        h["use_vmac"] = self._i_use_vmac
        h["use_vmac_addr"] = flag("use_vmac_addr")
        h["vmac_xmit_base"] = flag("vmac_xmit_base")
        h["native_ipv6"] = flag("_native_ipv6")
        h["strict_mode"] = opt_bool("strict_mode")
        h["lower_prio_no_advert"] = opt_bool("lower_prio_no_advert")
        h["higher_prio_send_advert"] = opt_bool("higher_prio_send_advert")
        h["skip_check_adv_addr"] = opt_bool("skip_check_adv_addr")
        h["notify_priority_changes"] = opt_bool("notify_priority_changes")
        h["promote_secondaries"] = flag("promote_secondaries")
        h["old_unicast_checksum"] = self._i_old_checksum
        h["v3_checksum_as_v2"] = flag("v3_checksum_as_v2")
        h["garp_master_delay"] = simple_secs("garp_master_delay_ms", 0, 86400)
        h["garp_master_repeat"] = simple_int("garp_master_repeat", 1, 65535)
        h["garp_lower_prio_delay"] = simple_secs("garp_lower_prio_delay_ms", 0, 86400)
        h["garp_lower_prio_repeat"] = simple_int("garp_lower_prio_repeat", 1, 65535)
        h["garp_master_refresh"] = simple_secs("garp_master_refresh_ms", 0, 86400)
        h["garp_master_refresh_repeat"] = simple_int("garp_master_refresh_repeat", 1, 65535)
        h["garp_extra_if"] = self._i_garp_extra_if
        h["garp_extra_if_vmac"] = self._i_garp_extra_if
        h["down_timer_adverts"] = simple_int("down_timer_adverts", 1, 100)
        h["debug"] = simple_int("_debug", 0, 4)
        for k in (
            "notify_master",
            "notify_backup",
            "notify_fault",
            "notify_stop",
            "notify",
            "notify_master_rx_lower_pri",
        ):
            h[k] = notify(k)
        h["notify_deleted"] = self._i_notify_deleted
        return h

    def vrrp_instance(self, n: Node) -> None:
        if len(n.args) != 1:
            self.err(n, "'vrrp_instance' needs exactly one name")
            return
        d: dict[str, Any] = {"name": n.args[0], "file": n.file, "line": n.line}
        handlers = self._inst_handlers
        kids = n.children
        for k in (self.want_block(n) or ()) if kids is None else kids:
            h = handlers.get(k.kw)
            if h is not None:
                h(k, d)
            elif k.kw in INSTANCE_UNSUPPORTED:
                self.unsupported(k, INSTANCE_UNSUPPORTED[k.kw])
            else:
                self.err(k, f"unknown keyword '{k.kw}' in vrrp_instance")
        self.instances.append((d, n))

    def _i_interface(self, n: Node, d: dict) -> None:
        if n.children is not None:
            self.no_block(n)
        if len(n.args) == 1 or self.nargs(n, 1):
            if n.args[0] == "lo":
                self.err(n, "cannot use the loopback interface for VRRP")
            d["interface"] = n.args[0]

    def _i_state(self, n: Node, d: dict) -> None:
        self.no_block(n)
        if self.nargs(n, 1):
            s = n.args[0].upper()
            if s not in ("MASTER", "BACKUP"):
                self.err(n, f"unknown state '{n.args[0]}' (MASTER or BACKUP)")
            else:
                d["state"] = s
                d["_state"] = n

    def _i_advert_int(self, n: Node, d: dict) -> None:
        self.no_block(n)
        if self.nargs(n, 1):
            try:
                v = float(n.args[0])
                if not math.isfinite(v):
                    raise ValueError
            except ValueError:
                self.err(n, f"advert_int '{n.args[0]}' is not a number of seconds")
                return
            if v <= 0:
                self.err(n, f"advert_int {n.args[0]} must be greater than 0")
                return
            d["_advert_int"] = (v, n)

    def _i_auth(self, n: Node, d: dict) -> None:
        kids = self.want_block(n)
        if kids is None:
            return
        for k in kids:
            self.no_block(k)
            if k.kw == "auth_type":
                d["_auth_type_given"] = True
                if self.nargs(k, 1):
                    t = k.args[0].upper()
                    if t not in ("PASS", "AH"):
                        self.err(k, f"unknown auth_type '{k.args[0]}' (PASS or AH)")
                    else:
                        d["auth_type"] = t
            elif k.kw == "auth_pass":
                if self.nargs(k, 1):
                    if len(k.args[0].encode()) > 8:
                        # keepalived truncates silently-ish; a peer typed with the full text would never match
                        self.err(k, "auth_pass is longer than 8 characters (only 8 are sent)")
                    d["auth_pass"] = k.args[0]
            else:
                self.err(k, f"unknown keyword '{k.kw}' in authentication")
        d["_auth"] = n

    def _i_unicast_peer(self, n: Node, d: dict) -> None:
        peers = list(d.get("unicast_peers", ()))
        for k in self.want_block(n) or ():
            self.no_block(k)
            a = self.ip(k, k.kw, "unicast peer")
            if a is None:
                continue
            mn = mx = None
            i = 0
            ok = True
            while i < len(k.args):
                w = k.args[i]
                if w in ("min_ttl", "max_ttl") and i + 1 < len(k.args):
                    v = self.int_in(k, k.args[i + 1], 0, 255, w)
                    if v is None:
                        ok = False
                    elif w == "min_ttl":
                        mn = v
                    else:
                        mx = v
                    i += 2
                else:
                    self.err(k, f"unexpected '{w}' after unicast peer (min_ttl N, max_ttl N)")
                    ok = False
                    break
            if mn is not None and mx is not None and mn > mx:
                self.err(k, f"min_ttl {mn} is above max_ttl {mx}")
                ok = False
            if ok:
                peers.append(UnicastPeer(a, mn, mx))
                d.setdefault("_peer_nodes", []).append(k)
        d["unicast_peers"] = tuple(peers)
        d["_unicast_peer"] = n

    def _i_vips(self, field: str):
        where = "_" + field

        def f(n: Node, d: dict) -> None:
            prev = d.get(field)
            out = list(prev) if prev else []
            nodes = d.setdefault(where, [])
            kids = n.children
            for k in (self.want_block(n) or ()) if kids is None else kids:
                a = self.vaddr(k)
                if a is not None:
                    out.append(a)
                    nodes.append(k)
            d[field] = tuple(out)

        return f

    def _i_routes(self, n: Node, d: dict) -> None:
        out = list(d.get("virtual_routes", ()))
        for k in self.want_block(n) or ():
            r = self.route(k)
            if r is not None:
                out.append(r)
        d["virtual_routes"] = tuple(out)

    def _i_rules(self, n: Node, d: dict) -> None:
        out = list(d.get("virtual_rules", ()))
        for k in self.want_block(n) or ():
            r = self.rule(k)
            if r is not None:
                out.append(r)
        d["virtual_rules"] = tuple(out)

    def _i_track(self, field: str, lo: int, hi: int):
        where = "_" + field

        def f(n: Node, d: dict) -> None:
            refs = []
            nodes = d.setdefault(where, [])
            kids = n.children
            for k in (self.want_block(n) or ()) if kids is None else kids:
                if k.children is not None:
                    self.no_block(k)
                w, rev = None, False
                if k.args:
                    if k.args[0] != "weight":
                        self.err(k, f"unexpected '{k.args[0]}' after '{k.kw}' (expected weight)")
                        continue
                    w, rev = self._weight(k, k.args[1:], lo, hi)
                    if w is None:
                        continue
                refs.append(_make_track_ref(k.kw, w, rev))
                nodes.append(k)
            prev = d.get(field)
            d[field] = prev + tuple(refs) if prev else tuple(refs)

        return f

    def _i_use_vmac(self, n: Node, d: dict) -> None:
        if n.children is not None:
            self.no_block(n)
        d["use_vmac"] = True
        for a in n.args:
            if a.count(":") in (4, 5) and all(len(x) <= 2 for x in a.split(":")):
                d["vmac_mac"] = a
            elif "vmac_name" not in d:
                d["vmac_name"] = a
            else:
                self.err(n, f"unexpected '{a}' after use_vmac (expected an interface name and/or a MAC)")

    def _i_garp_extra_if(self, n: Node, d: dict) -> None:
        """`garp_extra_if [all] SECONDS` / `garp_extra_if_vmac [all] SECONDS` (keepalived.conf(5)): periodic
        GARP/NA on the other interfaces of the instance. Checked, then noted as not implemented."""
        self.no_block(n)
        a = n.args[1:] if n.args[:1] == ["all"] else n.args
        if len(a) != 1:
            self.err(n, f"'{n.kw}' expects [all] and a delay in seconds")
            return
        if self.secs_in(n, a[0], 0, 86400, f"{n.kw} delay") is not None:
            self.unsupported(n, "periodic GARP/NA on extra interfaces")

    def _i_old_checksum(self, n: Node, d: dict) -> None:
        self.no_block(n)
        if n.args == ["never"]:
            d["v3_checksum_as_v2"] = False
        elif self.nargs(n, 0):
            d["v3_checksum_as_v2"] = True

    def _i_notify_deleted(self, n: Node, d: dict) -> None:
        self.no_block(n)
        if n.args:
            s = self.script(n)
            if s is not None:
                d["notify_deleted"] = s
        else:
            d["notify_deleted"] = Script("")

    # --- finishing: defaults, resolution and cross-checks ---------------------------------------------------
    def finish(self, files: tuple[str, ...]) -> Config:
        # track_script names a vrrp_script or a vrrp_check; one name may not be both (docs/health-checks.md).
        for cname, (_chk, cnode) in self.checks.items():
            if cname in self.scripts:
                self.err(cnode, f"vrrp_check '{cname}': a vrrp_script has the same name")
        self._script_like = {**{k: v[0] for k, v in self.checks.items()}, **self.scripts}
        g = self.g
        gd = GlobalDefs(**g, other=MappingProxyType(dict(self.g_other)))
        if gd.vrrp_min_garp:
            # keepalived.conf(5): vrrp_min_garp sends one GARP/NA and no second block (unless set explicitly)
            if "vrrp_garp_master_repeat" not in g:
                gd = _replace(gd, vrrp_garp_master_repeat=1)
            if "vrrp_garp_master_delay_ms" not in g:
                gd = _replace(gd, vrrp_garp_master_delay_ms=0)
        instances = []
        names: dict[str, Node] = {}
        fin = (_instance_base(gd), self._tracker_tables())
        for d, n in self.instances:
            inst = self._finish_instance(d, n, gd, fin)
            if inst is None:
                continue
            if inst.name in names:
                self.err(
                    n,
                    f"vrrp_instance '{inst.name}' is already defined at "
                    f"{names[inst.name].file}:{names[inst.name].line}",
                )
                continue
            names[inst.name] = n
            instances.append(inst)
        self._check_vrids(instances)
        instances = self._sync_groups(instances)
        for name, members in self.track_groups.items():
            for m in members:
                if m not in names:
                    self.err(self._tg_where[name], f"track_group '{name}': no vrrp_instance '{m}'")
        for tg, k in self._static_tg:
            if tg not in self.track_groups:
                self.err(k, f"no track_group '{tg}'")
        return Config(
            global_defs=gd,
            instances=tuple(instances),
            vrrp_scripts=MappingProxyType(dict(self.scripts)),
            vrrp_checks=MappingProxyType({k: v[0] for k, v in self.checks.items()}),
            track_files=MappingProxyType(dict(self.track_files)),
            track_processes=MappingProxyType(dict(self.track_processes)),
            sync_groups=MappingProxyType({k: v[0] for k, v in self.sync_groups.items()}),
            garp_groups=tuple(self.garp_groups),
            static_ipaddress=tuple(self.static_ipaddress),
            static_routes=tuple(self.static_routes),
            static_rules=tuple(self.static_rules),
            track_groups=MappingProxyType(dict(self.track_groups)),
            linkbeat_interfaces=tuple(self.linkbeat),
            interface_up_down_delays=MappingProxyType(dict(self.updown)),
            unsupported=self.unsupported_notes(),
            files=files,
        )

    def _tracker_tables(self) -> tuple[tuple[str, dict[str, Any], str], ...]:
        """(instance field, the definitions it may name, what they are called in messages)."""
        return (
            ("track_script", self._script_like, "vrrp_script"),
            ("track_file", self.track_files, "track_file"),
            ("track_process", self.track_processes, "vrrp_track_process"),
        )

    def _finish_instance(self, d: dict, n: Node, gd: GlobalDefs, fin: tuple) -> InstanceConfig | None:
        """One instance's defaults, resolution and checks. `fin` is what finish() computed once for all
        instances: (the InstanceConfig field values before the instance's own, the tracker tables)."""
        base, trackers = fin
        name = d["name"]
        where = f"vrrp_instance {name}"
        ok = True
        if "virtual_router_id" not in d:
            if not any(k.kw == "virtual_router_id" for k in n.children or ()):
                self.err(n, f"{where}: virtual_router_id is required")
            ok = False
        if "interface" not in d:
            if not any(k.kw == "interface" for k in n.children or ()):
                self.err(n, f"{where}: interface is required")
            ok = False
        # Address family: from the VIPs (RFC 5798 5.2.9: one family per virtual router).
        vips = d.get("virtual_ipaddress", ())
        family = 0
        if vips:
            family = vips[0].family
            if len(vips) > 1:
                for a, k in zip(vips, d["_virtual_ipaddress"], strict=True):
                    if a.family != family:
                        self.err(
                            k,
                            f"{where}: {a.address} is IPv{a.family} but the instance is IPv{family} "
                            f"(use virtual_ipaddress_excluded for the other family)",
                        )
                        ok = False
        if "unicast_src_ip" in d or "mcast_src_ip" in d:
            for fld in ("unicast_src_ip", "mcast_src_ip"):
                a = d.get(fld)
                if a is not None:
                    if family and a.version != family:
                        self.err(d["_" + fld], f"{where}: {fld} {a} is not IPv{family} like the VIPs")
                        ok = False
                    family = family or a.version
        peers = d.get("unicast_peers", ())
        if not family:
            family = 6 if d.get("_native_ipv6") else (peers[0].address.version if peers else 4)
        if peers:
            for p, k in zip(peers, d.get("_peer_nodes", ()), strict=True):
                if p.address.version != family:
                    self.err(k, f"{where}: unicast peer {p.address} is not IPv{family}")
                    ok = False
        md = d.get("mcast_dst_ip")
        if md is not None and (md.version != family or not md.is_multicast):
            self.err(
                d["_mcast_dst_ip"], f"{where}: mcast_dst_ip {md} must be an IPv{family} multicast address"
            )
            ok = False
        # Version: IPv6 is VRRPv3 only (RFC 5798 introduced IPv6).
        version = d.get("version", gd.vrrp_version)
        if family == 6:
            if d.get("version") == 2:
                self.err(d["_version"], f"{where}: VRRP version 2 does not support IPv6")
                ok = False
            version = 3
        # Priority: keepalived makes `state MASTER` without a priority the address owner (255).
        state = d.get("state", "BACKUP")
        priority = d.get("priority", 255 if state == "MASTER" else 100)
        preempt = d.get("preempt", True)
        if not preempt:
            if priority == 255:
                node = d.get("_preempt") or n
                why = "priority 255" if "priority" in d else "priority 255 (the default for state MASTER)"
                self.err(
                    node, f"{where}: nopreempt cannot work with {why}: the address owner always preempts"
                )
                ok = False
            if state == "MASTER" and priority != 255:
                self.err(d["_state"], f"{where}: nopreempt cannot work with state MASTER")
                ok = False
        # Advertisement interval: v2 whole seconds in 1..255 (RFC 3768 5.3.7); v3 centiseconds in
        # 1..4095 (RFC 5798 5.2.7).
        adv_ms = 1000
        if "_advert_int" in d:
            v, k = d["_advert_int"]
            if version == 2:
                if v != int(v) or not 1 <= v <= 255:
                    self.err(
                        k, f"{where}: advert_int {k.args[0]} is not valid for VRRPv2 (whole seconds 1-255)"
                    )
                    ok = False
                else:
                    adv_ms = int(v) * 1000
            else:
                cs = v * 100
                if abs(cs - round(cs)) > 1e-6 or not 1 <= round(cs) <= 4095:
                    self.err(
                        k,
                        f"{where}: advert_int {k.args[0]} is not valid for VRRPv3 "
                        f"(a multiple of 0.01 s from 0.01 to 40.95)",
                    )
                    ok = False
                else:
                    adv_ms = round(cs) * 10
        # Authentication exists only in VRRPv2 (RFC 3768 5.3.6 deprecates it; RFC 5798 removes it).
        strict = d.get("strict_mode", gd.vrrp_strict)
        if "_auth" in d:
            auth_type = d.get("auth_type")
            an = d["_auth"]
            if version == 3:
                self.err(an, f"{where}: VRRP version 3 does not support authentication")
                ok = False
            elif strict:
                self.err(an, f"{where}: strict mode does not allow authentication")
                ok = False
            elif auth_type is None:
                if not d.get("_auth_type_given"):
                    self.err(an, f"{where}: authentication without auth_type")
                ok = False
            elif d.get("auth_pass") is None:
                self.err(an, f"{where}: authentication without auth_pass")
                ok = False
            elif auth_type == "AH":
                self.unsupported(an, "IPsec-AH authentication")
        # vrrp_strict (keepalived.conf(5)): accept defaults to on for the address owner only (RFC 5798 6.1
        # Accept_Mode), and RFC 3768 has no accept mode at all.
        accept = d.get("accept", priority == 255 if strict else True)
        if strict:
            if version == 2 and d.get("accept") is True:
                self.err(d["_accept"], f"{where}: strict mode does not allow accept mode with VRRP version 2")
                ok = False
            if not self._strict_ok(d, n, where, vips, state, priority):
                ok = False
        if not ok:
            return None
        # The InstanceConfig fields, positionally (see _maker): the defaults with the global ones filled in
        # (`base`), what the handlers stored under field names (keys starting with "_" are bookkeeping,
        # use_vmac_addr is not modelled), then what is resolved here.
        f = base.copy()
        ix = _I
        for key, value in d.items():
            i = ix.get(key)
            if i is not None:
                f[i] = value
        f[_F_FAMILY] = family
        f[_F_VERSION] = version
        f[_F_PRIORITY] = priority
        f[_F_STATE] = state
        f[_F_PREEMPT] = preempt
        f[_F_ADVERT_INT_MS] = adv_ms
        f[_F_ACCEPT] = accept
        f[_F_STRICT_MODE] = strict
        if "garp_master_delay_ms" in d or "garp_lower_prio_delay_ms" in d:
            garp_delay = d.get("garp_master_delay_ms", gd.vrrp_garp_master_delay_ms)
            lower_delay = d.get("garp_lower_prio_delay_ms", gd.vrrp_garp_lower_prio_delay_ms)
            f[_F_GARP_LOWER_PRIO_DELAY_MS] = garp_delay if lower_delay is None else lower_delay
        if "garp_master_repeat" in d or "garp_lower_prio_repeat" in d:
            garp_repeat = d.get("garp_master_repeat", gd.vrrp_garp_master_repeat)
            lower_repeat = d.get("garp_lower_prio_repeat", gd.vrrp_garp_lower_prio_repeat)
            f[_F_GARP_LOWER_PRIO_REPEAT] = garp_repeat if lower_repeat is None else lower_repeat
        if "lower_prio_no_advert" not in d:
            f[_F_LOWER_PRIO_NO_ADVERT] = gd.vrrp_lower_prio_no_advert or strict
        if peers:
            f[_F_CHECK_UNICAST_SRC] = f[_F_CHECK_UNICAST_SRC] or any(
                p.min_ttl is not None or p.max_ttl is not None for p in peers
            )
        else:
            f[_F_CHECK_UNICAST_SRC] = f[_F_CHECK_UNICAST_SRC] or False
        # References to trackers must resolve.
        for field, table, what in trackers:
            if field not in d:
                continue
            for ref, k in zip(d[field], d.get("_" + field, ()), strict=True):
                if ref.name not in table:
                    self.err(k, f"{where}: {field} '{ref.name}' names no {what}")
                    ok = False
                elif priority == 255 and (
                    ref.weight if ref.weight is not None else getattr(table[ref.name], "weight", 0)
                ):
                    self.err(
                        k,
                        f"{where}: the address owner (priority 255) cannot track '{ref.name}' with a "
                        f"weight (use weight 0)",
                    )
                    ok = False
        if not ok:
            return None
        return _make_instance(*f)

    def _strict_ok(self, d: dict, n: Node, where: str, vips: tuple, state: str, priority: int) -> bool:
        """The rest of keepalived's vrrp_strict / strict_mode list (keepalived.conf(5)); keepalived 2.2.7
        logs most of these and resets the setting, fastvrrp refuses the configuration instead."""
        ok = True

        def bad(key: str, why: str) -> None:
            nonlocal ok
            at = d.get(key) or n
            self.err(at[0] if isinstance(at, list) else at, f"{where}: strict mode {why}")
            ok = False

        if not vips:
            bad("", "needs at least one virtual_ipaddress (RFC 5798 5.2.6)")
        elif vips[0].family == 6 and not vips[0].address.is_link_local:
            bad("_virtual_ipaddress", "needs a link-local first IPv6 VIP (RFC 5798 5.2.9)")
        if d.get("unicast_peers"):
            bad("_unicast_peer", "does not allow unicast peers (RFC 5798 5.1.1.2: multicast only)")
        if (state == "MASTER") != (priority == 255):
            # RFC 5798 6.4.1: only the address owner starts as master.
            bad("_state", "allows state MASTER if and only if priority is 255 (the address owner)")
        if d.get("preempt_delay_ms"):
            bad("_preempt_delay_ms", "does not allow preempt_delay (not in RFC 5798)")
        if d.get("lower_prio_no_advert") is False:
            bad("_lower_prio_no_advert", "does not allow clearing lower_prio_no_advert")
        if d.get("higher_prio_send_advert"):
            bad("_higher_prio_send_advert", "does not allow higher_prio_send_advert")
        if d.get("vmac_xmit_base"):
            bad("_vmac_xmit_base", "does not allow vmac_xmit_base")
        return ok

    def _check_vrids(self, instances: list[InstanceConfig]) -> None:
        """One VRID per (interface, family) (RFC 5798 5.2.3), unless unicast peer sets do not overlap."""
        seen: dict[tuple, InstanceConfig] = {}
        for inst in instances:
            key = (inst.interface, inst.family, inst.virtual_router_id, inst.mcast_dst_ip)
            other = seen.get(key)
            if other is None:
                seen[key] = inst
                continue
            if (
                inst.unicast_peers
                and other.unicast_peers
                and not ({p.address for p in inst.unicast_peers} & {p.address for p in other.unicast_peers})
            ):
                continue
            self.problems.append(
                Problem(
                    inst.file,
                    inst.line,
                    f"vrrp_instance {inst.name}: VRID {inst.virtual_router_id} is already used by {other.name} "  # noqa: E501
                    f"({other.file}:{other.line}) on {inst.interface} for IPv{inst.family}",
                )
            )

    def _sync_groups(self, instances: list[InstanceConfig]) -> list[InstanceConfig]:
        by_name = {i.name: i for i in instances}
        member_of: dict[str, str] = {}
        for gname, (sg, node) in self.sync_groups.items():
            for m in sg.group:
                if m not in by_name:
                    self.err(node, f"vrrp_sync_group {gname}: no vrrp_instance '{m}'")
                elif m in member_of:
                    self.err(
                        node,
                        f"vrrp_sync_group {gname}: vrrp_instance '{m}' is already in sync group "
                        f"{member_of[m]}",
                    )
                else:
                    member_of[m] = gname
            refs = getattr(self, "_sg_refs", {}).get(gname, {})
            for (kind, ref_name, _i), k in refs.items():
                tables: dict[str, dict[str, Any]] = {
                    "track_script": self._script_like,
                    "track_file": self.track_files,
                    "track_process": self.track_processes,
                }
                table = tables.get(kind)
                if table is not None and ref_name not in table:
                    self.err(k, f"vrrp_sync_group {gname}: {kind} '{ref_name}' is not defined")
        # keepalived zeroes tracking weights of sync group members (keepalived.conf(5)): a weight written
        # there would silently do nothing, so it is an error unless the group allows differing weights.
        for inst in instances:
            mg = member_of.get(inst.name)
            if mg is None or self.sync_groups[mg][0].sync_group_tracking_weight:
                continue
            for kind, table in (
                ("track_script", self._script_like),
                ("track_file", self.track_files),
                ("track_process", self.track_processes),
            ):
                for ref in getattr(inst, kind):
                    obj = table.get(ref.name)
                    w = ref.weight if ref.weight is not None else getattr(obj, "weight", 0)
                    if w:
                        self.problems.append(
                            Problem(
                                inst.file,
                                inst.line,
                                f"vrrp_instance {inst.name}: {kind} '{ref.name}' has weight {w} but the instance is "  # noqa: E501
                                f"in sync group {mg}, where weights are ignored (use weight 0 or "
                                f"sync_group_tracking_weight)",
                            )
                        )
        if not member_of:
            return instances
        return [_replace(i, sync_group=member_of[i.name]) if i.name in member_of else i for i in instances]


def _replace(obj, **kw):
    import dataclasses

    return dataclasses.replace(obj, **kw)


def _looks_ip(w: str) -> bool:
    try:
        ipaddress.ip_address(w)
        return True
    except ValueError:
        return False
