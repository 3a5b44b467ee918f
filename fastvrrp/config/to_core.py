"""Adapter: a parsed vrrp_instance -> fastvrrp.core.types.InstanceParams (what the protocol core needs).

The instance's own source address (RFC 5798 6.4.3 tie-break; keepalived's primary address of the
interface, or unicast_src_ip / mcast_src_ip when configured) is known only at run time, so the caller
passes it in.
"""

from __future__ import annotations

import ipaddress

from fastvrrp.core.types import InstanceParams

from .model import InstanceConfig

AUTH_NONE = 0
AUTH_PASS = 1  # RFC 2338 5.3.6.1 simple text password
AUTH_AH = 2  # RFC 2338 5.3.6.2 IP Authentication Header (not implemented by fastvrrp)


def instance_config(
    inst: InstanceConfig, primary_ip: bytes | str | ipaddress.IPv4Address | ipaddress.IPv6Address
) -> InstanceParams:
    """Build the core's InstanceParams; `primary_ip` is packed bytes, text or an ipaddress object."""
    if isinstance(primary_ip, bytes):
        src = primary_ip
    else:
        src = ipaddress.ip_address(primary_ip).packed
    want = 4 if inst.family == 4 else 16
    if len(src) != want:
        raise ValueError(f"{inst.name}: primary_ip must be an IPv{inst.family} address")
    if inst.auth_type == "AH":
        raise ValueError(f"{inst.name}: IPsec-AH authentication is not implemented")
    auth_type = AUTH_PASS if inst.auth_type == "PASS" else AUTH_NONE
    # RFC 2338 5.3.10: the password is up to 8 octets, zero padded on the wire.
    pw = (inst.auth_pass or "").encode("utf-8", "surrogateescape")  # the file's bytes (see config.instance)
    auth_data = pw[:8].ljust(8, b"\0") if auth_type == AUTH_PASS else b""
    return InstanceParams(
        name=inst.name,
        vrid=inst.virtual_router_id,
        priority=inst.priority,
        version=inst.version,
        family=inst.family,
        adver_int_ms=inst.advert_int_ms,
        preempt=inst.preempt,
        preempt_delay_ms=inst.preempt_delay_ms,
        start_master=inst.state == "MASTER",
        primary_ip=src,
        addresses=tuple(a.address.packed for a in inst.virtual_ipaddress),
        auth_type=auth_type,
        auth_data=auth_data,
        lower_prio_no_advert=inst.lower_prio_no_advert,
        higher_prio_send_advert=inst.higher_prio_send_advert,
        skip_check_adv_addr=inst.skip_check_adv_addr,
        # keepalived garp_lower_prio_repeat (default garp_master_repeat) also acts on a lower priority heard.
        notify_lower_prio=inst.notify_master_rx_lower_pri is not None or inst.garp_lower_prio_repeat > 0,
        down_timer_adverts=inst.down_timer_adverts,
    )
