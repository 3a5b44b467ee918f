"""The parsed configuration: frozen dataclasses, no behaviour beyond serialisation.

Conventions
- Times are integer milliseconds with `_ms` in the name (keepalived's seconds, fractional allowed, are
  converted once here; finer than 1 ms is rounded to the nearest ms).
- Addresses are `ipaddress.IPv4Address` / `IPv6Address` objects; networks (routes, rules) are
  `ipaddress.IPv4Network` / `IPv6Network`; interface names, script command lines and other free text are
  `str`.
- Values an instance inherits from global_defs (version, garp_* timings, lower_prio_no_advert, ...) are
  stored already resolved in the instance: the instance says what will happen, not what was written.
- Things parsed but not modelled in detail keep their words (`words: tuple[str, ...]`).

`Config.to_json()` is the stable `--dump-json` format: the dataclasses as JSON objects whose keys are the
field names, sorted; addresses and networks as strings; tuples as arrays; `None` as null.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# vrrp_check blocks (docs/health-checks.md) become the health checks' own spec dataclasses: one definition,
# in a module that imports no event loop.
from fastvrrp.health.spec import CheckSpec

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One thing wrong (or unsupported) in the configuration, located where the text is."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ConfigError(Exception):
    """The configuration is invalid; `.problems` holds every problem found (not only the first)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid configuration")


@dataclass(frozen=True, slots=True)
class Script:
    """A command run by the daemon (notify_*, startup_script ...) and the user/group to run it as."""

    command: str
    user: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class VirtualAddress:
    """One line of virtual_ipaddress / virtual_ipaddress_excluded / static_ipaddress."""

    address: IPAddress
    prefixlen: int
    brd: str | None = None  # an address, or '-' / '+' (clear / set the host bits)
    dev: str | None = None
    scope: str | None = None
    label: str | None = None
    peer: IPAddress | None = None
    use_vmac: bool = False
    no_track: bool = False
    track_group: str | None = None
    preferred_lft: str | None = None  # seconds as text, or 'forever'
    flags: tuple[str, ...] = ()  # home, -nodad, mngtmpaddr, noprefixroute, autojoin
    # where the line is written (-t names it when the line's interface is missing); not part of its meaning
    file: str = field(default="", compare=False)
    line: int = field(default=0, compare=False)

    def broadcast_address(self) -> str | None:
        """The IPv4 broadcast address the line asks for: `brd +` / `brd -` set / clear the host bits up to /30
        (a line with a peer is a /32), an address as written; None otherwise."""
        if self.address.version != 4 or self.brd is None:
            return None
        if self.brd not in ("+", "-"):
            return self.brd
        if self.prefixlen > 30:
            return None
        net = ipaddress.ip_network(f"{self.address}/{self.prefixlen}", strict=False)
        return str(net.broadcast_address if self.brd == "+" else net.network_address)

    def preferred_seconds(self) -> int | None:
        """IPv6: the seconds the address is preferred as a source, None for ever; a /128 line that does not
        say is not preferred at all (0, "deprecated"), as keepalived 2.2.7 adds it. None for IPv4 (keepalived
        sets no lifetime on an IPv4 address)."""
        if self.address.version != 6:
            return None
        if self.preferred_lft is None:
            return 0 if self.prefixlen == 128 else None
        if self.preferred_lft == "forever" or int(self.preferred_lft) >= 0xFFFFFFFF:
            return None
        return int(self.preferred_lft)

    @property
    def family(self) -> int:
        return self.address.version


@dataclass(frozen=True, slots=True)
class RouteMetric:
    """One RTA_METRICS entry of a route: `mtu 1400`, `ssthresh lock 107`, `congctl cubic`, `features ecn`."""

    name: str  # the kernel's RTAX_ name in lower case: mtu, hoplimit, advmss, ..., cc_algo, features
    value: int | str  # str only for cc_algo (the congestion control name)
    lock: bool = False  # `lock`: the kernel must not change it (RTAX_LOCK)


@dataclass(frozen=True, slots=True)
class RouteEncap:
    """`encap TYPE ...` of a route, a lightweight tunnel: `mpls 100/200` (labels), `ip id N dst A src A tos T
    ttl T flags F` or `ip6 id N dst A src A tc T hoplimit H flags F` (ttl / tos hold hoplimit / tc)."""

    type: str  # mpls, ip, ip6
    labels: tuple[int, ...] = ()  # mpls
    id: int | None = None
    dst: IPAddress | None = None
    src: IPAddress | None = None
    ttl: int | None = None
    tos: int | None = None
    flags: int | None = None


@dataclass(frozen=True, slots=True)
class Nexthop:
    """One path of a multipath route (`nexthop via ADDR dev IF weight N onlink realms R`, or `or ADDR`)."""

    via: IPAddress | None = None
    dev: str | None = None
    weight: int = 1  # 1..256
    onlink: bool = False
    realms: int | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """One line of virtual_routes / static_routes, every keyword read into a field (config/route_lines.py).
    Numbers are the kernel's: table, protocol, scope, tos, realms ((from << 16) | to) as in rtnetlink."""

    text: str  # the line as written, for logs
    destination: IPNetwork
    family: int
    type: str = "unicast"  # unicast, local, broadcast, anycast, multicast, blackhole, unreachable, ...
    via: IPAddress | None = None
    dev: str | None = None
    src: IPAddress | None = None
    table: int = 254  # main
    metric: int | None = None  # metric / priority / preference
    protocol: int = 18  # keepalived's (RTPROT_KEEPALIVED), as keepalived installs them
    scope: int | None = None  # None: the kernel's usual choice, set when applied (io/routes.py)
    tos: int | None = None
    onlink: bool = False
    realms: int | None = None
    pref: int | None = None  # IPv6 router preference: 0 medium, 1 high, 3 low
    expires: int | None = None  # IPv6: seconds until the kernel removes the route
    metrics: tuple[RouteMetric, ...] = ()
    nexthops: tuple[Nexthop, ...] = ()  # a multipath route: `via` and `dev` are then None
    append: bool = False  # added with NLM_F_APPEND (beside a route of the same key) rather than exclusively
    encap: RouteEncap | None = None
    vrf: str | None = None  # the route goes in this VRF device's table (looked up when it is installed)
    ttl_propagate: bool | None = None  # RTA_TTL_PROPAGATE (the kernel uses it for MPLS routes)
    no_track: bool = False
    track_group: str | None = None  # static_routes only
    # where the line is written (-t names it when the line's interface is missing); not part of its meaning
    file: str = field(default="", compare=False)
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of virtual_rules / static_rules, every keyword read into a field (config/route_lines.py)."""

    text: str  # the line as written, for logs
    family: int
    priority: int  # keepalived's 16384, 16383, ... when the line gives none
    action: str  # table, goto, blackhole, unreachable, prohibit, nop
    table: int | None = None  # for action table; None with l3mdev
    goto: int | None = None
    src: IPNetwork | None = None  # from
    dst: IPNetwork | None = None  # to
    invert: bool = False  # not
    fwmark: int | None = None
    fwmask: int | None = None
    iif: str | None = None
    oif: str | None = None
    tos: int | None = None
    realms: int | None = None
    suppress_prefixlength: int | None = None
    suppress_ifgroup: int | None = None
    uidrange: tuple[int, int] | None = None
    l3mdev: bool = False
    protocol: int = 18
    ip_proto: int | None = None
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    no_track: bool = False
    track_group: str | None = None  # static_rules only
    # where the line is written (-t names it when the line's interface is missing); not part of its meaning
    file: str = field(default="", compare=False)
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class UnicastPeer:
    address: IPAddress
    min_ttl: int | None = None
    max_ttl: int | None = None


@dataclass(frozen=True, slots=True)
class TrackRef:
    """A reference from an instance/sync group to a tracker: a script, file, process or interface."""

    name: str
    weight: int | None = None  # None: the tracker's own weight (0 for interfaces: fault on failure)
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class VrrpScript:
    name: str
    script: str
    interval_ms: int = 1000
    timeout_ms: int | None = None
    weight: int = 0
    reverse: bool = False
    rise: int = 1
    fall: int = 1
    user: str | None = None
    group: str | None = None
    init_fail: bool = False


@dataclass(frozen=True, slots=True)
class TrackFile:
    name: str
    file: str
    weight: int = 1
    reverse: bool = False
    init_file: bool = False
    init_value: int = 0
    init_overwrite: bool = False


@dataclass(frozen=True, slots=True)
class TrackProcess:
    name: str
    process: tuple[str, ...]
    param_match: str | None = None  # None (exact), 'initial' or 'partial'
    weight: int = 1
    reverse: bool = False
    quorum: int = 1
    quorum_max: int | None = None
    fork_delay_ms: int = 0
    terminate_delay_ms: int = 0
    full_command: bool = False


@dataclass(frozen=True, slots=True)
class SyncGroupConfig:
    name: str
    group: tuple[str, ...]
    track_interface: tuple[TrackRef, ...] = ()
    track_script: tuple[TrackRef, ...] = ()
    track_file: tuple[TrackRef, ...] = ()
    track_process: tuple[TrackRef, ...] = ()
    notify_master: Script | None = None
    notify_backup: Script | None = None
    notify_fault: Script | None = None
    notify_stop: Script | None = None
    notify: Script | None = None
    notify_priority_changes: bool = False
    sync_group_tracking_weight: bool = False


@dataclass(frozen=True, slots=True)
class GarpGroup:
    garp_interval_ms: int | None = None
    gna_interval_ms: int | None = None
    interfaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GlobalDefs:
    router_id: str | None = None
    vrrp_version: int = 2
    vrrp_mcast_group4: IPAddress = ipaddress.IPv4Address("224.0.0.18")
    vrrp_mcast_group6: IPAddress = ipaddress.IPv6Address("ff02::12")
    vrrp_garp_master_delay_ms: int = 5000
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_lower_prio_delay_ms: int | None = None  # None: as vrrp_garp_master_delay_ms
    vrrp_garp_lower_prio_repeat: int | None = None  # None: as vrrp_garp_master_repeat
    vrrp_garp_master_refresh_ms: int = 0  # 0: no periodic refresh
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_interval_ms: int = 0
    vrrp_gna_interval_ms: int = 0
    vrrp_min_garp: bool = False
    vrrp_lower_prio_no_advert: bool = False
    vrrp_higher_prio_send_advert: bool = False
    vrrp_strict: bool = False
    vrrp_skip_check_adv_addr: bool = False
    vrrp_check_unicast_src: bool = False
    vrrp_startup_delay_ms: int = 0
    vrrp_down_timer_adverts: int = 3
    script_user: str | None = None
    script_group: str | None = None
    enable_script_security: bool = False
    vrrp_notify_fifo: Script | None = None
    vrrp_notify_fifo_script: Script | None = None
    notify_fifo: Script | None = None
    notify_fifo_script: Script | None = None
    notification_email: tuple[str, ...] = ()
    notification_email_from: str | None = None
    dynamic_interfaces: bool = False
    vmac_prefix: str = "vrrp"
    # Every other global_defs keyword that was given, with its typed value (bool, int, float-as-ms int,
    # str, tuple of str), keyed by keyword.
    other: Mapping[str, Any] = field(default_factory=dict)

    @property
    def default_interface(self) -> str:
        """The interface of a static address line that names none (keepalived's default_interface,
        eth0 unless set)."""
        return str(self.other.get("default_interface") or "eth0")


@dataclass(frozen=True, slots=True)
class InstanceConfig:
    name: str
    file: str
    line: int
    interface: str | None
    virtual_router_id: int
    priority: int = 100
    state: str = "BACKUP"  # the initial state asked for: MASTER or BACKUP
    version: int = 2  # resolved: instance `version`, else global vrrp_version; IPv6 always 3
    family: int = 4  # 4 or 6, from the virtual addresses (or the unicast/mcast source)
    advert_int_ms: int = 1000
    preempt: bool = True
    preempt_delay_ms: int = 0
    accept: bool = True  # accept mode (RFC 5798 6.1); off with no_accept or strict mode
    strict_mode: bool = False
    auth_type: str | None = None  # None, 'PASS' or 'AH'
    auth_pass: str | None = None
    mcast_src_ip: IPAddress | None = None
    mcast_dst_ip: IPAddress | None = None
    unicast_src_ip: IPAddress | None = None
    unicast_peers: tuple[UnicastPeer, ...] = ()
    unicast_ttl: int | None = None
    unicast_fault_no_peer: bool = False
    check_unicast_src: bool = False
    virtual_ipaddress: tuple[VirtualAddress, ...] = ()
    virtual_ipaddress_excluded: tuple[VirtualAddress, ...] = ()
    virtual_routes: tuple[Route, ...] = ()
    virtual_rules: tuple[Rule, ...] = ()
    track_interface: tuple[TrackRef, ...] = ()
    track_script: tuple[TrackRef, ...] = ()
    track_file: tuple[TrackRef, ...] = ()
    track_process: tuple[TrackRef, ...] = ()
    dont_track_primary: bool = False
    use_vmac: bool = False
    vmac_name: str | None = None
    vmac_mac: str | None = None
    vmac_xmit_base: bool = False
    garp_master_delay_ms: int = 5000
    garp_master_repeat: int = 5
    garp_lower_prio_delay_ms: int = 5000
    garp_lower_prio_repeat: int = 5
    garp_master_refresh_ms: int = 0
    garp_master_refresh_repeat: int = 1
    down_timer_adverts: int = 3
    advert_copies: int = 1  # fastvrrp's own: each advert sent this many times (docs/rfc-checklist.md)
    advert_copy_delay_ms: int = 5  # between two copies; instance_rules.advert_copies sets the default
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    skip_check_adv_addr: bool = False
    v3_checksum_as_v2: bool = (
        False  # keepalived's old_unicast_checksum: v3 IPv4 checksum without pseudo-header
    )
    promote_secondaries: bool = False
    notify_master: Script | None = None
    notify_backup: Script | None = None
    notify_fault: Script | None = None
    notify_stop: Script | None = None
    notify_deleted: Script | None = None
    notify_master_rx_lower_pri: Script | None = None
    notify: Script | None = None
    notify_priority_changes: bool = False
    sync_group: str | None = None


@dataclass(frozen=True, slots=True)
class Config:
    global_defs: GlobalDefs
    instances: tuple[InstanceConfig, ...]
    vrrp_scripts: Mapping[str, VrrpScript] = field(default_factory=dict)
    track_files: Mapping[str, TrackFile] = field(default_factory=dict)
    track_processes: Mapping[str, TrackProcess] = field(default_factory=dict)
    sync_groups: Mapping[str, SyncGroupConfig] = field(default_factory=dict)
    garp_groups: tuple[GarpGroup, ...] = ()
    static_ipaddress: tuple[VirtualAddress, ...] = ()
    static_routes: tuple[Route, ...] = ()
    static_rules: tuple[Rule, ...] = ()
    track_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    linkbeat_interfaces: tuple[str, ...] = ()
    interface_up_down_delays: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # ms (down, up)
    unsupported: tuple[Problem, ...] = ()  # keepalived features present but not implemented (see reader)
    files: tuple[str, ...] = ()  # every file read, main file first
    vrrp_checks: Mapping[str, CheckSpec] = field(default_factory=dict)  # track_script may name these too

    def instance(self, name: str) -> InstanceConfig:
        for inst in self.instances:
            if inst.name == name:
                return inst
        raise KeyError(name)

    def to_json(self, indent: int | None = 2) -> str:
        """The stable `--dump-json` JSON: field names as keys, sorted; see the module docstring."""
        return json.dumps(_plain(self), sort_keys=True, indent=indent)


def _plain(v: Any) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    if isinstance(
        v, ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network | ipaddress.IPv6Network
    ):
        return str(v)
    return v
