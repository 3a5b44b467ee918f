"""use_vmac: a macvlan carrying the virtual router MAC (RFC 5798 7.3), made and removed with pyroute2.

Every function here blocks: the daemon runs them in its netlink worker thread (`NetlinkWorker.call`,
docs/kernel-notes.md#uvloop-and-pyroute2). The interface is made in `private` mode (keepalived's default): a
multicast frame whose source is a local macvlan's MAC is then handed to that macvlan, so a backup's VMAC,
which has the same MAC as the master's, still receives the master's adverts (in `bridge` mode the kernel would
skip it).

Order matters (docs/kernel-notes.md#vmac-ipv6-link-local): addr_gen_mode=none is set before the link goes up,
so no EUI-64 link-local is derived from the VMAC (RFC 5798 7.4); for IPv6 the parent's link-local is then
copied onto the VMAC, without which sending to ff02::12 from it fails with EADDRNOTAVAIL. The kernel settings
the VMAC and its parent need (arp_ignore, arp_filter, accept_local, rp_filter,
docs/kernel-notes.md#vmac-sysctls) go through io/sysctl.py, which restores them on exit.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

IFA_F_NODAD = 0x02
ADDR_GEN_MODE_NONE = 1  # IN6_ADDR_GEN_MODE_NONE
IFNAMSIZ = 16


def vmac_mac(vrid: int, family: int, override: str | None = None) -> str:
    """00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6), RFC 5798 7.3; keepalived also takes a MAC,
    or five octets completed with the VRID."""
    if not 1 <= vrid <= 255:
        raise ValueError(f"VRID {vrid} outside 1-255")
    if override:
        parts = override.lower().split(":")
        if len(parts) == 5:
            parts.append(f"{vrid:02x}")
        if len(parts) != 6 or not all(len(p) in (1, 2) and int(p, 16) >= 0 for p in parts):
            raise ValueError(f"bad MAC address {override!r}")
        return ":".join(f"{int(p, 16):02x}" for p in parts)
    return f"00:00:5e:00:{1 if family == 4 else 2:02x}:{vrid:02x}"


def vmac_name(prefix: str, vrid: int, family: int, given: str | None = None) -> str:
    """The interface name: as given in `use_vmac NAME`, else <prefix>.<vrid> (IPv6: <prefix>6.<vrid>)."""
    name = given or (f"{prefix}.{vrid}" if family == 4 else f"{prefix}6.{vrid}")
    if not 0 < len(name.encode()) < IFNAMSIZ or "/" in name or name in (".", ".."):
        raise ValueError(f"bad interface name {name!r}")
    return name


@dataclass(frozen=True, slots=True)
class Vmac:
    name: str
    index: int
    parent: str
    mac: str
    created: bool  # False: it existed already (a crashed run, or made by hand) and was reused


def create(ipr: Any, parent: str, name: str, mac: str, family: int, mode: str = "private") -> Vmac:
    """Make (or reuse) the macvlan `name` on `parent` with `mac`, set up as described in the module docstring;
    return it. Raises LookupError if the parent does not exist, pyroute2's NetlinkError on kernel refusal."""
    found = ipr.link_lookup(ifname=parent)
    if not found:
        raise LookupError(f"interface {parent} does not exist")
    pidx = found[0]
    created = False
    existing = ipr.link_lookup(ifname=name)
    if existing:
        idx = existing[0]
        link = ipr.link("get", index=idx)[0]
        info = link.get(("IFLA_LINKINFO", "IFLA_INFO_KIND"))
        if info != "macvlan" or link.get("IFLA_LINK") != pidx:
            raise ValueError(f"{name} exists and is not a macvlan on {parent}")
        if (link.get("IFLA_ADDRESS") or "").lower() != mac:
            ipr.link("set", index=idx, state="down")
            ipr.link("set", index=idx, address=mac)
    else:
        ipr.link("add", ifname=name, kind="macvlan", link=pidx, macvlan_mode=mode, address=mac)
        idx = ipr.link_lookup(ifname=name)[0]
        created = True
    # RFC 5798 7.4: no interface identifier from the VMAC; effective on the next up, so before it.
    ipr.link(
        "set",
        index=idx,
        IFLA_AF_SPEC={"attrs": [["AF_INET6", {"attrs": [["IFLA_INET6_ADDR_GEN_MODE", ADDR_GEN_MODE_NONE]]}]]},
    )
    ipr.link("set", index=idx, state="up")
    if family == 6:
        copy_link_local(ipr, pidx, idx)
    return Vmac(name, idx, parent, mac, created)


def copy_link_local(ipr: Any, parent_index: int, index: int) -> None:
    """Give the VMAC the parent's IPv6 link-local address (the source of IPv6 adverts, RFC 5798 5.1.2.1)."""
    from pyroute2.netlink.exceptions import NetlinkError

    for m in ipr.addr("dump", index=parent_index, family=socket.AF_INET6):
        if m["scope"] == 253:
            addr = m.get("IFA_ADDRESS")
            try:
                ipr.addr("add", index=index, address=addr, prefixlen=64, flags=IFA_F_NODAD)
            except NetlinkError as exc:
                if exc.code != 17:  # EEXIST: already there
                    raise
            return


def delete(ipr: Any, name: str) -> bool:
    """Remove the macvlan; False if it was already gone."""
    from pyroute2.netlink.exceptions import NetlinkError

    found = ipr.link_lookup(ifname=name)
    if not found:
        return False
    try:
        ipr.link("del", index=found[0])
    except NetlinkError as exc:
        if exc.code == 19:  # ENODEV: gone meanwhile
            return False
        raise
    return True
