"""use_vmac: the macvlan interface an instance runs on (its adverts, VIPs and gratuitous ARPs), with the
kernel settings it needs on it and on its parent; made when the instance is added, deleted on exit. The
netlink calls are io/vmac.py's.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging

from fastvrrp.config import ConfigError, InstanceConfig, Problem
from fastvrrp.daemon.links import AF
from fastvrrp.daemon.sysctls import Sysctls
from fastvrrp.io import netlink, sysctl, vmac

log = logging.getLogger("fastvrrp")


class VmacInterfaces:
    def __init__(self, nl: netlink.NetlinkWorker, sysctls: Sysctls) -> None:
        self.nl = nl
        self.sysctls = sysctls
        self.made: dict[str, vmac.Vmac] = {}  # by interface name

    async def run_on_vmac(self, icfg: InstanceConfig, prefix: str) -> InstanceConfig:
        """The configuration the instance runs with: `icfg` itself without use_vmac; else the VMAC (made now,
        named with `prefix`) as its interface, with the parent's primary address as its source
        (keepalived.conf(5) use_vmac)."""
        if not icfg.use_vmac or not icfg.interface:
            return icfg
        fam = icfg.family
        parent = icfg.interface
        try:
            name = vmac.vmac_name(prefix, icfg.virtual_router_id, fam, icfg.vmac_name)
            mac = vmac.vmac_mac(icfg.virtual_router_id, fam, icfg.vmac_mac)
        except ValueError as exc:
            raise ConfigError([Problem(icfg.file, icfg.line, f"use_vmac: {exc}")]) from None
        src = icfg.unicast_src_ip or icfg.mcast_src_ip
        primary = str(src) if src is not None else await self.nl.primary_address(parent, AF[fam])
        if primary is None:
            why = f"interface {parent} has no IPv{fam} address to send from"
            raise ConfigError([Problem(icfg.file, icfg.line, why)])
        settings = sysctl.vmac_settings(parent, name)
        # Nor may the parent put a VIP in its own ARP requests (it would teach the VIP with the parent's MAC,
        # docs/kernel-notes.md#vmac-sysctls: arp_announce=2).
        settings.append((sysctl.conf_path(4, parent, "arp_announce"), 2))
        if fam == 4:
            # A backup's VMAC must not send IGMP reports for 224.0.0.18 from the VMAC: a learning switch
            # would then send the VIP's traffic to the backup (keepalived: disable_local_igmp).
            settings.append(("net/ipv4/igmp_link_local_mcast_reports", 0))
        own = [(p, v) for p, v in settings if f"/conf/{name}/" in p]  # exist once the VMAC does
        for path, value in settings:
            if (path, value) not in own:
                self.sysctls.set(path, value)
        try:
            v = await self.nl.call(vmac.create, parent, name, mac, fam)
        except Exception as exc:
            why = f"cannot create the VMAC interface {name} on {parent}: {exc}"
            raise ConfigError([Problem(icfg.file, icfg.line, why)]) from None
        self.made[name] = v
        for path, value in own:
            self.sysctls.set(path, value)
        self.sysctls.report(icfg.name)
        log.info("(%s) using VMAC %s (%s) on %s", icfg.name, name, mac, parent)
        addr = ipaddress.ip_address(primary)
        if icfg.unicast_peers:
            return dataclasses.replace(icfg, interface=name, unicast_src_ip=addr)
        return dataclasses.replace(icfg, interface=name, mcast_src_ip=addr)

    async def delete_all(self) -> None:
        """On exit: the VMACs this run made go (one it found already there stays)."""
        for name, v in list(self.made.items()):
            if v.created:
                try:
                    await self.nl.call(vmac.delete, name)
                except Exception:
                    log.exception("cannot delete the VMAC interface %s", name)
        self.made.clear()
