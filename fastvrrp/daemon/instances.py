"""Adding and removing one running instance: its VIP specs, its link and engine slot, its advert templates
and announcement schedule, what the Port keeps for it (`InstanceResources`), and the kernel extras it asks
for (use_vmac, promote_secondaries, virtual routes and rules, no_accept). Also, at start, the removal of
VIPs a crashed earlier run left behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastvrrp import _engine, _wire
from fastvrrp.config import Config, InstanceConfig, VirtualAddress
from fastvrrp.config.to_core import instance_config
from fastvrrp.core.instance import VrrpInstance
from fastvrrp.core.syncgroup import SyncMember
from fastvrrp.core.types import InstanceParams
from fastvrrp.daemon import notify, virtual_routes
from fastvrrp.daemon.driver import Driver, RunningInstance, make_templates
from fastvrrp.daemon.links import Link, Links, multicast_group
from fastvrrp.daemon.no_accept import NoAccept
from fastvrrp.daemon.promote_secondaries import promote_secondaries
from fastvrrp.daemon.sysctls import Sysctls
from fastvrrp.daemon.use_vmac import VmacInterfaces
from fastvrrp.io import announce, netlink, routes

log = logging.getLogger("fastvrrp")

SCOPES = {"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
_SETTINGS: dict[announce.AnnounceSettings, announce.AnnounceSettings] = {}  # a few distinct ones per config


@dataclass(eq=False, slots=True)
class InstanceResources:
    """What the daemon keeps per instance beside the driver's view."""

    cfg: InstanceConfig
    link: Link
    vips: list[netlink.VipSpec]
    add_batch: netlink.AddrBatch
    sender: announce.FrameSender
    scripts: notify.Scripts
    started: bool = False  # held back until its weight-0 trackers have a first result (keepalived)
    routes: tuple[routes.NetSpec, ...] = ()  # virtual_routes and virtual_rules, installed while MASTER
    no_accept: bool = False  # drop traffic to the VIPs while MASTER (not the owner, accept off)
    pace: tuple[object, int, int] | None = None  # (pacer key, ARP interval, NA interval ms): pacing()


def pacing(cfg: Config, ifname: str) -> tuple[object, int, int]:
    """Whose GARP / NA spacing applies on `ifname` (keepalived.conf(5)): the garp_group naming it (one
    pacer for all its interfaces; an interval it does not set is 0), else vrrp_garp_interval /
    vrrp_gna_interval of global_defs for that interface alone."""
    for i, g in enumerate(cfg.garp_groups):
        if ifname in g.interfaces:
            return ("garp_group", i), g.garp_interval_ms or 0, g.gna_interval_ms or 0
    gd = cfg.global_defs
    return ("interface", ifname), gd.vrrp_garp_interval_ms, gd.vrrp_gna_interval_ms


async def vip_specs(nl: netlink.NetlinkWorker, icfg: InstanceConfig) -> list[netlink.VipSpec]:
    """The instance's virtual_ipaddress and virtual_ipaddress_excluded as netlink wants them; an address on
    an interface that does not exist is logged and left out."""
    specs = []
    for va in (*icfg.virtual_ipaddress, *icfg.virtual_ipaddress_excluded):
        dev = va.dev or icfg.interface
        spec = await address_spec(nl, va, dev)
        if spec is None:
            log.error("(%s) interface %s of %s does not exist", icfg.name, dev, va.address)
        else:
            specs.append(spec)
    return specs


async def address_spec(
    nl: netlink.NetlinkWorker, va: VirtualAddress, dev: str | None
) -> netlink.VipSpec | None:
    """One address line (virtual or static) on interface `dev` as netlink wants it; None if there is no
    such interface."""
    ifindex = await nl.link_index(dev) if dev else None
    if ifindex is None:
        return None
    scope = va.scope or "global"
    return netlink.VipSpec(
        address=str(va.address),
        prefixlen=va.prefixlen,
        ifindex=ifindex,
        label=va.label,
        scope=int(scope) if scope.isdigit() else SCOPES.get(scope, 0),
        broadcast=va.broadcast_address(),
        peer=str(va.peer) if va.peer is not None else None,
        flags=sum(netlink.ADDRESS_FLAGS.get(w, 0) for w in set(va.flags)),
        dad="-nodad" in va.flags,
        preferred_lft=va.preferred_seconds(),
    )


async def remove_stale_vips(nl: netlink.NetlinkWorker, cfg: Config) -> None:
    """Addresses a crashed earlier run left behind would make two nodes hold the same VIP: remove them before
    any instance starts."""
    stale: list[netlink.VipSpec] = []
    for icfg in cfg.instances:
        stale.extend(await vip_specs(nl, icfg))
    removed = await nl.remove_stale(stale) if stale else []
    for spec in removed:
        log.info("removed %s/%d left behind by an earlier run", spec.address, spec.prefixlen)


class InstanceBuilder:
    """Adds running instances to `insts` and the driver, and removes them. Holds the shared pieces."""

    def __init__(
        self,
        engine: _engine.Engine,
        nl: netlink.NetlinkWorker,
        driver: Driver,
        insts: dict[str, RunningInstance],
        links: Links,
        sysctls: Sysctls,
        vmacs: VmacInterfaces,
        no_accept: NoAccept,
    ) -> None:
        self.engine = engine
        self.nl = nl
        self.driver = driver
        self.insts = insts
        self.links = links
        self.sysctls = sysctls
        self.vmacs = vmacs
        self.no_accept = no_accept

    async def add(self, conf: InstanceConfig, cfg: Config) -> RunningInstance:
        """Add the instance `conf` (as read) of `cfg`, not started yet. Raises ConfigError; a virtual route
        or rule that does not parse is found once the instance is in `insts`: it stays, without routes and
        without no_accept."""
        gd = cfg.global_defs
        icfg = await self.vmacs.run_on_vmac(conf, gd.vmac_prefix)  # use_vmac: runs on the VMAC
        promote_secondaries(self.sysctls, icfg)
        # vmac_xmit_base: the VIPs and announcements live on the VMAC, the adverts go out (and come in) on
        # the base interface, with its MAC (keepalived.conf(5)).
        sock_cfg = conf if (icfg is not conf and conf.vmac_xmit_base) else icfg
        link = await self.links.link_for(sock_cfg, multicast_group(sock_cfg, gd), len(cfg.instances))
        peers = [p.address.packed for p in icfg.unicast_peers]
        ccfg = instance_config(icfg, link.primary)
        slot = self.engine.add_slot(
            link.rx_id, icfg.virtual_router_id, icfg.version, ccfg.auth_type, ccfg.auth_data, peers or None
        )
        link.users += 1
        vips = await vip_specs(self.nl, icfg)
        resources = InstanceResources(
            conf,
            link,
            vips,
            netlink.AddrBatch(vips),
            self.links.sender(icfg.interface or ""),
            notify.Scripts.of(icfg, bool(gd.other.get("vrrp_notify_priority_changes", False))),
            pace=pacing(cfg, conf.interface or ""),  # the physical interface, also under use_vmac
        )
        inst = running_instance(icfg, ccfg, slot, peers or [link.group], resources, gd)
        self.insts[icfg.name] = inst
        self.driver.add(inst)
        inst.io.routes = virtual_routes.specs_for(icfg)
        self.no_accept.decide(inst, icfg)
        return inst

    def remove(self, inst: RunningInstance) -> None:
        self.driver.remove(inst)
        del self.insts[inst.name]
        inst.io.link.users -= 1


def running_instance(
    icfg: InstanceConfig,
    ccfg: InstanceParams,
    slot: int,
    dests: list[bytes],
    io: InstanceResources,
    gd: Any,
) -> RunningInstance:
    """The driver's view of the instance: its core, advert templates (one per destination: the multicast
    group or each unicast peer) and announcement schedule."""
    link = io.link
    garp, na = announce.announcement_frames(mac_of(icfg.interface or ""), [v.packed for v in io.vips])
    settings = announce.AnnounceSettings(
        master_delay_ms=icfg.garp_master_delay_ms,
        master_repeat=icfg.garp_master_repeat,
        master_refresh_ms=icfg.garp_master_refresh_ms,
        master_refresh_repeat=icfg.garp_master_refresh_repeat,
    )
    settings = _SETTINGS.setdefault(settings, settings)  # equal settings: one shared object
    return RunningInstance(
        name=icfg.name,
        core=(SyncMember if icfg.sync_group else VrrpInstance)(ccfg),
        slot=slot,
        tx_id=link.tx_id,
        ifindex=link.ifindex,
        adver_int_ms=icfg.advert_int_ms,
        dests=dests,
        templates=make_templates(
            version=icfg.version,
            family=link.family,
            vrid=icfg.virtual_router_id,
            priority=ccfg.priority,
            adver_int_ms=icfg.advert_int_ms,
            addresses=ccfg.addresses,
            src=link.primary,
            dests=dests,
            auth_type=ccfg.auth_type,
            auth_data=ccfg.auth_data,
            checksum_form=_wire.CS_MESSAGE if icfg.v3_checksum_as_v2 else _wire.CS_PSEUDO,
        ),
        announcer=announce.AnnounceSchedule(garp, na, settings),
        garp_lower_prio_repeat=icfg.garp_lower_prio_repeat,
        garp_lower_prio_delay_ms=icfg.garp_lower_prio_delay_ms,
        report_lower_prio=icfg.notify_master_rx_lower_pri is not None,
        advert_copies=icfg.advert_copies,
        advert_copy_delay_ms=icfg.advert_copy_delay_ms,
        io=io,
    )


def mac_of(ifname: str) -> bytes:
    try:
        with open(f"/sys/class/net/{ifname}/address") as f:
            return bytes.fromhex(f.read().strip().replace(":", ""))
    except OSError:
        return b"\0" * 6
