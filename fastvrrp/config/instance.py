"""vrrp_instance: its keyword schema and the slotted state a block is read into.

The state's value attributes are named after the InstanceConfig fields they become (None: not written);
`FIELD_at` attributes keep the statement that set FIELD, for the checks that run once every block is read
(see instance_rules.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from . import _fast
from .addresses import route, rule, vaddr
from .blocks import (
    Kw,
    Schema,
    bool_kw,
    checked_only,
    entries,
    flag_kw,
    int_kw,
    ip_kw,
    lines_kw,
    read_flag,
    script_kw,
    secs_kw,
    special,
    walk,
)
from .lexer import Node
from .model import InstanceConfig, Route, Rule, Script, TrackRef, UnicastPeer, VirtualAddress
from .schema import INSTANCE_UNSUPPORTED
from .values import Reporter

IPAddress = Any  # ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(slots=True)
class InstanceState:
    """One vrrp_instance block as written: typed values, the statements the later checks point at."""

    name: str
    file: str
    line: int
    node: Node
    interface: str | None = None
    virtual_router_id: int | None = None
    priority: int | None = None
    state: str | None = None
    state_at: Node | None = None
    version: int | None = None
    version_at: Node | None = None
    family: int | None = None  # resolved, never written
    advert_int: float | None = None  # seconds as written; advert_int_ms is resolved from it
    advert_int_at: Node | None = None
    advert_int_ms: int | None = None
    preempt: bool | None = None
    preempt_at: Node | None = None
    preempt_delay_ms: int | None = None
    preempt_delay_ms_at: Node | None = None
    accept: bool | None = None
    accept_at: Node | None = None
    strict_mode: bool | None = None
    auth_at: Node | None = None  # the authentication block
    auth_type_given: bool = False
    auth_type: str | None = None
    auth_pass: str | None = None
    mcast_src_ip: IPAddress | None = None
    mcast_src_ip_at: Node | None = None
    mcast_dst_ip: IPAddress | None = None
    mcast_dst_ip_at: Node | None = None
    unicast_src_ip: IPAddress | None = None
    unicast_src_ip_at: Node | None = None
    unicast_peers: tuple[UnicastPeer, ...] | None = None
    unicast_peers_at: list[Node] | None = None  # one statement per peer kept
    unicast_peer_at: Node | None = None  # the (last) unicast_peer block
    unicast_ttl: int | None = None
    unicast_fault_no_peer: bool | None = None
    check_unicast_src: bool | None = None
    virtual_ipaddress: tuple[VirtualAddress, ...] | None = None
    virtual_ipaddress_at: list[Node] | None = None  # one statement per address kept
    virtual_ipaddress_excluded: tuple[VirtualAddress, ...] | None = None
    virtual_routes: tuple[Route, ...] | None = None
    virtual_rules: tuple[Rule, ...] | None = None
    track_interface: tuple[TrackRef, ...] | None = None
    track_interface_at: list[Node] | None = None
    track_script: tuple[TrackRef, ...] | None = None
    track_script_at: list[Node] | None = None
    track_file: tuple[TrackRef, ...] | None = None
    track_file_at: list[Node] | None = None
    track_process: tuple[TrackRef, ...] | None = None
    track_process_at: list[Node] | None = None
    dont_track_primary: bool | None = None
    use_vmac: bool | None = None
    vmac_name: str | None = None
    vmac_mac: str | None = None
    vmac_xmit_base: bool | None = None
    vmac_xmit_base_at: Node | None = None
    native_ipv6: bool | None = None
    garp_master_delay_ms: int | None = None
    garp_master_repeat: int | None = None
    garp_lower_prio_delay_ms: int | None = None
    garp_lower_prio_repeat: int | None = None
    garp_master_refresh_ms: int | None = None
    garp_master_refresh_repeat: int | None = None
    down_timer_adverts: int | None = None
    advert_copies: int | None = None  # fastvrrp's own (see instance_rules.advert_copies)
    advert_copies_at: Node | None = None
    advert_copy_delay_ms: int | None = None
    advert_copy_delay_ms_at: Node | None = None
    lower_prio_no_advert: bool | None = None
    lower_prio_no_advert_at: Node | None = None
    higher_prio_send_advert: bool | None = None
    higher_prio_send_advert_at: Node | None = None
    skip_check_adv_addr: bool | None = None
    v3_checksum_as_v2: bool | None = None
    promote_secondaries: bool | None = None
    debug: int | None = None
    notify_master: Script | None = None
    notify_backup: Script | None = None
    notify_fault: Script | None = None
    notify_stop: Script | None = None
    notify_deleted: Script | None = None
    notify_master_rx_lower_pri: Script | None = None
    notify: Script | None = None
    notify_priority_changes: bool | None = None


new_instance_state = _fast.blank(InstanceState, "name", "file", "line", "node")
build_instance = _fast.from_state(InstanceConfig, InstanceState)
_make_track_ref = _fast.maker(TrackRef)


# --- keywords with rules of their own
def _interface(r: Reporter, n: Node, st: InstanceState, kw: Kw) -> None:
    if len(n.args) == 1 or r.nargs(n, 1):
        if n.args[0] == "lo":
            r.err(n, "cannot use the loopback interface for VRRP")
        st.interface = n.args[0]


def _state(r: Reporter, n: Node, st: InstanceState, kw: Kw) -> None:
    if r.nargs(n, 1):
        s = n.args[0].upper()
        if s not in ("MASTER", "BACKUP"):
            # keepalived 2.2.7: "unknown state 'FOO', defaulting to BACKUP"
            r.adjust(
                n, f"unknown state '{n.args[0]}' (MASTER or BACKUP): starting as BACKUP, as keepalived does"
            )
        else:
            st.state = s
            st.state_at = n


def _priority(r: Reporter, n: Node, st: InstanceState, kw: Kw) -> None:
    if not r.nargs(n, 1):
        return
    try:
        v: int | None = int(n.args[0], 10)
    except ValueError:
        v = None
    if v is not None and 1 <= v <= 255:
        st.priority = v
        return
    # keepalived 2.2.7: "(VI_1) Priority not valid! must be between 1 & 255. Using default 100"
    r.adjust(n, f"priority '{n.args[0]}' is not in 1-255: using 100, as keepalived does")
    st.priority = 100


def _advert_int(r: Reporter, n: Node, st: InstanceState, kw: Kw) -> None:
    """Seconds, checked against the version once it is known (instance_rules.advert_ms)."""
    if r.nargs(n, 1):
        try:
            v = float(n.args[0])
            if not math.isfinite(v):
                raise ValueError
        except ValueError:
            r.err(n, f"advert_int '{n.args[0]}' is not a number of seconds")
            return
        if v <= 0:
            # keepalived 2.2.7: "(VI_1) Advert interval (0) not valid! Must be > 0 - ignoring"
            r.adjust(n, f"advert_int {n.args[0]} must be greater than 0: ignored (1 s), as keepalived does")
            return
        st.advert_int, st.advert_int_at = v, n


def _auth_type(r: Reporter, n: Node, st: InstanceState, kw: Kw) -> None:
    st.auth_type_given = True
    if r.nargs(n, 1):
        t = n.args[0].upper()
        if t not in ("PASS", "AH"):
            r.err(n, f"unknown auth_type '{n.args[0]}' (PASS or AH)")
        else:
            st.auth_type = t


def _auth_pass(r: Reporter, n: Node, st: InstanceState, kw: Kw) -> None:
    if r.nargs(n, 1):
        text = n.args[0]
        # The password is the file's bytes (read with surrogateescape: any byte, UTF-8 or not).
        if len(text.encode("utf-8", "surrogateescape")) > 8:
            # keepalived 2.2.7 sends the first 8 bytes ("Truncating auth_pass to 8 characters")
            while len(text.encode("utf-8", "surrogateescape")) > 8:
                text = text[:-1]
            r.adjust(n, f"auth_pass is longer than 8 bytes: only '{text}' is sent, as keepalived does")
        st.auth_pass = text


AUTHENTICATION = Schema(
    "authentication",
    InstanceState,
    {"auth_type": special(_auth_type), "auth_pass": special(_auth_pass)},
    unknown_no_block=True,
)


def _authentication(r: Reporter, n: Node, st: InstanceState, kw: Kw) -> None:
    if n.children is None:
        r.want_block(n)
        return
    walk(r, n, AUTHENTICATION, st)
    st.auth_at = n


def _unicast_peer(r: Reporter, n: Node, st: InstanceState, kw: Kw) -> None:
    peers = list(st.unicast_peers or ())
    for k in entries(r, n):
        p = _peer(r, k)
        if p is not None:
            peers.append(p)
            if st.unicast_peers_at is None:
                st.unicast_peers_at = []
            st.unicast_peers_at.append(k)
    st.unicast_peers = tuple(peers)
    st.unicast_peer_at = n


def _peer(r: Reporter, k: Node) -> UnicastPeer | None:
    """`ADDRESS [min_ttl N] [max_ttl N]`."""
    r.no_block(k)
    a = r.ip(k, k.kw, "unicast peer")
    if a is None:
        return None
    mn = mx = None
    i = 0
    ok = True
    while i < len(k.args):
        w = k.args[i]
        if w in ("min_ttl", "max_ttl") and i + 1 < len(k.args):
            v = r.int_in(k, k.args[i + 1], 0, 255, w)
            if v is None:
                ok = False
            elif w == "min_ttl":
                mn = v
            else:
                mx = v
            i += 2
        else:
            r.err(k, f"unexpected '{w}' after unicast peer (min_ttl N, max_ttl N)")
            ok = False
            break
    if mn is not None and mx is not None and mn > mx:
        r.err(k, f"min_ttl {mn} is above max_ttl {mx}")
        ok = False
    return UnicastPeer(a, mn, mx) if ok else None


def _addresses(r: Reporter, n: Node, st: InstanceState, kw: Kw) -> None:
    """virtual_ipaddress: added to what earlier blocks gave; each line kept for the family check."""
    out = list(st.virtual_ipaddress) if st.virtual_ipaddress else []
    nodes = st.virtual_ipaddress_at
    if nodes is None:
        nodes = st.virtual_ipaddress_at = []
    for k in n.children if n.children is not None else entries(r, n):
        a = vaddr(r, k)
        if a is not None:
            out.append(a)
            nodes.append(k)
    st.virtual_ipaddress = tuple(out)


def _track(r: Reporter, n: Node, st: InstanceState, kw: Kw) -> None:
    """track_interface / track_script / track_file / track_process: `NAME [weight W [reverse]]` lines."""
    refs = []
    nodes = getattr(st, kw.at)
    if nodes is None:
        nodes = []
        setattr(st, kw.at, nodes)
    for k in n.children if n.children is not None else entries(r, n):
        if not k.args and k.children is None:  # the usual line: a name alone
            refs.append(_make_track_ref(k.kw, None, False))
            nodes.append(k)
            continue
        weight = r.track_weight(k, kw.lo, kw.hi)
        if weight is not None and (weight[0] is not None or not k.args):  # a bad weight drops the line
            refs.append(_make_track_ref(k.kw, *weight))
            nodes.append(k)
    prev = getattr(st, kw.field)
    setattr(st, kw.field, prev + tuple(refs) if prev else tuple(refs))


def _use_vmac(r: Reporter, n: Node, st: InstanceState, kw: Kw) -> None:
    """`use_vmac [NAME] [MAC]`."""
    st.use_vmac = True
    for a in n.args:
        if a.count(":") in (4, 5) and all(len(x) <= 2 for x in a.split(":")):
            st.vmac_mac = a
        elif st.vmac_name is None:
            st.vmac_name = a
        else:
            r.err(n, f"unexpected '{a}' after use_vmac (expected an interface name and/or a MAC)")


def _garp_extra_if(r: Reporter, n: Node, st: InstanceState, kw: Kw) -> None:
    """`garp_extra_if [all] SECONDS` / `garp_extra_if_vmac [all] SECONDS` (keepalived.conf(5)): periodic
    GARP/NA on the other interfaces of the instance. Checked, then noted as not implemented."""
    a = n.args[1:] if n.args[:1] == ["all"] else n.args
    if len(a) != 1:
        r.err(n, f"'{n.kw}' expects [all] and a delay in seconds")
        return
    if r.secs_in(n, a[0], 0, 86400, f"{n.kw} delay") is not None:
        r.unsupported(n, "periodic GARP/NA on extra interfaces")


def _old_unicast_checksum(r: Reporter, n: Node, st: InstanceState, kw: Kw) -> None:
    if n.args == ["never"]:
        st.v3_checksum_as_v2 = False
    elif r.nargs(n, 0):
        st.v3_checksum_as_v2 = True


def _notify_deleted(r: Reporter, n: Node, st: InstanceState, kw: Kw) -> None:
    if n.args:
        s = r.script(n)
        if s is not None:
            st.notify_deleted = s
    else:
        st.notify_deleted = Script("")


_NOT_KEPT = Kw(checked_only, read=read_flag)  # accepted flags with nothing to keep


def _lvs_sync_daemon_interface(r: Reporter, n: Node, st: InstanceState, kw: Kw) -> None:
    # keepalived 2.2.7: "Specifying lvs_sync_daemon_interface against a vrrp is deprecated."
    r.adjust(
        n,
        "'lvs_sync_daemon_interface' in a vrrp_instance is deprecated (keepalived: use the global "
        "lvs_sync_daemon); the LVS sync daemon is not implemented by fastvrrp: ignored",
    )


VRRP_INSTANCE = Schema(
    "vrrp_instance",
    InstanceState,
    {
        "interface": special(_interface),
        "state": special(_state),
        "virtual_router_id": int_kw("virtual_router_id", 1, 255),
        "priority": special(_priority),
        "advert_int": special(_advert_int),
        "version": int_kw("version", 2, 3),
        "nopreempt": flag_kw("preempt", False),
        "no_preempt": flag_kw("preempt", False),
        "preempt": _NOT_KEPT,  # the default
        "preempt_delay": secs_kw("preempt_delay_ms", 0, 1000),
        "authentication": special(_authentication, block=True),
        "mcast_src_ip": ip_kw("mcast_src_ip", "mcast src ip"),
        "mcast_dst_ip": ip_kw("mcast_dst_ip", "mcast dst ip"),
        "unicast_src_ip": ip_kw("unicast_src_ip", "unicast src ip"),
        "unicast_peer": special(_unicast_peer, block=True),
        "unicast_ttl": int_kw("unicast_ttl", 0, 255),
        "unicast_fault_no_peer": flag_kw("unicast_fault_no_peer"),
        "check_unicast_src": flag_kw("check_unicast_src"),
        "virtual_ipaddress": special(_addresses, block=True),
        "virtual_ipaddress_excluded": lines_kw("virtual_ipaddress_excluded", vaddr),
        "virtual_routes": lines_kw("virtual_routes", route),
        "virtual_rules": lines_kw("virtual_rules", rule),
        "accept": flag_kw("accept", True),
        "no_accept": flag_kw("accept", False),
        "track_interface": special(_track, "track_interface", -253, 253, block=True),
        "track_script": special(_track, "track_script", -253, 253, block=True),
        "track_file": special(_track, "track_file", -254, 254, block=True),
        "track_process": special(_track, "track_process", -254, 254, block=True),
        "dont_track_primary": flag_kw("dont_track_primary"),
        "use_vmac": special(_use_vmac),
        "use_vmac_addr": _NOT_KEPT,  # not modelled
        "vmac_xmit_base": flag_kw("vmac_xmit_base"),
        "native_ipv6": flag_kw("native_ipv6"),
        "strict_mode": bool_kw("strict_mode"),
        "lower_prio_no_advert": bool_kw("lower_prio_no_advert"),
        "higher_prio_send_advert": bool_kw("higher_prio_send_advert"),
        "skip_check_adv_addr": bool_kw("skip_check_adv_addr"),
        "notify_priority_changes": bool_kw("notify_priority_changes"),
        "promote_secondaries": flag_kw("promote_secondaries"),
        "old_unicast_checksum": special(_old_unicast_checksum),
        "v3_checksum_as_v2": flag_kw("v3_checksum_as_v2"),
        "garp_master_delay": secs_kw("garp_master_delay_ms", 0, 86400),
        "garp_master_repeat": int_kw("garp_master_repeat", 1, 65535),
        "garp_lower_prio_delay": secs_kw("garp_lower_prio_delay_ms", 0, 86400),
        "garp_lower_prio_repeat": int_kw("garp_lower_prio_repeat", 1, 65535),
        "garp_master_refresh": secs_kw("garp_master_refresh_ms", 0, 86400),
        "garp_master_refresh_repeat": int_kw("garp_master_refresh_repeat", 1, 65535),
        "garp_extra_if": special(_garp_extra_if),
        "garp_extra_if_vmac": special(_garp_extra_if),
        "down_timer_adverts": int_kw("down_timer_adverts", 1, 100),
        # fastvrrp's own (keepalived 2.2.7 skips them as unknown keywords): each advert sent N times
        "advert_copies": int_kw("advert_copies", 1, 10),
        "advert_copy_delay": secs_kw("advert_copy_delay_ms", 0.001, 40.95, "advert_copy_delay"),
        "debug": int_kw("debug", 0, 4),
        "notify_master": script_kw("notify_master"),
        "notify_backup": script_kw("notify_backup"),
        "notify_fault": script_kw("notify_fault"),
        "notify_stop": script_kw("notify_stop"),
        "notify": script_kw("notify"),
        "notify_master_rx_lower_pri": script_kw("notify_master_rx_lower_pri"),
        "notify_deleted": special(_notify_deleted),
        "lvs_sync_daemon_interface": special(_lvs_sync_daemon_interface),
    },
    unsupported=INSTANCE_UNSUPPORTED,
)


def read_instance(r: Any, n: Node, st: Any, kw: Kw) -> None:
    """A top-level `vrrp_instance NAME { }` into r.instances (checked once everything is read)."""
    if len(n.args) != 1:
        r.err(n, "'vrrp_instance' needs exactly one name")
        return
    s = new_instance_state(n.args[0], n.file, n.line, n)
    walk(r, n, VRRP_INSTANCE, s)
    r.instances.append(s)
