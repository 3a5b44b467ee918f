"""The daemon: owns the uvloop loop, the sockets, netlink and the one loop timer.

Protocol glue lives in `fastvrrp.daemon.driver.Driver` (engine <-> core, no I/O); this module gives it
its I/O (the `Port`: netlink address changes, gratuitous ARP / NA frames, the transition log), reads the
sockets when they are readable, re-arms one timer to the earliest deadline, and handles signals, link
events and reload. Nothing here decides protocol questions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import ipaddress
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from fastvrrp import __version__, _engine, _wire
from fastvrrp.config import Config, ConfigError, InstanceConfig, Problem, check
from fastvrrp.config.to_core import instance_config
from fastvrrp.core.instance import VrrpInstance
from fastvrrp.core.priority import Effective
from fastvrrp.core.syncgroup import SyncMember
from fastvrrp.core.types import State, StateChanged
from fastvrrp.daemon import metrics, notify, status
from fastvrrp.daemon.driver import Driver, RunningInstance, make_templates
from fastvrrp.daemon.tracking import Tracking
from fastvrrp.health.runner import ScriptRunner
from fastvrrp.io import announce, netlink, noaccept, routes, sockets, sysctl, vmac
from fastvrrp.io.timer import PreciseTimer

log = logging.getLogger("fastvrrp")

AF = {4: socket.AF_INET, 6: socket.AF_INET6}
SCRIPT_CONCURRENCY = 128  # processes the script runner may have at once (trackers and notify scripts)
RX_DWELL_S = 0.001  # after a busy drain, wait 1 ms before reading again (VRRP-NOTES 4: batches of ~50)
SCOPES = {"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}


def now_us() -> int:
    return time.monotonic_ns() // 1000


@dataclass(eq=False)
class Link:
    """One (interface, family, unicast?): a receive and a transmit socket shared by its instances."""

    ifname: str
    ifindex: int
    family: int  # 4 or 6
    unicast: bool
    primary: bytes
    socks: sockets.VrrpSockets
    rx_id: int
    tx_id: int
    group: bytes = b""  # the multicast group (packed); RFC 5798's unless mcast_dst_ip / vrrp_mcast_group*
    users: int = 0
    reading: bool = False
    last_datagrams: int = 0

    @property
    def key(self) -> tuple[str, int, bool, bytes]:
        return (self.ifname, self.family, self.unicast, self.group)


@dataclass(eq=False)
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


def _fingerprint(icfg: InstanceConfig) -> Any:
    """What decides whether a reload may keep an instance running: everything but where it was written."""
    return dataclasses.replace(icfg, file="", line=0)


class Daemon:
    def __init__(
        self,
        config_path: str,
        config_id: str | None,
        fast_path: bool = True,
        status_path: str | None = None,
        metrics_addr: tuple[str, int] | None = None,
    ) -> None:
        self.config_path = config_path
        self.config_id = config_id
        self.status_path = status_path
        self.metrics_addr = metrics_addr
        self.loop = asyncio.get_running_loop()
        self.engine = _engine.Engine(max_slots=4096, batch=64, fast_path=fast_path)
        self.driver = Driver(self.engine, self)
        self.nl = netlink.NetlinkWorker()
        self.links: dict[tuple[str, int, bool, bytes], Link] = {}
        self.insts: dict[str, RunningInstance] = {}
        self.senders: dict[str, announce.FrameSender] = {}
        self.cfg: Config | None = None
        self.monitor: netlink.LinkMonitor | None = None
        self.timer = PreciseTimer(self.loop, self._on_timer)
        self._reloading = False
        self._link_up: dict[int, bool] = {}
        self._tasks: set[asyncio.Task] = set()  # address changes in flight (stop waits for them)
        self.runner: ScriptRunner | None = None
        self.notifier: notify.Notifier | None = None
        self.tracking: Tracking | None = None
        self.book: status.StatusBook | None = None
        self.metrics: metrics.MetricsServer | None = None
        self._status_timer: asyncio.TimerHandle | None = None
        self.group_of: dict[str, str] = {}  # sync group of each member
        self.group_scripts: dict[str, notify.Scripts] = {}
        self.group_word: dict[str, str] = {}  # the state last reported for each sync group
        self.vmacs: dict[str, vmac.Vmac] = {}  # use_vmac interfaces by name
        self.sysctls = sysctl.SysctlChanges()
        self._nft_ready = False
        self._startup_delay: asyncio.TimerHandle | None = None  # vrrp_startup_delay still running

    # --- life cycle --------------------------------------------------------------------------------------

    async def start(self, cfg: Config) -> None:
        self.cfg = cfg
        gd = cfg.global_defs
        # Bounded (a thousand trackers never mean a thousand processes), but wide enough that a thousand
        # 1 s scripts keep their schedule when a spawn-to-reap takes ~60 ms on a loaded 2-core box.
        self.runner = ScriptRunner(
            max_concurrent=SCRIPT_CONCURRENCY,
            script_security=gd.enable_script_security,
            default_user=gd.script_user,
            default_group=gd.script_group,
        )
        self.notifier = notify.Notifier.from_config(self.loop, self.runner, gd)
        await self.notifier.start()
        if self.status_path:
            self.book = status.StatusBook(self.status_path)
        self.tracking = Tracking(cfg, self.runner, self._on_effective)
        await self.nl.start()
        # Addresses a crashed earlier run left behind would make two nodes hold the same VIP: remove them
        # before any instance starts (keepalived leaves them in place).
        stale: list[netlink.VipSpec] = []
        for icfg in cfg.instances:
            stale.extend(await self._vip_specs(icfg))
        removed = await self.nl.remove_stale(stale) if stale else []
        for spec in removed:
            log.info("removed %s/%d left behind by an earlier run", spec.address, spec.prefixlen)
        self.monitor = netlink.LinkMonitor(self.loop, self._on_link, self._on_addr, self._on_resync)
        self.monitor.start()
        for icfg in cfg.instances:
            await self._add_instance(icfg)
        self._set_sync_groups(cfg)
        self.tracking.start()
        delay_ms = gd.vrrp_startup_delay_ms
        if delay_ms > 0:
            # keepalived vrrp_startup_delay: sockets, netlink and trackers are up; the instances wait in INIT
            # (no adverts, no takeover) until the delay has passed, and the loop keeps running meanwhile.
            log.info(
                "delaying the start of the VRRP instances by %.3f s (vrrp_startup_delay)", delay_ms / 1000
            )
            self._startup_delay = self.loop.call_later(delay_ms / 1000, self._start_instances)
        else:
            self._start_instances()
        if self.metrics_addr is not None:
            self.metrics = metrics.MetricsServer(self._metrics_snapshot, *self.metrics_addr, loop=self.loop)
            self.metrics.start()
        self._status_tick()
        gc.freeze()  # everything allocated so far lives for the daemon's lifetime: keep it out of gc scans

    def _start_instances(self) -> None:
        """Start every instance not started yet whose trackers do not hold it back."""
        self._startup_delay = None
        assert self.tracking is not None
        now = now_us()
        for inst in self.insts.values():
            eff = self.tracking.effective(inst.name)
            if inst.io.started:
                continue  # started by the trackers' first report
            if eff.waiting:
                log.info("(%s) waiting for %s before starting", inst.name, ", ".join(eff.waiting_on))
            else:
                self._begin(inst, eff, now)
        self._after(now)

    async def stop(self) -> None:
        """Graceful stop: every master resigns with priority 0 (RFC 5798 6.4.3 S10), addresses go."""
        now = now_us()
        if self.tracking is not None:
            self.tracking.stop()
        for inst in list(self.insts.values()):
            if inst.io.started:
                self.driver.shutdown(inst, now)
        self.engine.flush()
        await self._settle()
        await self._issue4_teardown()
        if self.notifier is not None:
            await self.notifier.close(timeout_s=5)
        self._write_status(force=True)
        self._close_all()

    async def _settle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _close_all(self) -> None:
        if self._startup_delay is not None:
            self._startup_delay.cancel()
            self._startup_delay = None
        self.timer.close()
        if self._status_timer is not None:
            self._status_timer.cancel()
        if self.metrics is not None:
            self.metrics.close()
        if self.monitor is not None:
            self.monitor.close()
        for link in self.links.values():
            if link.reading:
                self.loop.remove_reader(link.socks.rx.fileno())  # before close: uvloop aborts otherwise
            link.socks.close()
        self.links.clear()
        for s in self.senders.values():
            s.close()
        self.senders.clear()
        self.nl.close()

    # --- instances ----------------------------------------------------------------------------------------

    async def _vip_specs(self, icfg: InstanceConfig) -> list[netlink.VipSpec]:
        specs = []
        for va in (*icfg.virtual_ipaddress, *icfg.virtual_ipaddress_excluded):
            dev = va.dev or icfg.interface
            ifindex = await self.nl.link_index(dev) if dev else None
            if ifindex is None:
                log.error("(%s) interface %s of %s does not exist", icfg.name, dev, va.address)
                continue
            brd = None
            if va.address.version == 4 and va.brd == "+":
                brd = str(
                    ipaddress.ip_network(f"{va.address}/{va.prefixlen}", strict=False).broadcast_address
                )
            elif va.address.version == 4 and va.brd not in (None, "-"):
                brd = va.brd
            scope = va.scope or "global"
            specs.append(
                netlink.VipSpec(
                    address=str(va.address),
                    prefixlen=va.prefixlen,
                    ifindex=ifindex,
                    label=va.label,
                    scope=int(scope) if scope.isdigit() else SCOPES.get(scope, 0),
                    broadcast=brd,
                )
            )
        return specs

    async def _link_for(self, icfg: InstanceConfig, expected: int) -> Link:
        fam = icfg.family
        unicast = bool(icfg.unicast_peers)
        ifname = icfg.interface or ""
        group = self._group(icfg)
        key = (ifname, fam, unicast, group)
        link = self.links.get(key)
        if link is not None:
            return link
        ifindex = await self.nl.link_index(ifname)
        if ifindex is None:
            raise ConfigError([Problem(icfg.file, icfg.line, f"interface {ifname} does not exist")])
        src = icfg.unicast_src_ip or icfg.mcast_src_ip
        primary = str(src) if src is not None else await self.nl.primary_address(ifname, AF[fam])
        if primary is None:
            why = f"interface {ifname} has no IPv{fam} address to send from"
            raise ConfigError([Problem(icfg.file, icfg.line, why)])
        socks = sockets.open_rx_tx(
            ifname,
            ifindex,
            AF[fam],
            primary,
            unicast,
            instances=max(expected, 1),
            unicast_ttl=icfg.unicast_ttl or 255,
            group=socket.inet_ntop(AF[fam], group),
        )
        packed = socket.inet_pton(AF[fam], primary)
        rx_id = self.engine.add_rx_socket(
            socks.rx.fileno(), fam, check_ttl=not unicast, policy=_wire.CSP_ACCEPT_BOTH, own=[packed]
        )
        tx_id = self.engine.add_tx_socket(socks.tx.fileno(), fam)
        link = Link(ifname, ifindex, fam, unicast, packed, socks, rx_id, tx_id, group)
        self.links[key] = link
        self.loop.add_reader(socks.rx.fileno(), self._on_readable, link)
        link.reading = True
        return link

    def _group(self, icfg: InstanceConfig) -> bytes:
        """The multicast group: mcast_dst_ip, else global_defs vrrp_mcast_group4/6 (RFC 5798's by default)."""
        assert self.cfg is not None
        gd = self.cfg.global_defs
        default = gd.vrrp_mcast_group4 if icfg.family == 4 else gd.vrrp_mcast_group6
        return (icfg.mcast_dst_ip or default).packed

    def _sender(self, ifname: str) -> announce.FrameSender:
        s = self.senders.get(ifname)
        if s is None:
            s = self.senders[ifname] = announce.FrameSender(ifname)
        return s

    async def _add_instance(self, icfg: InstanceConfig) -> RunningInstance:
        assert self.cfg is not None
        conf, icfg = icfg, await self._issue4_prepare(icfg)  # use_vmac: runs on the VMAC (conf is as read)
        self._promote_secondaries(icfg)
        # vmac_xmit_base: the VIPs and announcements live on the VMAC, the adverts go out (and come in) on
        # the base interface, with its MAC (keepalived.conf(5)).
        sock_cfg = conf if (icfg is not conf and conf.vmac_xmit_base) else icfg
        link = await self._link_for(sock_cfg, len(self.cfg.instances))
        peers = [p.address.packed for p in icfg.unicast_peers]
        ccfg = instance_config(icfg, link.primary)
        slot = self.engine.add_slot(
            link.rx_id, icfg.virtual_router_id, icfg.version, ccfg.auth_type, ccfg.auth_data, peers or None
        )
        link.users += 1
        vips = await self._vip_specs(icfg)
        garp, na = announce.announcement_frames(_mac_of(icfg.interface or ""), [v.packed for v in vips])
        gd = self.cfg.global_defs
        settings = announce.AnnounceSettings(
            master_delay_ms=icfg.garp_master_delay_ms,
            master_repeat=icfg.garp_master_repeat,
            master_refresh_ms=icfg.garp_master_refresh_ms,
            master_refresh_repeat=icfg.garp_master_refresh_repeat,
            garp_interval_ms=gd.vrrp_garp_interval_ms,
            gna_interval_ms=gd.vrrp_gna_interval_ms,
        )
        dests = peers or [link.group]
        inst = RunningInstance(
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
            io=InstanceResources(
                conf,
                link,
                vips,
                netlink.AddrBatch(vips),
                self._sender(icfg.interface or ""),
                notify.Scripts.of(icfg, bool(gd.other.get("vrrp_notify_priority_changes", False))),
            ),
        )
        self.insts[icfg.name] = inst
        self.driver.add(inst)
        self._issue4_instance(inst, icfg)
        return inst

    def _remove_instance(self, inst: RunningInstance) -> None:
        self.driver.remove(inst)
        del self.insts[inst.name]
        inst.io.link.users -= 1

    # --- the Port: what the driver asks of the outside world ----------------------------------------------

    def addresses(self, inst: RunningInstance, add: bool) -> None:
        if inst.io.vips:
            self._spawn(self._addresses(inst, add))

    def announce(self, inst: RunningInstance, frames: list[bytes]) -> None:
        # The takeover advert the driver queued goes out before the gratuitous ARPs (RFC 5798 6.4.2 order).
        self.engine.flush()
        inst.io.sender.send(frames)

    def transition(self, inst: RunningInstance, change: StateChanged) -> None:
        if change.new is State.INIT:
            log.info("(%s) Stopped", inst.name)
            word = "STOP"
        else:
            log.info("(%s) Entering %s STATE", inst.name, change.new.name)
            word = change.new.name
        log.debug("(%s) %s -> %s: %s", inst.name, change.old.name, change.new.name, change.reason)
        if self.notifier is not None:
            self.notifier.instance_state(inst.name, inst.io.scripts, word, inst.core.priority)
            self._group_notify(inst.name)
        if self.book is not None:
            self.book.transition(inst.name, change.reason)
            self.loop.call_soon(self._write_status)  # one write per batch of transitions

    def lower_priority(self, inst: RunningInstance, priority: int) -> None:
        log.info("(%s) received lower priority (%d) advert", inst.name, priority)
        if self.notifier is not None:
            self.notifier.instance_event(
                inst.name, inst.io.scripts, "MASTER_RX_LOWER_PRI", inst.core.priority
            )

    # --- tracking -----------------------------------------------------------------------------------------

    def _begin(self, inst: RunningInstance, eff: Effective, now: int) -> None:
        """Start an instance with what its trackers say (keepalived: FAULT at once if one is down)."""
        inst.io.started = True
        eff = self._no_peer_fault(inst, eff)
        if eff.fault:
            log.info("(%s) entering FAULT: %s", inst.name, ", ".join(eff.faults))
        if eff.fault:
            # Remembered in INIT (start() goes to FAULT); through the driver so a sync group hears of it.
            self.driver.set_fault(inst, True, now)
        if not inst.core.owner and eff.priority != inst.core.priority:
            inst.core.set_priority(eff.priority, now)
        self.driver.start(inst, now)

    def _promote_secondaries(self, icfg: InstanceConfig) -> None:
        """keepalived promote_secondaries: while we run, removing the primary address of the VIPs' interface
        promotes a secondary (a VIP in the same subnet) instead of deleting it too; put back on exit."""
        if not icfg.promote_secondaries or not icfg.interface:
            return
        path = sysctl.conf_path(4, icfg.interface, "promote_secondaries")
        if not self.sysctls.apply(path, 1):
            for p, err in self.sysctls.errors:
                log.warning("(%s) sysctl %s: %s", icfg.name, p, err)
            self.sysctls.errors.clear()

    def _no_peer_fault(self, inst: RunningInstance, eff: Effective) -> Effective:
        """keepalived.conf(5) unicast_fault_no_peer: an instance with no unicast_peer does not fall back to
        multicast; it stays in FAULT whatever its trackers say."""
        icfg = inst.io.cfg
        if not icfg.unicast_fault_no_peer or icfg.unicast_peers:
            return eff
        return dataclasses.replace(eff, fault=True, faults=(*eff.faults, "unicast_fault_no_peer, no peer"))

    def _on_effective(self, name: str, eff: Effective) -> None:
        inst = self.insts.get(name)
        if inst is None:
            return
        eff = self._no_peer_fault(inst, eff)
        now = now_us()
        if not inst.io.started:
            if not eff.waiting and self._startup_delay is None:
                self._begin(inst, eff, now)
                self._after(now)
            return
        core = inst.core
        if eff.fault != core.faulty:
            if eff.fault:
                log.info("(%s) entering FAULT: %s", name, ", ".join(eff.faults))
            self.driver.set_fault(inst, eff.fault, now)
        if not core.owner and eff.priority != core.priority:
            log.info("(%s) priority %d -> %d", name, core.priority, eff.priority)
            self.driver.set_priority(inst, eff.priority, now)
        self._after(now)

    # --- status and metrics -------------------------------------------------------------------------------

    def _status_tick(self) -> None:
        self._write_status()
        self._status_timer = self.loop.call_later(1.0, self._status_tick)

    def _write_status(self, force: bool = False) -> None:
        book = self.book
        if book is None or not (force or book.due()):
            return
        rows = []
        for i in list(self.insts.values()):
            since, reason = book.since.get(i.name, (time.time(), "starting"))
            core, io = i.core, i.io
            ms = core.master_src
            rows.append(
                status.InstanceStatus(
                    name=i.name,
                    state=core.state.name,
                    since=since,
                    reason=reason,
                    priority=core.priority,
                    base_priority=io.cfg.priority,
                    master=socket.inet_ntop(AF[io.link.family], ms) if ms else None,
                    vips=[f"{v.address}/{v.prefixlen}" for v in io.vips],
                    interface=io.link.ifname,
                    family=io.link.family,
                    vrid=io.cfg.virtual_router_id,
                    vrrp_version=io.cfg.version,
                    adverts_rx=core.stats.adverts_rx + self.engine.slot_stats(i.slot).get("rx_fast", 0),
                    adverts_tx=self.engine.slot_stats(i.slot).get("sent", 0) + core.stats.priority_zero_tx,
                )
            )
        book.write(rows, __version__)

    def _metrics_snapshot(self) -> metrics.Snapshot:
        eng = self.engine
        rows = [
            metrics.instance_row(
                i.name,
                i.io.link.ifname,
                i.io.link.family,
                i.io.cfg.virtual_router_id,
                i.core,
                eng.slot_stats(i.slot),
                i.io.cfg.priority,
            )
            for i in list(self.insts.values())
        ]
        rx = [
            metrics.RxRow(l.ifname, l.family, eng.rx_stats(l.rx_id)["datagrams"], eng.drops(l.rx_id))
            for l in list(self.links.values())
        ]
        return metrics.Snapshot(rows, rx, {"instances": len(rows)})

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _addresses(self, inst: RunningInstance, add: bool) -> None:
        verb = "add" if add else "remove"
        await self._issue4_before(inst, add)
        try:
            if add:
                res = await self.nl.fast_add(inst.io.add_batch)
            else:
                res = await self.nl.fast_remove(inst.io.add_batch)
        except Exception:
            log.exception("(%s) netlink %s failed", inst.name, verb)
            return
        finally:
            await self._issue4_after(inst, add)
        for spec, err in res.failed:
            log.error("(%s) cannot %s %s: %s", inst.name, verb, spec.text(), os.strerror(err))

    # --- sync groups, routes and rules, use_vmac, no_accept -------------------------------------------------

    def _set_sync_groups(self, cfg: Config) -> None:
        self.driver.set_sync_groups({name: sg.group for name, sg in cfg.sync_groups.items()})
        self.group_of = {m: name for name, sg in cfg.sync_groups.items() for m in sg.group}
        self.group_scripts = {name: notify.Scripts.of(sg) for name, sg in cfg.sync_groups.items()}
        self.group_word = {k: v for k, v in self.group_word.items() if k in cfg.sync_groups}

    def _group_notify(self, member: str) -> None:
        """keepalived reports a sync group's state (notify scripts, `GROUP "G" MASTER 0` FIFO lines) once
        every member present has reached it."""
        gname = self.group_of.get(member)
        if gname is None or self.notifier is None or self.cfg is None:
            return
        words = {
            "STOP" if i.core.state is State.INIT else i.core.state.name
            for n in self.cfg.sync_groups[gname].group
            if (i := self.insts.get(n)) is not None and i.io.started
        }
        if len(words) == 1:
            (word,) = words
            if self.group_word.get(gname) != word:
                self.group_word[gname] = word
                self.notifier.group_state(gname, self.group_scripts[gname], word)

    async def _issue4_prepare(self, icfg: InstanceConfig) -> InstanceConfig:
        """use_vmac: make the macvlan and its kernel settings; the instance then runs on it (adverts, VIPs,
        GARPs), with the parent's primary address as its source (keepalived.conf(5) use_vmac)."""
        if not icfg.use_vmac or not icfg.interface:
            return icfg
        assert self.cfg is not None
        fam = icfg.family
        parent = icfg.interface
        try:
            prefix = self.cfg.global_defs.vmac_prefix
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
        # VRRP-NOTES 3: arp_announce=2).
        settings.append((sysctl.conf_path(4, parent, "arp_announce"), 2))
        if fam == 4:
            # A backup's VMAC must not send IGMP reports for 224.0.0.18 from the VMAC: a learning switch
            # would then send the VIP's traffic to the backup (keepalived: disable_local_igmp).
            settings.append(("net/ipv4/igmp_link_local_mcast_reports", 0))
        own = [(p, v) for p, v in settings if f"/conf/{name}/" in p]  # exist once the VMAC does
        for path, value in settings:
            if (path, value) not in own:
                self.sysctls.apply(path, value)
        try:
            v = await self.nl.call(vmac.create, parent, name, mac, fam)
        except Exception as exc:
            why = f"cannot create the VMAC interface {name} on {parent}: {exc}"
            raise ConfigError([Problem(icfg.file, icfg.line, why)]) from None
        self.vmacs[name] = v
        for path, value in own:
            self.sysctls.apply(path, value)
        for path, err in self.sysctls.errors:
            log.warning("(%s) sysctl %s: %s", icfg.name, path, err)
        self.sysctls.errors.clear()
        log.info("(%s) using VMAC %s (%s) on %s", icfg.name, name, mac, parent)
        addr = ipaddress.ip_address(primary)
        if icfg.unicast_peers:
            return dataclasses.replace(icfg, interface=name, unicast_src_ip=addr)
        return dataclasses.replace(icfg, interface=name, mcast_src_ip=addr)

    def _issue4_instance(self, inst: RunningInstance, icfg: InstanceConfig) -> None:
        """Routes and rules (parsed once), and whether the instance drops traffic to its VIPs."""
        specs = []
        try:
            specs += [routes.route_spec(r, icfg.interface) for r in icfg.virtual_routes]
            specs += [routes.rule_spec(r) for r in icfg.virtual_rules]
        except routes.RouteSyntaxError as exc:
            raise ConfigError([Problem(icfg.file, icfg.line, str(exc))]) from None
        inst.io.routes = tuple(specs)
        inst.io.no_accept = not icfg.accept and not inst.core.owner and bool(inst.io.vips)
        if inst.io.no_accept and not self._nft_ready:
            why = noaccept.available()
            if why is None:
                try:
                    noaccept.setup()
                    self._nft_ready = True
                except noaccept.NoAcceptError as exc:
                    why = str(exc)
            if why is not None:
                log.error("(%s) no_accept not enforced (%s): the VIPs accept traffic", inst.name, why)
                inst.io.no_accept = False

    async def _issue4_before(self, inst: RunningInstance, add: bool) -> None:
        # no_accept: the drop is in place before the address exists (RFC 5798 6.4.3); routes and rules may
        # use a VIP as their source, so they go before the addresses do.
        try:
            if add and inst.io.no_accept:
                await self.nl.call(lambda _ipr: noaccept.drop(v.address for v in inst.io.vips))
            if not add and inst.io.routes:
                self._log_routes(inst, "remove", await self.nl.call(routes.apply, inst.io.routes, False))
        except Exception:
            log.exception("(%s) preparing the address change failed", inst.name)

    async def _issue4_after(self, inst: RunningInstance, add: bool) -> None:
        try:
            if add and inst.io.routes:
                self._log_routes(inst, "add", await self.nl.call(routes.apply, inst.io.routes, True))
            if not add and inst.io.no_accept:
                await self.nl.call(lambda _ipr: noaccept.undrop(v.address for v in inst.io.vips))
        except Exception:
            log.exception("(%s) completing the address change failed", inst.name)

    def _log_routes(self, inst: RunningInstance, verb: str, res: routes.NetResult) -> None:
        for spec, why in res.failed:
            log.error("(%s) cannot %s %s '%s': %s", inst.name, verb, spec.kind, spec.text, why)

    async def _issue4_teardown(self) -> None:
        """On exit: VMACs we made go, kernel settings go back, the no_accept table goes."""
        for name, v in list(self.vmacs.items()):
            if v.created:
                try:
                    await self.nl.call(vmac.delete, name)
                except Exception:
                    log.exception("cannot delete the VMAC interface %s", name)
        self.vmacs.clear()
        self.sysctls.restore()
        if self._nft_ready:
            try:
                noaccept.teardown()
            except noaccept.NoAcceptError as exc:
                log.error("cannot remove the nftables table %s: %s", noaccept.TABLE, exc)
            self._nft_ready = False

    # --- the loop: sockets and the one timer ---------------------------------------------------------------

    def _on_readable(self, link: Link) -> None:
        now = now_us()
        try:
            events = self.engine.receive(link.rx_id, now)
        except OSError as exc:
            log.warning("receive on %s failed: %s", link.ifname, exc)
            events = []
        if events:
            self._guarded(self.driver.handle, events, now)
        self._after(now)
        got = self.engine.rx_stats(link.rx_id)["datagrams"]
        busy = got - link.last_datagrams > 1
        link.last_datagrams = got
        if busy and link.reading:
            # Several datagrams in one wake-up: let the next ones gather for a millisecond, then drain them
            # in one batch (VRRP-NOTES 4: 2.7 us -> 0.7 us per advert). Timers are not affected.
            self.loop.remove_reader(link.socks.rx.fileno())
            link.reading = False
            self.loop.call_later(RX_DWELL_S, self._resume_reading, link)

    def _resume_reading(self, link: Link) -> None:
        if not link.reading and self.links.get(link.key) is link:
            link.reading = True
            self.loop.add_reader(link.socks.rx.fileno(), self._on_readable, link)
            self._on_readable(link)

    def _on_timer(self) -> None:
        now = now_us()
        self._guarded(self.driver.tick, now)
        self._after(now)

    def _guarded(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a bug must not stop the adverts of every instance: log it and go on
            log.exception("internal error in %s", getattr(fn, "__name__", fn))

    def _after(self, now: int) -> None:
        """Send what is queued, then re-arm the one loop timer to the earliest deadline."""
        self.engine.flush()
        nd = self.driver.next_deadline()
        if nd < 0:
            return
        armed = self.timer.armed_us
        if 0 <= armed <= nd:
            return  # armed early enough; firing early is harmless (nothing due is a no-op)
        self.timer.arm(nd)

    # --- link and address events -------------------------------------------------------------------------

    def _on_link(self, ifindex: int, ifname: str, up: bool) -> None:
        """Link states (the first one of each interface comes from the monitor's initial dump) feed tracking:
        the instance's own interface (weight 0: down = FAULT) and every track_interface."""
        was = self._link_up.get(ifindex)
        self._link_up[ifindex] = up
        if was is not None and not up:
            for inst in self.insts.values():
                if inst.ifindex == ifindex:
                    log.info("(%s) Interface %s is down", inst.name, ifname)
        if self.tracking is not None:
            self.tracking.interface(ifname, up)

    def _on_addr(self, ifindex: int, family: int, address: str, prefixlen: int, added: bool) -> None:
        if added:
            return
        for inst in self.insts.values():
            if inst.holds_addresses and inst.core.state is State.MASTER:
                for spec in inst.io.vips:
                    if spec.ifindex == ifindex and spec.address == address:
                        log.warning(
                            "(%s) %s/%d was removed while MASTER: putting it back",
                            inst.name,
                            address,
                            prefixlen,
                        )
                        self._spawn(self._addresses(inst, True))
                        return

    def _on_resync(self) -> None:
        for inst in self.insts.values():
            if inst.holds_addresses and inst.core.state is State.MASTER:
                self._spawn(self._addresses(inst, True))

    # --- reload ------------------------------------------------------------------------------------------

    async def reload(self) -> None:
        """SIGHUP: apply a new config; unchanged instances keep their state and adverts, without a gap."""
        if self._reloading:
            return
        self._reloading = True
        try:
            new, problems, unsupported = check(self.config_path, self.config_id)
            if new is None:
                log.error(
                    "reload refused: the new configuration has %d problem(s); keeping the running one",
                    len(problems),
                )
                for p in problems:
                    log.error("%s", p)
                return
            for note in unsupported:
                log.warning("%s", note)
            self.cfg = new
            wanted = {i.name: i for i in new.instances}
            now = now_us()
            # Trackers follow the new config: stop the old ones; the new set starts once instances are in.
            old_tracking = self.tracking
            if old_tracking is not None:
                old_tracking.stop()
            self.tracking = Tracking(new, self.runner, self._on_effective)  # type: ignore[arg-type]
            for name, inst in list(self.insts.items()):
                nc = wanted.get(name)
                if nc is not None and _fingerprint(nc) == _fingerprint(inst.io.cfg):
                    inst.io.cfg = nc
                    continue
                log.info("(%s) %s by reload", name, "changed" if nc is not None else "removed")
                if inst.io.started:
                    self.driver.shutdown(inst, now)
                if self.notifier is not None and nc is None:
                    self.notifier.instance_state(name, inst.io.scripts, "DELETED", inst.core.priority)
                if self.book is not None:
                    self.book.forget(name)
                self._remove_instance(inst)
            self.engine.flush()
            await self._settle()
            started = []
            for name, icfg in wanted.items():
                if name not in self.insts:
                    try:
                        started.append(await self._add_instance(icfg))
                    except ConfigError as e:
                        for p in e.problems:
                            log.error("%s", p)
            self.tracking.start()
            if self.monitor is not None:
                for name_up in list(self.monitor.links.values()):
                    self.tracking.interface(*name_up)
            for inst in list(self.insts.values()):
                self._on_effective(inst.name, self.tracking.effective(inst.name))
            now = now_us()
            self._set_sync_groups(new)
            self._close_unused_links()
            self._after(now)
            log.info(
                "reloaded %s (%d instances, %d started)", self.config_path, len(self.insts), len(started)
            )
        finally:
            self._reloading = False

    def _close_unused_links(self) -> None:
        for key, link in list(self.links.items()):
            if link.users <= 0:
                if link.reading:
                    self.loop.remove_reader(link.socks.rx.fileno())
                    link.reading = False
                link.socks.close()
                del self.links[key]
                # The engine keeps the socket ids; they receive nothing once closed and own no slots.


def _mac_of(ifname: str) -> bytes:
    try:
        with open(f"/sys/class/net/{ifname}/address") as f:
            return bytes.fromhex(f.read().strip().replace(":", ""))
    except OSError:
        return b"\0" * 6


def _setup_logging(args: Any) -> None:
    level = logging.DEBUG if getattr(args, "log_detail", False) else logging.INFO
    fmt = f"%(asctime)s fastvrrp[{os.getpid()}]: %(message)s"
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if getattr(args, "log_file", None):
        handlers.append(logging.FileHandler(args.log_file))
    logging.basicConfig(level=logging.WARNING, format=fmt, handlers=handlers, force=True)
    log.setLevel(level)  # -D details ours, not every library's


async def _main(args: Any) -> int:
    path = args.config_file
    cfg, problems, unsupported = check(path, args.config_id)
    if cfg is None:
        for p in problems:
            log.error("%s", p)
        log.error("%s: configuration has errors, not starting", path)
        return 1
    for note in unsupported:
        log.warning("%s", note)
    metrics_addr = None
    if getattr(args, "metrics", None):
        host, _, port = args.metrics.rpartition(":")
        metrics_addr = (host.strip("[]") or "127.0.0.1", int(port))
    daemon = Daemon(
        path,
        args.config_id,
        fast_path=os.environ.get("FASTVRRP_FAST_PATH", "1") != "0",
        status_path=getattr(args, "status_file", None) or status.DEFAULT_PATH,
        metrics_addr=metrics_addr,
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(daemon.reload()))
    try:
        await daemon.start(cfg)
    except ConfigError as e:
        for p in e.problems:
            log.error("%s", p)
        daemon._close_all()
        return 1
    log.info("started: %d VRRP instance(s) from %s", len(daemon.insts), path)
    await stop.wait()
    log.info("stopping")
    await daemon.stop()
    log.info("stopped")
    return 0


def run(args: Any) -> int:
    """`fastvrrp -f FILE ...`: run in the foreground until SIGTERM/SIGINT."""
    import uvloop

    _setup_logging(args)
    pid_file = getattr(args, "pid_file", None)
    if pid_file:
        with open(pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    try:
        return uvloop.run(_main(args))
    finally:
        if pid_file:
            try:
                os.unlink(pid_file)
            except OSError:
                pass
