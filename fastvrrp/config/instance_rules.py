"""The checks and defaults of a vrrp_instance once the whole configuration is read: one function per rule.

Each rule reads the InstanceState, reports what is wrong at the statement it is about and says whether the
instance is still good; `finish_instance` runs them in order and builds the InstanceConfig.
"""

from __future__ import annotations

from typing import Any

from .instance import InstanceState, build_instance
from .lexer import Node
from .model import GlobalDefs, InstanceConfig, TrackRef, VirtualAddress
from .values import Reporter

# (instance field, the definitions it may name, what they are called in messages)
TrackerTables = tuple[tuple[str, dict[str, Any], str], ...]


def required(r: Reporter, st: InstanceState, where: str) -> bool:
    """virtual_router_id and interface (reported only when no statement for them was there at all)."""
    ok = True
    kids = st.node.children or ()
    if st.virtual_router_id is None:
        if not any(k.kw == "virtual_router_id" for k in kids):
            r.err(st.node, f"{where}: virtual_router_id is required")
        ok = False
    if st.interface is None:
        if not any(k.kw == "interface" for k in kids):
            r.err(st.node, f"{where}: interface is required")
        ok = False
    return ok


def family(r: Reporter, st: InstanceState, where: str) -> tuple[int, bool]:
    """The address family: from the VIPs (RFC 5798 5.2.9: one family per virtual router), else the source
    address, native_ipv6 or the peers; every address given must be of that family."""
    ok = True
    vips = st.virtual_ipaddress or ()
    fam = 0
    if vips:
        fam = vips[0].family
        if len(vips) > 1 and any(vip.family != fam for vip in vips):
            kept, kept_at = [], []
            for vip, k in zip(vips, st.virtual_ipaddress_at or (), strict=True):
                if vip.family != fam:
                    # keepalived 2.2.7: "(VI_1): address family must match VRRP instance [...] - ignoring"
                    r.adjust(
                        k,
                        f"{where}: {vip.address} is IPv{vip.family} but the instance is IPv{fam} (its first "
                        "virtual address): ignored, as keepalived does (virtual_ipaddress_excluded takes "
                        "either family)",
                    )
                    continue
                kept.append(vip)
                kept_at.append(k)
            st.virtual_ipaddress, st.virtual_ipaddress_at = tuple(kept), kept_at
    if st.unicast_src_ip is not None or st.mcast_src_ip is not None:
        for fld, a, at in (
            ("unicast_src_ip", st.unicast_src_ip, st.unicast_src_ip_at),
            ("mcast_src_ip", st.mcast_src_ip, st.mcast_src_ip_at),
        ):
            if a is not None:
                if fam and a.version != fam:
                    r.err(at, f"{where}: {fld} {a} is not IPv{fam} like the VIPs")  # type: ignore[arg-type]
                    ok = False
                fam = fam or a.version
    peers = st.unicast_peers
    if not fam:
        fam = 6 if st.native_ipv6 else (peers[0].address.version if peers else 4)
    if peers:
        for p, k in zip(peers, st.unicast_peers_at or (), strict=True):
            if p.address.version != fam:
                r.err(k, f"{where}: unicast peer {p.address} is not IPv{fam}")
                ok = False
    md = st.mcast_dst_ip
    if md is not None and (md.version != fam or not md.is_multicast):
        r.err(st.mcast_dst_ip_at, f"{where}: mcast_dst_ip {md} must be an IPv{fam} multicast address")  # type: ignore[arg-type]
        ok = False
    return fam, ok


def ipv6_version(r: Reporter, st: InstanceState, where: str) -> bool:
    """IPv6 is VRRPv3 only (RFC 5798 introduced IPv6): an IPv6 instance may not ask for version 2."""
    if st.version == 2:
        r.err(st.version_at, f"{where}: VRRP version 2 does not support IPv6")  # type: ignore[arg-type]
        return False
    return True


def preempt(r: Reporter, st: InstanceState, state: str, priority: int, where: str) -> bool:
    """nopreempt cannot work for the address owner, nor with state MASTER."""
    if st.preempt is not False:
        return True
    ok = True
    if priority == 255:
        # keepalived 2.2.7: "nopreempt is incompatible with priority 255. resetting nopreempt"
        node = st.preempt_at or st.node
        why = "priority 255" if st.priority is not None else "priority 255 (the default for state MASTER)"
        r.adjust(node, f"{where}: nopreempt cannot work with {why}: preempting, as keepalived does")
        st.preempt = None
        return True
    if state == "MASTER" and priority != 255:
        r.err(st.state_at, f"{where}: nopreempt cannot work with state MASTER")  # type: ignore[arg-type]
        ok = False
    return ok


def advert_ms(r: Reporter, st: InstanceState, version: int, where: str) -> tuple[int, bool]:
    """Advertisement interval: v2 whole seconds in 1..255 (RFC 3768 5.3.7); v3 centiseconds in 1..4095
    (RFC 5798 5.2.7)."""
    v, k = st.advert_int, st.advert_int_at
    if v is None or k is None:
        return 1000, True
    if version == 2:
        if 0 < v <= 255 and v != int(v):
            # keepalived 2.2.7: "VRRPv2 advertisement interval 0.100000s must be an integer. rounding"
            secs = max(1, int(v + 0.5))
            r.adjust(k, f"{where}: advert_int {k.args[0]} is not a whole number of seconds (VRRPv2): "
                     f"using {secs} s, as keepalived does")  # fmt: skip
            return secs * 1000, True
        if v != int(v) or not 1 <= v <= 255:
            r.err(k, f"{where}: advert_int {k.args[0]} is not valid for VRRPv2 (whole seconds 1-255)")
            return 1000, False
        return int(v) * 1000, True
    cs = v * 100
    if cs > 4095:
        # keepalived 2.2.7: "VRRPv3 advertisement interval 50.00s is out of range. Must be less than
        # 40.96s. Setting to 40.95s"
        r.adjust(
            k,
            f"{where}: advert_int {k.args[0]} is over the VRRPv3 maximum: using 40.95 s, as keepalived does",
        )
        return 40950, True
    if abs(cs - round(cs)) > 1e-6 or not 1 <= round(cs) <= 4095:
        r.err(
            k,
            f"{where}: advert_int {k.args[0]} is not valid for VRRPv3 "
            f"(a multiple of 0.01 s from 0.01 to 40.95)",
        )
        return 1000, False
    return round(cs) * 10, True


COPY_DELAY_MS = 5  # advert_copy_delay when not given, unless the copies need less to fit in the interval


def advert_copies(r: Reporter, st: InstanceState, adv_ms: int, where: str) -> bool:
    """fastvrrp's advert_copies N / advert_copy_delay (docs/rfc-checklist.md#advert-copies): the last copy
    of an advert must go out before the next advert, (N - 1) x delay < advert_int. Without a delay the
    copies are 5 ms apart, or advert_int / N when that is shorter."""
    n = st.advert_copies or 1
    if st.advert_copy_delay_ms is None:
        st.advert_copy_delay_ms = max(1, min(COPY_DELAY_MS, adv_ms // n))
    delay = st.advert_copy_delay_ms
    if n > 1 and (n - 1) * delay >= adv_ms:
        at = st.advert_copy_delay_ms_at or st.advert_copies_at or st.node
        r.err(
            at,
            f"{where}: advert_copies {n} at advert_copy_delay {delay / 1000:g} s do not fit in the "
            f"advert interval of {adv_ms / 1000:g} s: the last copy would go at {(n - 1) * delay / 1000:g} s "
            f"(needs (copies - 1) x delay < advert_int)",
        )
        return False
    return True


def authentication(r: Reporter, st: InstanceState, version: int, strict: bool, where: str) -> bool:
    """Authentication exists only in VRRPv2 (RFC 3768 5.3.6 deprecates it; RFC 5798 removes it)."""
    an = st.auth_at
    if an is None:
        return True
    if version == 3 or strict:
        # keepalived 2.2.7: "VRRP version 3 does not support authentication. Ignoring." and "Strict mode
        # does not support authentication. Ignoring."
        why = "VRRP version 3 does not support" if version == 3 else "strict mode does not allow"
        r.adjust(an, f"{where}: {why} authentication: advertising without it, as keepalived does")
        st.auth_type = st.auth_pass = None
        st.auth_at = None
        return True
    if st.auth_type is None:
        if not st.auth_type_given:
            r.err(an, f"{where}: authentication without auth_type")
    elif st.auth_pass is None:
        r.err(an, f"{where}: authentication without auth_pass")
    else:
        if st.auth_type != "AH":
            return True
        # Advertising without AH would make a keepalived peer using AH drop our adverts: both masters.
        r.err(
            an,
            f"{where}: auth_type AH (IPsec-AH) is not implemented by fastvrrp; advertising without it would "
            "make peers using AH drop our adverts (and both become master)",
        )
    return False


def no_vips(r: Reporter, st: InstanceState, version: int, where: str) -> bool:
    """An instance without virtual_ipaddress (strict mode reports its own): keepalived 2.2.7 refuses it
    under VRRPv3 ("(VI_1) No VIP specified; at least one is required") and starts it under VRRPv2 ("... at
    least one is sensible"), advertising no address."""
    if version == 3:
        r.err(st.node, f"{where}: VRRPv3 needs at least one virtual_ipaddress (keepalived refuses it too)")
        return False
    r.adjust(st.node, f"{where}: no virtual_ipaddress: advertising no address (VRRPv2), as keepalived does")
    return True


def strict_accept(r: Reporter, st: InstanceState, version: int, where: str) -> bool:
    """Strict mode: RFC 3768 (VRRPv2) has no accept mode."""
    if version == 2 and st.accept is True:
        r.err(st.accept_at, f"{where}: strict mode does not allow accept mode with VRRP version 2")  # type: ignore[arg-type]
        return False
    return True


def strict_mode(r: Reporter, st: InstanceState, state: str, priority: int, where: str) -> bool:
    """The rest of keepalived's vrrp_strict / strict_mode list (keepalived.conf(5)); keepalived 2.2.7 logs
    most of these and resets the setting, fastvrrp refuses the configuration instead."""
    problems: list[tuple[Node | None, str]] = []
    vips: tuple[VirtualAddress, ...] = st.virtual_ipaddress or ()
    vip_at = st.virtual_ipaddress_at[0] if st.virtual_ipaddress_at else None
    if not vips:
        problems.append((None, "needs at least one virtual_ipaddress (RFC 5798 5.2.6)"))
    elif vips[0].family == 6 and not vips[0].address.is_link_local:
        problems.append((vip_at, "needs a link-local first IPv6 VIP (RFC 5798 5.2.9)"))
    if st.unicast_peers:
        problems.append(
            (st.unicast_peer_at, "does not allow unicast peers (RFC 5798 5.1.1.2: multicast only)")
        )
    if (state == "MASTER") != (priority == 255):
        # RFC 5798 6.4.1: only the address owner starts as master.
        problems.append(
            (st.state_at, "allows state MASTER if and only if priority is 255 (the address owner)")
        )
    if st.preempt_delay_ms:
        problems.append((st.preempt_delay_ms_at, "does not allow preempt_delay (not in RFC 5798)"))
    if st.lower_prio_no_advert is False:
        problems.append((st.lower_prio_no_advert_at, "does not allow clearing lower_prio_no_advert"))
    if st.higher_prio_send_advert:
        problems.append((st.higher_prio_send_advert_at, "does not allow higher_prio_send_advert"))
    if st.vmac_xmit_base:
        problems.append((st.vmac_xmit_base_at, "does not allow vmac_xmit_base"))
    for at, why in problems:
        r.err(at or st.node, f"{where}: strict mode {why}")
    return not problems


def tracker_refs(r: Reporter, st: InstanceState, priority: int, trackers: TrackerTables, where: str) -> bool:
    """Every track_script / track_file / track_process names a definition; the address owner tracks with
    weight 0 only."""
    if st.track_script is None and st.track_file is None and st.track_process is None:
        return True
    ok = True
    for field, table, what in trackers:
        refs = getattr(st, field)
        if refs is None:
            continue
        if priority != 255:
            for ref in refs:
                if ref.name not in table:
                    break
            else:
                continue  # the common case: every reference names a definition, nothing to drop or judge
        kept, kept_at = [], []
        for ref, k in zip(refs, getattr(st, field + "_at") or (), strict=True):
            if ref.name not in table:
                # keepalived 2.2.7: "(VI_1) track script nosuch not found, ignoring..."
                r.adjust(k, f"{where}: {field} '{ref.name}' names no {what}: not tracked, as keepalived does")
                continue
            if priority == 255 and _weight(ref, table):
                done = unweighted(field, ref, table, owner=True)
                if done is None:
                    r.err(
                        k,
                        f"{where}: the address owner (priority 255) cannot track '{ref.name}' with a "
                        f"weight (use weight 0)",
                    )
                    ok = False
                else:
                    r.adjust(k, f"{where}: {field} '{ref.name}' has a weight, which the address owner "
                             f"(priority 255) ignores: {done[1]}, as keepalived does")  # fmt: skip
                    if done[0] is None:
                        continue
                    ref = done[0]
            kept.append(ref)
            kept_at.append(k)
        if len(kept) != len(refs) or any(a is not b for a, b in zip(kept, refs, strict=False)):
            setattr(st, field, tuple(kept))
            setattr(st, field + "_at", kept_at)
    return ok


def track_interfaces(r: Reporter, st: InstanceState, priority: int, where: str) -> None:
    """keepalived 2.2.7 drops a track_interface naming the instance's own interface ("(VI_1) Ignoring
    track_interface eth0 since own interface": it is tracked anyway, down = FAULT) and a weighted one of the
    address owner ("(VI_1) ignoring eth1 tracked interface due to address owner")."""
    refs = st.track_interface or ()
    kept, kept_at = [], []
    for ref, k in zip(refs, st.track_interface_at or (), strict=True):
        if ref.name == st.interface:
            r.adjust(k, f"{where}: track_interface {ref.name} is the instance's own interface, which it "
                     "tracks anyway (down: FAULT): ignored, as keepalived does")  # fmt: skip
        elif priority == 255 and ref.weight:
            r.adjust(k, f"{where}: track_interface '{ref.name}' has a weight, which the address owner "
                     "(priority 255) ignores: not tracked, as keepalived does")  # fmt: skip
        else:
            kept.append(ref)
            kept_at.append(k)
    if len(kept) != len(refs):
        st.track_interface, st.track_interface_at = tuple(kept), kept_at


def unweighted(
    field: str, ref: TrackRef, table: dict[str, Any] | None, owner: bool
) -> tuple[TrackRef | None, str] | None:
    """What keepalived 2.2.7 makes of a weighted reference where weights are ignored (a member of a sync group
    without sync_group_tracking_weight, or the address owner): (the reference kept, None if it is dropped;
    what was done), or None where fastvrrp refuses instead (track_process: keepalived keeps its weight).

    keepalived: a weighted track_script is not tracked ("ignoring tracked script chk with weights due to
    SYNC group"); a track_file at weight 1 (the default) is tracked with weight 0, at any other weight not
    tracked; a weighted track_interface is tracked with weight 0 (down: FAULT) in a sync group, not at all by
    the address owner."""
    if field == "track_process":
        return None
    w = ref.weight if ref.weight is not None or table is None else getattr(table[ref.name], "weight", 0)
    if field == "track_interface" and not owner or field == "track_file" and w == 1:
        return TrackRef(ref.name, 0, ref.reverse), "tracked with weight 0"
    return None, "not tracked"


def _weight(ref: TrackRef, table: dict[str, Any]) -> Any:
    """The weight a reference tracks with: its own, else the definition's (interfaces have none)."""
    return ref.weight if ref.weight is not None else getattr(table[ref.name], "weight", 0)


def resolve_garp(st: InstanceState, gd: GlobalDefs) -> None:
    """garp_lower_prio_* default to garp_master_* (the instance's, else global_defs')."""
    if st.garp_master_delay_ms is not None or st.garp_lower_prio_delay_ms is not None:
        st.garp_lower_prio_delay_ms = _first_set(
            st.garp_lower_prio_delay_ms,
            gd.vrrp_garp_lower_prio_delay_ms,
            st.garp_master_delay_ms,
            gd.vrrp_garp_master_delay_ms,
        )
    if st.garp_master_repeat is not None or st.garp_lower_prio_repeat is not None:
        st.garp_lower_prio_repeat = _first_set(
            st.garp_lower_prio_repeat,
            gd.vrrp_garp_lower_prio_repeat,
            st.garp_master_repeat,
            gd.vrrp_garp_master_repeat,
        )


def _first_set(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def finish_instance(
    r: Reporter, st: InstanceState, gd: GlobalDefs, base: list[Any], trackers: TrackerTables
) -> InstanceConfig | None:
    """One instance's checks and defaults; None if it has a problem. `base` is the InstanceConfig field values
    of an instance that sets none of its own (instance_base); `trackers` what track_* may name."""
    # Each rule runs only where it can apply: this runs once per instance of configs with tens of thousands.
    where = f"vrrp_instance {st.name}"
    ok = True
    if st.virtual_router_id is None or st.interface is None:
        ok = required(r, st, where)
    fam, good = family(r, st, where)
    ok = good and ok
    ver = gd.vrrp_version if st.version is None else st.version
    if fam == 6:
        ok = ipv6_version(r, st, where) and ok
        ver = 3
    # keepalived makes `state MASTER` without a priority the address owner (255).
    state = st.state or "BACKUP"
    priority = st.priority if st.priority is not None else (255 if state == "MASTER" else 100)
    if st.preempt is False:
        ok = preempt(r, st, state, priority, where) and ok
    adv_ms = 1000
    if st.advert_int is not None:
        adv_ms, good = advert_ms(r, st, ver, where)
        ok = good and ok
    if st.advert_copies is not None:
        ok = advert_copies(r, st, adv_ms, where) and ok
    strict = gd.vrrp_strict if st.strict_mode is None else st.strict_mode
    if st.auth_at is not None:
        ok = authentication(r, st, ver, strict, where) and ok
    # vrrp_strict (keepalived.conf(5)): accept defaults to on for the address owner only (RFC 5798 6.1
    # Accept_Mode), and RFC 3768 has no accept mode at all.
    accept = st.accept if st.accept is not None else (priority == 255 if strict else True)
    if strict:
        if state == "MASTER" and priority != 255:
            # keepalived 2.2.7: "(VI_1) State MASTER must match being address owner", then starts it as BACKUP
            r.adjust(
                st.state_at or st.node,
                f"{where}: strict mode allows state MASTER only at priority 255 (the address owner): "
                "starting as BACKUP, as keepalived does",
            )
            state = "BACKUP"
        ok = strict_accept(r, st, ver, where) and ok
        ok = strict_mode(r, st, state, priority, where) and ok
    elif not st.virtual_ipaddress:
        ok = no_vips(r, st, ver, where) and ok
    if not ok:
        return None
    if not tracker_refs(r, st, priority, trackers, where):
        return None
    if st.track_interface:
        track_interfaces(r, st, priority, where)
    resolve_garp(st, gd)
    if st.lower_prio_no_advert is None:
        st.lower_prio_no_advert = gd.vrrp_lower_prio_no_advert or strict
    check_src = gd.vrrp_check_unicast_src if st.check_unicast_src is None else st.check_unicast_src
    peers = st.unicast_peers
    st.check_unicast_src = check_src or (
        any(p.min_ttl is not None or p.max_ttl is not None for p in peers) if peers else False
    )
    st.family, st.version, st.priority, st.state = fam, ver, priority, state
    st.preempt = st.preempt is not False
    st.advert_int_ms, st.accept, st.strict_mode = adv_ms, accept, strict
    return build_instance(st, base)
