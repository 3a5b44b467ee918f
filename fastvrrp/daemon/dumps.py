"""keepalived's dump files: what SIGUSR1 (data), SIGUSR2 (stats) and the JSON signal write, in keepalived's
layouts, because the Prometheus exporters and operators' scripts parse them.

Pure functions from rows (`InstanceDump`, one per running instance, made by `snapshots.dump_rows`) to text;
`write_atomic` puts a text in place (temporary file beside it, mode 0600, rename), so a reader sees the old
file or the new one, never half of one.

The layouts were read off Debian's keepalived 2.2.7 (tests/interop/test_keepalived_dumps.py runs it on the
same configuration and compares): the JSON is a list of {"data": {...}, "stats": {...}} per instance with
keepalived's key names; the stats file is keepalived's, line for line; the data file has keepalived's
`VRRP Instance = NAME` sections with keepalived's lines.

What fastvrrp does not have is left out or written as keepalived's default:
- data file: the sections `VRRP Sockpool` and `Interfaces` are omitted (fastvrrp's sockets and interfaces
  are not keepalived's), so is `VRRP Track processes` (its lines are keepalived's process-counting timers);
  `VRRP Sync groups`, `VRRP Scripts` and `VRRP Track files` are keepalived's; `Global definitions` holds
  only the settings fastvrrp reads (router id, multicast groups, the garp_* defaults, the advert rules,
  script security): keepalived's lines about LVS, SNMP, DBus, process priorities and netlink buffers are
  omitted. keepalived's parent process also writes keepalived_parent.data (its global part): fastvrrp,
  one process, does not.
- instance lines: `Number of config faults` is 0 and `Number of track scripts init` 0 (fastvrrp holds an
  instance in INIT until its trackers answer, it does not count them); `fd_in N, fd_out N` gives fastvrrp's
  receive and send socket descriptors; `Wantstate` is the state (fastvrrp changes state at once); `Using smtp
  notification = no` (no SMTP); virtual routes and rules show their configured words, not keepalived's
  rendering of them.
- counters (see `keepalived_counters`): fastvrrp counts some invalid packets per receive socket, before it
  knows the instance, so `packet_len_err`, `ip_ttl_err`, `invalid_type_rcvd`, `invalid_authtype` and
  `auth_failure` are 0 per instance (the per-socket counts are in the Prometheus `fastvrrp_rx_drops`).
"""

from __future__ import annotations

import datetime
import grp
import ipaddress
import json
import os
import pwd
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastvrrp.daemon.driver import advert_counts

DATA_FILE = "keepalived.data"
STATS_FILE = "keepalived.stats"
JSON_FILE = "keepalived.json"
DEFAULT_DIR = "/tmp"  # keepalived's fixed place; `--dump-dir` moves fastvrrp's

# keepalived's per-instance counters, in the order of its JSON "stats" object.
STATS_KEYS = (
    "advert_rcvd",
    "advert_sent",
    "become_master",
    "release_master",
    "packet_len_err",
    "advert_interval_err",
    "ip_ttl_err",
    "invalid_type_rcvd",
    "addr_list_err",
    "invalid_authtype",
    "authtype_mismatch",
    "auth_failure",
    "pri_zero_rcvd",
    "pri_zero_sent",
)
STATE_NUMBER = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}  # keepalived's and fastvrrp's State values


@dataclass(slots=True)
class InstanceDump:
    """One running instance at the moment of the signal: its configuration (an InstanceConfig) and the state
    the daemon holds for it. Times are Unix seconds (floats)."""

    cfg: Any
    state: str  # INIT BACKUP MASTER FAULT
    effective_priority: int
    ifname: str  # the interface the instance runs on (its VMAC interface when use_vmac)
    parent_ifname: str | None  # use_vmac: the interface under the VMAC
    src_ip: str  # the source of our adverts
    master_src: str | None  # BACKUP: the master we follow
    master_priority: int  # BACKUP: the master's priority; 0 when unknown or not BACKUP
    master_adver_int_ms: int
    last_transition: float
    read_timeout: float | None  # when the instance's timer fires next (None: no timer, e.g. FAULT)
    master_down_us: int
    vipset: bool  # the virtual addresses are installed (MASTER)
    faults: int  # trackers (interfaces, scripts ...) holding it in FAULT
    fd_in: int = -1
    fd_out: int = -1
    ifindex: int = 0
    vmac_up: bool = True
    counters: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class ScriptDump:
    """One vrrp_script (a VrrpScript config) or track_file (a TrackFile config) with its latest result: up
    True good, False bad, None unknown; value: a track_file's number."""

    cfg: Any
    up: bool | None
    users: Sequence[tuple[str, int]] = ()  # (instance name, weight as the instance tracks it)
    value: int | None = None


# --- counters ---------------------------------------------------------------------------------------------
def keepalived_counters(stats: Any, slot_stats: Mapping[str, int] | None, is_master: bool) -> dict[str, int]:
    """keepalived's counters from the core's Stats and the engine's slot counters.

    - advert_rcvd: adverts the core judged plus those the engine's fast path absorbed (`rx_fast`);
    - advert_sent: the engine's sends for the slot plus the priority-0 resignations (sent outside the slot);
    - become_master: the core's became_master; release_master: every MASTER entry but the current one has
      been left, so became_master minus one while MASTER;
    - advert_interval_err, addr_list_err, authtype_mismatch: the core's interval_mismatch,
      address_list_mismatch, auth_mismatch; pri_zero_rcvd / pri_zero_sent: priority_zero_rx / _tx;
    - packet_len_err, ip_ttl_err, invalid_type_rcvd, invalid_authtype, auth_failure: 0 (fastvrrp counts
      those per receive socket, before the instance is known).
    """
    rcvd, sent = advert_counts(stats, slot_stats)
    became = stats.became_master
    return {
        "advert_rcvd": rcvd,
        "advert_sent": sent,
        "become_master": became,
        "release_master": max(0, became - (1 if is_master else 0)),
        "packet_len_err": 0,
        "advert_interval_err": stats.interval_mismatch,
        "ip_ttl_err": 0,
        "invalid_type_rcvd": 0,
        "addr_list_err": stats.address_list_mismatch,
        "invalid_authtype": 0,
        "authtype_mismatch": stats.auth_mismatch,
        "auth_failure": 0,
        "pri_zero_rcvd": stats.priority_zero_rx,
        "pri_zero_sent": stats.priority_zero_tx,
    }


class StatsBaseline:
    """keepalived's STATS_CLEAR: the stats dump counts from the last clear. fastvrrp's own counters stay
    monotonic (Prometheus needs that); the dump subtracts what they were at the clear."""

    def __init__(self) -> None:
        self._at_clear: dict[str, dict[str, int]] = {}

    def since_clear(self, name: str, counters: Mapping[str, int]) -> dict[str, int]:
        base = self._at_clear.get(name, {})
        return {k: max(0, v - base.get(k, 0)) for k, v in counters.items()}

    def clear(self, raw: Mapping[str, Mapping[str, int]]) -> None:
        """Start again from these raw counters (instance name -> keepalived_counters())."""
        for name, counters in raw.items():
            self._at_clear[name] = dict(counters)

    def forget_except(self, names: Iterable[str]) -> None:
        keep = set(names)
        for n in [n for n in self._at_clear if n not in keep]:
            del self._at_clear[n]


# --- text pieces ------------------------------------------------------------------------------------------
def _script_text(command: str) -> str:
    """keepalived shows a script quoted, with its program's real path."""
    words = command.split(" ", 1)
    prog = words[0]
    if prog.startswith("/"):
        prog = os.path.realpath(prog)
    return "'" + " ".join([prog, *words[1:]]) + "'"


def _uid_gid(user: str | None, group: str | None) -> str:
    uid = gid = 0
    try:
        if user:
            pw = pwd.getpwnam(user)
            uid, gid = pw.pw_uid, pw.pw_gid
        if group:
            gid = grp.getgrnam(group).gr_gid
    except KeyError:
        pass
    return f"{uid}:{gid}"


def _address_text(va: Any, default_dev: str, installed: bool) -> str:
    """`192.0.2.100/24 brd 192.0.2.255 dev eth0 scope global label eth0:1 set`, in keepalived's order: it
    leaves out a host prefix, and ends an IPv6 address with its preferred lifetime (`deprecated` for 0)."""
    addr = ipaddress.ip_address(va.address)
    host = 32 if addr.version == 4 else 128
    text = str(addr) if va.prefixlen == host else f"{addr}/{va.prefixlen}"
    brd = va.broadcast_address()
    if brd:
        text += f" brd {brd}"
    text += f" dev {va.dev or default_dev}" + (" use_vmac" if va.use_vmac else "")
    text += f" scope {va.scope or 'global'}"
    if va.label:
        text += f" label {va.label}"
    if va.peer is not None:
        text += f" peer {va.peer}/{va.prefixlen}"
    for word in ("home", "-nodad", "mngtmpaddr", "noprefixroute", "autojoin"):
        if word in va.flags:
            text += f" {word}"
    if va.no_track:
        text += " no_track"
    if va.track_group:
        text += f" track_group {va.track_group}"
    if addr.version == 6:
        lft = va.preferred_seconds()
        text += " deprecated" if lft == 0 else f" preferred_lft {'forever' if lft is None else lft}"
    return text + (" set" if installed else "")


def _seconds(ms: int) -> int | float:
    """keepalived's JSON seconds: 1 for a whole second, 0.1 otherwise."""
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def _interval_text(ms: int) -> str:
    return f"{ms // 1000} sec" if ms % 1000 == 0 else f"{ms} milli-sec"


def _when(t: float) -> str:
    """`1796584412.873706 (Sun Dec  6 19:13:32.873706 2026)`, local time as keepalived writes it."""
    d = datetime.datetime.fromtimestamp(t)
    return f"{t:.6f} ({d.strftime('%a %b %e %H:%M:%S')}.{d.microsecond:06d} {d.year})"


def _yes(flag: bool, yes: str = "true", no: str = "false") -> str:
    return yes if flag else no


# notify script fields, keepalived's JSON key and its data-file label, in keepalived's order
_NOTIFY = (
    ("notify_backup", "script_backup", "Backup state transition script"),
    ("notify_master", "script_master", "Master state transition script"),
    ("notify_fault", "script_fault", "Fault state transition script"),
    ("notify_stop", "script_stop", "Stop state transition script"),
    ("notify_deleted", "script_deleted", "Deleted state transition script"),
    (
        "notify_master_rx_lower_pri",
        "script_master_rx_lower_pri",
        "Master rx lower pri state transition script",
    ),
    ("notify", "script", "Generic state transition script"),
)


def _dev(r: InstanceDump) -> str:
    return f"{r.ifname}@{r.parent_ifname}" if r.parent_ifname else r.ifname


# --- JSON ---------------------------------------------------------------------------------------------------
def json_data(r: InstanceDump, scripts: Mapping[str, Any]) -> dict[str, Any]:
    """keepalived's "data" object of one instance (lists only when not empty, as keepalived)."""
    c = r.cfg
    d: dict[str, Any] = {
        "iname": c.name,
        "dont_track_primary": int(c.dont_track_primary),
        "skip_check_adv_addr": int(c.skip_check_adv_addr),
        "strict_mode": int(c.strict_mode),
        "vmac_ifname": r.ifname if r.parent_ifname else "",
        "ifp_ifname": r.ifname,
        "master_priority": r.master_priority,
        "last_transition": round(r.last_transition, 6),
        "garp_delay": c.garp_master_delay_ms // 1000,
        "garp_refresh": c.garp_master_refresh_ms // 1000,
        "garp_rep": c.garp_master_repeat,
        "garp_refresh_rep": c.garp_master_refresh_repeat,
        "garp_lower_prio_delay": c.garp_lower_prio_delay_ms // 1000,
        "garp_lower_prio_rep": c.garp_lower_prio_repeat,
        "lower_prio_no_advert": int(c.lower_prio_no_advert),
        "higher_prio_send_advert": int(c.higher_prio_send_advert),
        "vrid": c.virtual_router_id,
        "base_priority": c.priority,
        "effective_priority": r.effective_priority,
        "vipset": r.vipset,
        "promote_secondaries": bool(c.promote_secondaries),
        "adver_int": _seconds(c.advert_int_ms),
        "master_adver_int": _seconds(r.master_adver_int_ms),
        "accept": int(c.accept),
        "nopreempt": not c.preempt,
        "preempt_delay": _seconds(c.preempt_delay_ms),
        "state": STATE_NUMBER[r.state],
        "wantstate": STATE_NUMBER[r.state],
        "version": c.version,
        "smtp_alert": False,
        "notify_deleted": c.notify_deleted is not None,
    }
    for attr, key, _label in _NOTIFY:
        s = getattr(c, attr, None)
        if s is not None:
            d[key] = _script_text(s.command)
    lists = {
        "vips": [_address_text(v, _dev(r), r.vipset) for v in c.virtual_ipaddress],
        "evips": [_address_text(v, _dev(r), r.vipset) for v in c.virtual_ipaddress_excluded],
        "vroutes": [rt.text for rt in c.virtual_routes],
        "vrules": [ru.text for ru in c.virtual_rules],
        "track_ifp": [t.name for t in c.track_interface],
        "track_script": [_script_text(scripts[t.name].script) for t in c.track_script if t.name in scripts],
    }
    d.update({k: v for k, v in lists.items() if v})
    if c.advert_copies > 1:  # fastvrrp's own keywords, shown only when set (keepalived has no such key)
        d["advert_copies"] = c.advert_copies
        d["advert_copy_delay"] = c.advert_copy_delay_ms / 1000
    d["auth_type"] = 1 if c.auth_type == "PASS" else 2 if c.auth_type == "AH" else 0
    if d["auth_type"]:
        d["auth_data"] = c.auth_pass or ""
    return d


def json_entries(rows: Sequence[InstanceDump], scripts: Mapping[str, Any]) -> str:
    """The comma-separated {"data", "stats"} objects of `rows` (render_json joins the pieces)."""
    return ",".join(
        json.dumps(
            {"data": json_data(r, scripts), "stats": {k: r.counters.get(k, 0) for k in STATS_KEYS}},
            separators=(",", ":"),
        )
        for r in rows
    )


def render_json(rows: Sequence[InstanceDump], scripts: Mapping[str, Any]) -> str:
    """/tmp/keepalived.json: one line, as keepalived writes it."""
    return "[" + json_entries(rows, scripts) + "]\n"


# --- stats --------------------------------------------------------------------------------------------------
def render_stats(rows: Sequence[InstanceDump]) -> str:
    """/tmp/keepalived.stats, line for line as keepalived writes it."""
    out: list[str] = []
    for r in rows:
        n = r.counters
        out += [
            f"VRRP Instance: {r.cfg.name}",
            "  Advertisements:",
            f"    Received: {n.get('advert_rcvd', 0)}",
            f"    Sent: {n.get('advert_sent', 0)}",
            f"  Became master: {n.get('become_master', 0)}",
            f"  Released master: {n.get('release_master', 0)}",
            "  Packet Errors:",
            f"    Length: {n.get('packet_len_err', 0)}",
            f"    TTL: {n.get('ip_ttl_err', 0)}",
            f"    Invalid Type: {n.get('invalid_type_rcvd', 0)}",
            f"    Advertisement Interval: {n.get('advert_interval_err', 0)}",
            f"    Address List: {n.get('addr_list_err', 0)}",
            "  Authentication Errors:",
            f"    Invalid Type: {n.get('invalid_authtype', 0)}",
            f"    Type Mismatch: {n.get('authtype_mismatch', 0)}",
            f"    Failure: {n.get('auth_failure', 0)}",
            "  Priority Zero:",
            f"    Received: {n.get('pri_zero_rcvd', 0)}",
            f"    Sent: {n.get('pri_zero_sent', 0)}",
        ]
    return "".join(line + "\n" for line in out)


# --- data ---------------------------------------------------------------------------------------------------
def _global_lines(gd: Any) -> list[str]:
    """The `Global definitions` lines for the settings fastvrrp reads (keepalived prints many more)."""
    lower_delay = gd.vrrp_garp_lower_prio_delay_ms
    lower_rep = gd.vrrp_garp_lower_prio_repeat
    return [
        "------< Global definitions >------",
        f" Router ID = {gd.router_id or os.uname().nodename}",
        f" VRRP IPv4 mcast group = {gd.vrrp_mcast_group4}",
        f" VRRP IPv6 mcast group = {gd.vrrp_mcast_group6}",
        f" Gratuitous ARP delay = {gd.vrrp_garp_master_delay_ms // 1000}",
        f" Gratuitous ARP repeat = {gd.vrrp_garp_master_repeat}",
        f" Gratuitous ARP refresh timer = {gd.vrrp_garp_master_refresh_ms // 1000}",
        f" Gratuitous ARP refresh repeat = {gd.vrrp_garp_master_refresh_repeat}",
        " Gratuitous ARP lower priority delay = "
        f"{(gd.vrrp_garp_master_delay_ms if lower_delay is None else lower_delay) // 1000}",
        " Gratuitous ARP lower priority repeat = "
        f"{gd.vrrp_garp_master_repeat if lower_rep is None else lower_rep}",
        f" Num adverts before down = {gd.vrrp_down_timer_adverts}",
        f" Send advert after receive lower priority advert = {_yes(not gd.vrrp_lower_prio_no_advert)}",
        f" Send advert after receive higher priority advert = {_yes(gd.vrrp_higher_prio_send_advert)}",
        f" Gratuitous ARP interval = {gd.vrrp_garp_interval_ms / 1000:.6f}",
        f" Gratuitous NA interval = {gd.vrrp_gna_interval_ms / 1000:.6f}",
        f" VRRP default protocol version = {gd.vrrp_version}",
        f" VRRP check unicast_src = {_yes(gd.vrrp_check_unicast_src)}",
        f" VRRP skip check advert addresses = {_yes(gd.vrrp_skip_check_adv_addr)}",
        f" VRRP strict mode = {_yes(gd.vrrp_strict)}",
        f" Script security {_yes(gd.enable_script_security, 'enabled', 'disabled')}",
        f" Default script uid:gid {_uid_gid(gd.script_user, gd.script_group)}",
    ]


def _instance_head(r: InstanceDump) -> list[str]:
    """From `VRRP Instance = NAME` to `Multicast address`."""
    c = r.cfg
    out = [f" VRRP Instance = {c.name}", f"   VRRP Version = {c.version}"]
    if c.family == 6:
        out.append("   Using Native IPv6")
    if c.sync_group:
        out.append(f"   Sync group = {c.sync_group}")
    out.append(f"   State = {r.state}")
    if r.state == "BACKUP" and r.master_src:
        out += [
            f"   Master router = {r.master_src}",
            f"   Master priority = {r.master_priority}",
            f"   Master advert int = {r.master_adver_int_ms / 1000:.2f} sec",
        ]
    if c.unicast_peers:
        out += ["   Flags:", "     Using unicast"]
    else:
        out.append("   Flags:" if c.use_vmac else "   Flags: none")
    out += [
        f"   Wantstate = {r.state}",
        "   Number of config faults = 0",
        f"   Number of interface and track script faults = {r.faults}",
        "   Number of track scripts init = 0",
        f"   Last transition = {_when(r.last_transition)}",
        f"   Read timeout = {_when(r.read_timeout) if r.read_timeout is not None else 'DISABLED'}",
        f"   Master down timer = {r.master_down_us} usecs",
    ]
    if r.parent_ifname:
        out += [
            f"   Use VMAC, i/f name {r.ifname}, is_up = {_yes(r.vmac_up)}, "
            f"xmit_base = {_yes(c.vmac_xmit_base)}",
            f"   Interface = {r.ifname}, vmac on {r.parent_ifname}",
        ]
    else:
        out.append(f"   Interface = {r.ifname}")
    from_cfg = c.unicast_src_ip is not None or c.mcast_src_ip is not None
    out.append(f"   Using src_ip = {r.src_ip}{' (from configuration)' if from_cfg else ''}")
    if not c.unicast_peers:
        if c.family == 6:
            out.append(f"   Multicast address {c.mcast_dst_ip or 'ff02::12'}, ifindex {r.ifindex}")
        else:
            out.append(f"   Multicast address {c.mcast_dst_ip or '224.0.0.18'}")
    return out


def _instance_timers(r: InstanceDump) -> list[str]:
    """From the garp_* settings to `Promote_secondaries`."""
    c = r.cfg
    out = [
        f"   Gratuitous ARP delay = {c.garp_master_delay_ms // 1000}",
        f"   Gratuitous ARP repeat = {c.garp_master_repeat}",
        f"   Gratuitous ARP refresh = {c.garp_master_refresh_ms // 1000}",
        f"   Gratuitous ARP refresh repeat = {c.garp_master_refresh_repeat}",
        f"   Gratuitous ARP lower priority delay = {c.garp_lower_prio_delay_ms // 1000}",
        f"   Gratuitous ARP lower priority repeat = {c.garp_lower_prio_repeat}",
        f"   Down timer adverts = {c.down_timer_adverts}",
        *(  # fastvrrp's own, shown only when set (keepalived has no such line)
            [f"   Advert copies = {c.advert_copies}, {c.advert_copy_delay_ms / 1000:g} secs apart"]
            if c.advert_copies > 1
            else []
        ),
        f"   Send advert after receive lower priority advert = {_yes(not c.lower_prio_no_advert)}",
        f"   Send advert after receive higher priority advert = {_yes(c.higher_prio_send_advert)}",
        f"   Virtual Router ID = {c.virtual_router_id}",
        f"   Priority = {c.priority}",
        f"   Effective priority = {r.effective_priority}",
        f"   Total priority = {r.effective_priority}",
        f"   Advert interval = {_interval_text(c.advert_int_ms)}",
    ]
    if r.state == "BACKUP":
        out.append(f"   Master advert interval = {_interval_text(r.master_adver_int_ms)}")
    out += [
        f"   Accept = {_yes(c.accept, 'enabled', 'disabled')}",
        f"   Preempt = {_yes(c.preempt, 'enabled', 'disabled')}",
    ]
    if c.preempt_delay_ms:
        out.append(f"   Preempt delay = {_seconds(c.preempt_delay_ms)} secs")
    out.append(f"   Promote_secondaries = {_yes(c.promote_secondaries, 'enabled', 'disabled')}")
    if c.auth_type == "PASS":
        out += ["   Authentication type = SIMPLE_PASSWORD", f"   Password = {c.auth_pass or ''}"]
    elif c.auth_type == "AH":
        out += ["   Authentication type = IPSEC_AH", f"   Password = {c.auth_pass or ''}"]
    return out


def _instance_lists(
    r: InstanceDump, scripts: Mapping[str, Any], files: Mapping[str, Any] | None = None
) -> list[str]:
    """Addresses, unicast peers, sockets, routes, rules, trackers and notify scripts."""
    c = r.cfg
    out = [f"   Virtual IP ({len(c.virtual_ipaddress)}):"]
    out += [f"     {_address_text(v, _dev(r), r.vipset)}" for v in c.virtual_ipaddress]
    if c.virtual_ipaddress_excluded:
        out.append("   Virtual IP Excluded :")
        out += [f"     {_address_text(v, _dev(r), r.vipset)}" for v in c.virtual_ipaddress_excluded]
    if c.unicast_peers:
        out += [
            f"   Unicast TTL = {c.unicast_ttl or 255}",
            f"   Check unicast src : {_yes(c.check_unicast_src, 'yes', 'no')}",
        ]
        out.append("   Unicast Peer :")
        for p in c.unicast_peers:
            out.append(
                f"     {p.address} min_ttl {p.min_ttl or 0} max_ttl {255 if p.max_ttl is None else p.max_ttl}"
            )
        out.append(f"   Unicast checksum compatibility = {_yes(c.v3_checksum_as_v2, 'yes', 'no')}")
    out.append(f"   fd_in {r.fd_in}, fd_out {r.fd_out}")
    if c.virtual_routes:
        out += ["   Virtual Routes :", *(f"     {rt.text}" for rt in c.virtual_routes)]
    if c.virtual_rules:
        out += ["   Virtual Rules :", *(f"     {ru.text}" for ru in c.virtual_rules)]
    if c.track_interface:
        out += [
            "   Tracked interfaces :",
            *(f"     {t.name} weight {t.weight or 0}" for t in c.track_interface),
        ]
    if c.track_script:
        out.append("   Tracked scripts :")
        for t in c.track_script:
            w = t.weight if t.weight is not None else getattr(scripts.get(t.name), "weight", 0)
            out.append(f"     {t.name} weight {w}")
    if c.track_file:
        out.append("   Tracked files :")
        for t in c.track_file:
            w = t.weight if t.weight is not None else getattr((files or {}).get(t.name), "weight", 0)
            out.append(f"     {t.name}, weight {w}")
    if c.track_process:
        out += [
            "   Tracked processes :",
            *(f"     {t.name}, weight {t.weight or 0}" for t in c.track_process),
        ]
    out += [
        "   Using smtp notification = no",
        f"   Notify deleted = {'Deleted' if c.notify_deleted is not None else 'Fault'}",
    ]
    for attr, _key, label in _NOTIFY:
        s = getattr(c, attr, None)
        if s is not None:
            out.append(f"   {label} = {_script_text(s.command)}, uid:gid {_uid_gid(s.user, s.group)}")
    out.append(f"   Notify priority changes = {_yes(c.notify_priority_changes)}")
    return out


def _sync_group_lines(groups: Mapping[str, Any], states: Mapping[str, str]) -> list[str]:
    out = ["------< VRRP Sync groups >------"] if groups else []
    for name, g in groups.items():
        member_states = [states.get(m, "INIT") for m in g.group]
        state = member_states[0] if member_states and len(set(member_states)) == 1 else "BACKUP"
        out += [
            f" VRRP Sync Group = {name}, {state}",
            f"   Num member fault {member_states.count('FAULT')}, "
            f"num member init {member_states.count('INIT')}",
            "   VRRP member instances :",
            *(f"     {m}" for m in g.group),
            "   Using smtp notification = no",
        ]
        for attr, _key, label in _NOTIFY:
            s = getattr(g, attr, None)
            if s is not None:
                out.append(f"   {label} = {_script_text(s.command)}, uid:gid {_uid_gid(s.user, s.group)}")
    return out


def _script_lines(
    scripts: Sequence[ScriptDump], default_user: str | None, default_group: str | None
) -> list[str]:
    out = ["------< VRRP Scripts >------"] if scripts else []
    for s in scripts:
        c = s.cfg
        out += [
            f" VRRP Script = {c.name}",
            f"   Command = {_script_text(c.script)}",
            f"   Interval = {c.interval_ms // 1000} sec",
            f"   Timeout = {(c.timeout_ms or 0) // 1000} sec",
            f"   Weight = {c.weight}",
            f"   Rise = {c.rise}",
            f"   Fall = {c.fall}",
            f"   Result = {c.rise if s.up else 0}",
            "   Insecure = no",
            "   Init state = unknown",
            f"   Status = {'GOOD' if s.up else 'BAD' if s.up is False else 'INIT'}",
            f"   Script uid:gid = {_uid_gid(c.user or default_user, c.group or default_group)}",
            "   VRRP instances :",
            "   Tracking instances :",
            *(f"     {name}, weight {w}" for name, w in s.users),
            "   State = idle",
        ]
    return out


def topology_text(
    rows: Sequence[InstanceDump], scripts: Mapping[str, Any], files: Mapping[str, Any] | None = None
) -> str:
    """The `VRRP Instance = NAME` sections of `rows` (scripts, files: vrrp_script / track_file name -> its
    configuration)."""
    out: list[str] = []
    for r in rows:
        out += _instance_head(r) + _instance_timers(r) + _instance_lists(r, scripts, files)
    return "".join(line + "\n" for line in out)


def data_head(global_defs: Any, static_addresses: Sequence[Any] = ()) -> str:
    """`Global definitions`, `Static Addresses` (all set while the daemon runs) and the topology's title."""
    lines = _global_lines(global_defs)
    if static_addresses:
        dev = global_defs.default_interface
        lines += ["------< Static Addresses >------"]
        lines += [f"     {_address_text(va, dev, True)}" for va in static_addresses]
    return "".join(line + "\n" for line in [*lines, "------< VRRP Topology >------"])


def data_tail(
    rows: Sequence[InstanceDump],
    global_defs: Any,
    scripts: Sequence[ScriptDump],
    sync_groups: Mapping[str, Any],
    files: Sequence[ScriptDump] = (),
) -> str:
    """`VRRP Sync groups`, `VRRP Scripts` and `VRRP Track files`."""
    out = _sync_group_lines(sync_groups, {r.cfg.name: r.state for r in rows})
    out += _script_lines(scripts, global_defs.script_user, global_defs.script_group)
    out += _track_file_lines(files)
    return "".join(line + "\n" for line in out)


def _track_file_lines(files: Sequence[ScriptDump]) -> list[str]:
    out = ["------< VRRP Track files >------"] if files else []
    for f in files:
        c = f.cfg
        out += [
            f" Track file = {c.name}",
            f"   File = {c.file}",
            f"   Status = {f.value if f.value is not None else c.init_value}",
            f"   Weight = {c.weight}",
            "   Tracking instances :",
            *(f"     {name}, weight {w}" for name, w in f.users),
        ]
    return out


def render_data(
    rows: Sequence[InstanceDump],
    global_defs: Any,
    scripts: Sequence[ScriptDump] = (),
    sync_groups: Mapping[str, Any] | None = None,
    files: Sequence[ScriptDump] = (),
    static_addresses: Sequence[Any] = (),
) -> str:
    """/tmp/keepalived.data: `Global definitions` (the part fastvrrp has), `Static Addresses`, `VRRP
    Topology` with one `VRRP Instance = NAME` section per instance, `VRRP Sync groups`, `VRRP Scripts` and
    `VRRP Track files`."""
    by_name = {s.cfg.name: s.cfg for s in scripts}
    return (
        data_head(global_defs, static_addresses)
        + topology_text(rows, by_name, {f.cfg.name: f.cfg for f in files})
        + data_tail(rows, global_defs, scripts, sync_groups or {}, files)
    )


# --- writing ------------------------------------------------------------------------------------------------
def write_atomic(path: str, text: str) -> None:
    """Write `text` to `path`: a temporary file in the same directory (mode 0600), then rename over it."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:  # mkstemp makes it 0600
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
