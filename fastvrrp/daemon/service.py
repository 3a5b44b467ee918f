"""The daemon: the loop's work (reading the sockets, the one loop timer, link events), the life cycle (start,
stop, reload; reload.py applies a new configuration) and starting instances as their trackers allow. It owns
the engine and the driver and composes the other parts (links, instances, the Port, the kernel extras,
tracking, status and metrics). Nothing here decides protocol questions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from fastvrrp import _engine
from fastvrrp.config import Config
from fastvrrp.core.priority import PRIO_OWNER, Effective
from fastvrrp.daemon import lifecycle_scripts, notify, sdnotify, status, virtual_routes
from fastvrrp.daemon.control import ControlServer, Operator
from fastvrrp.daemon.driver import Driver, RunningInstance
from fastvrrp.daemon.instances import InstanceBuilder, remove_stale_vips
from fastvrrp.daemon.links import Links
from fastvrrp.daemon.no_accept import NoAccept
from fastvrrp.daemon.port import DaemonPort
from fastvrrp.daemon.reload import Reloader
from fastvrrp.daemon.scheduling import ProcessScheduling, Settings
from fastvrrp.daemon.snapshots import MetricsSource, StatusWriter
from fastvrrp.daemon.static_addresses import StaticAddresses
from fastvrrp.daemon.sync_groups import SyncGroupNotices
from fastvrrp.daemon.sysctls import Sysctls
from fastvrrp.daemon.tracking import Tracking
from fastvrrp.daemon.use_vmac import VmacInterfaces
from fastvrrp.health.runner import ScriptRunner
from fastvrrp.io import netlink, unix_socket
from fastvrrp.io.timer import PreciseTimer, Watchdog

if TYPE_CHECKING:
    from fastvrrp.daemon.metrics import MetricsServer

log = logging.getLogger("fastvrrp")

SCRIPT_CONCURRENCY = 128  # processes the script runner may have at once (trackers and notify scripts)
# How the receive sockets are read (docs/costs.md#receive-dwell): at once when a socket is reported
# readable while the links are quiet (RX_QUIET); once a read finds more than one datagram, every RX_PERIOD_S
# from the loop's timer with no wake-up for readiness (RX_CADENCE), until RX_IDLE_READS reads in a row found
# nothing; then a socket reported readable is read RX_PERIOD_S later (RX_DWELL), and back to RX_QUIET when
# that read finds a single datagram.
RX_PERIOD_S = 0.005
RX_PERIOD_US = int(RX_PERIOD_S * 1_000_000)
RX_IDLE_READS = 2
RX_QUIET, RX_DWELL, RX_CADENCE = 0, 1, 2
# receive(): settle this many adverts in Python (a backup that starts to follow its master goes on the fast
# path) before reading more of a backlog
RX_MAX_EVENTS = 256
# The advert watchdog (docs/costs.md#advert-precedence): when the loop has not run this long after its
# earliest deadline, a thread sends the due adverts of masters; Python hands it the GIL within SWITCH_S.
WATCHDOG_GRACE_US = 3_000
SWITCH_S = 0.001


def now_us() -> int:
    return time.monotonic_ns() // 1000


class Daemon:
    """One running daemon: made inside the loop with a checked configuration, then `await start()`, and
    `await stop()` (or `close()` if start failed); `reload()` on SIGHUP."""

    def __init__(
        self,
        cfg: Config,
        config_path: str,
        config_id: str | None,
        fast_path: bool = True,
        status_path: str | None = None,
        metrics_addr: tuple[str, int] | None = None,
        metrics_keepalived: bool = True,
        control_path: str | None = None,
        kernel_fast_path: bool = True,
    ) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.config_id = config_id
        self.strict_config = False  # --strict-config: a reload refuses what keepalived would work around
        self.metrics_addr = metrics_addr
        self.metrics_keepalived = metrics_keepalived  # also export mehdy/keepalived-exporter's families
        self.control_path = control_path  # the control socket (daemon/control.py); None: no control API
        self.control: ControlServer | None = None
        self.operator = Operator()  # drain and priority offsets set through it; forgotten at restart
        self.loop = asyncio.get_running_loop()
        self.engine = _engine.Engine(max_slots=4096, batch=64, fast_path=fast_path, rx_clock=True)
        self.nl = netlink.NetlinkWorker()
        self.insts: dict[str, RunningInstance] = {}
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
        book = status.StatusBook(status_path) if status_path else None
        self.status = StatusWriter(self.loop, self.engine, self.insts, book, self.operator)
        # systemd's notify protocol (nothing is sent without $NOTIFY_SOCKET)
        self.systemd = sdnotify.ServiceNotifier.from_environ(self.loop, self._state_names)
        self.groups = SyncGroupNotices(self.notifier, self.insts, cfg)
        self.sysctls = Sysctls()
        self.vmacs = VmacInterfaces(self.nl, self.sysctls)
        self.no_accept = NoAccept(self.nl)
        self.static_addrs = StaticAddresses(self.nl)
        self.removed_since_full = 0  # instances a reload removed since the last full collection (reload.py)
        self.scheduling = ProcessScheduling()
        self.reloader = Reloader(self)
        self.port = DaemonPort(
            self.loop,
            self.engine,
            self.nl,
            self.insts,
            self.notifier,
            self.groups.member_changed,
            book,
            self._after_transitions,
            self.no_accept,
        )
        self.driver = Driver(self.engine, self.port)
        self.links = Links(
            self.loop,
            self.engine,
            self.nl,
            self._on_rx_ready,
            kernel_fast_path=fast_path and kernel_fast_path,
        )
        self.builder = InstanceBuilder(
            self.engine,
            self.nl,
            self.driver,
            self.insts,
            self.links,
            self.sysctls,
            self.vmacs,
            self.no_accept,
        )
        self.timer = PreciseTimer(self.loop, self._on_timer)
        self.watchdog: Watchdog | None = None
        self.tracking = Tracking(cfg, self.runner, self.on_effective)
        self.monitor: netlink.LinkMonitor | None = None
        self.metrics: MetricsServer | None = None
        self._link_up: dict[int, bool] = {}
        self._startup_delay: asyncio.TimerHandle | None = None  # vrrp_startup_delay still running
        self._building = True  # start(): instances are being built; those not started wait for all of them
        self._rx_mode = RX_QUIET  # how the receive sockets are read (RX_PERIOD_S)
        self._rx_idle = 0  # reads in a row that found nothing, on the cadence
        self._rx_read: asyncio.TimerHandle | None = None  # the next _read_rx, when one is due
        self._control_inode = 0

    # --- life cycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.cfg
        if self.control_path is not None:
            # First, before touching the kernel: a control socket others could reach stops the start here
            # (unix_socket.PrivateSocketError).
            sock, self._control_inode = unix_socket.open_private_socket(self.control_path)
            self.control = ControlServer(self, sock)
        self.systemd.start_watchdog()
        await lifecycle_scripts.run(self.runner, cfg.global_defs.other, "startup")
        await self.notifier.start()
        await self.nl.start()
        await remove_stale_vips(self.nl, cfg)
        await self.static_addrs.start(cfg)
        await virtual_routes.apply_static(self.nl, virtual_routes.static_specs(cfg), True)
        self.monitor = netlink.LinkMonitor(self.loop, self._on_link, self.port.on_addr, self.port.on_resync)
        self.monitor.start()
        delay_ms = cfg.global_defs.vrrp_startup_delay_ms
        owners = early_owners(cfg) if delay_ms <= 0 else ()
        if owners:
            await self._start_owners(cfg, owners)
        for icfg in cfg.instances:
            if icfg.name not in self.insts:
                await self.builder.add(icfg, cfg)
        if owners:
            self._config_order(cfg)
        self._building = False
        self.set_sync_groups(cfg)
        if not owners:
            self.tracking.start()
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
            from fastvrrp.daemon.metrics import MetricsServer  # only the runs that serve metrics import it

            source = MetricsSource(
                self.engine,
                self.insts,
                self.links.by_key,
                lambda: self.tracking,
                self.status.book,
                operator=self.operator,
                folded=self.port.folded,
            )
            self.metrics = MetricsServer(
                source, *self.metrics_addr, loop=self.loop, keepalived=self.metrics_keepalived
            )
            self.metrics.start()
        if self.control is not None:
            await self.control.serve()
        self.status.tick()
        self.port.later.drain()  # the initial states are logged and reported before READY=1
        gc.freeze()  # everything allocated so far lives for the daemon's lifetime: keep it out of gc scans
        sys.setswitchinterval(SWITCH_S)
        self.watchdog = Watchdog(self.engine.send_due, WATCHDOG_GRACE_US)
        self._after(now_us())
        # Every instance has its sockets and its initial state (or is held: vrrp_startup_delay, trackers).
        self.scheduling.apply(Settings.from_globals(cfg.global_defs.other))  # every thread exists now
        self.systemd.ready()

    async def stop(self) -> None:
        """Graceful stop: every master resigns with priority 0 (RFC 5798 6.4.3 S10), addresses go."""
        self.systemd.stopping()
        self._close_control()  # no operator request in the middle of the shutdown
        now = now_us()
        self.tracking.stop()
        for inst in list(self.insts.values()):
            if inst.io.started:
                self.driver.shutdown(inst, now)
        self.engine.flush()
        await self.port.settle()
        await self.undo_kernel_changes()
        await self.notifier.close(timeout_s=5)
        await lifecycle_scripts.run(self.runner, self.cfg.global_defs.other, "shutdown")
        self.status.write(force=True)
        self.close()

    async def leave(self) -> None:
        """Stop without resigning (keepalived -V, --dont-release-vrrp): no priority-0 advert, and the VIPs,
        virtual routes and VMAC interfaces stay for the daemon that comes next; the static routes, rules and
        addresses go and kernel settings go back, as keepalived -V does."""
        self.tracking.stop()
        await self._remove_static()
        self.sysctls.restore()
        self.no_accept.teardown()
        await self.notifier.close(timeout_s=5)
        await lifecycle_scripts.run(self.runner, self.cfg.global_defs.other, "shutdown")
        self.status.write(force=True)
        self.close()

    async def undo_kernel_changes(self) -> None:
        """On exit: VMACs we made go, static routes, rules and addresses go, kernel settings go back, the
        no_accept table goes."""
        await self.vmacs.delete_all()
        await self._remove_static()
        self.sysctls.restore()
        self.no_accept.teardown()

    async def _remove_static(self) -> None:
        """static_routes and static_rules, then static_ipaddress (a route may use one as its source)."""
        await virtual_routes.apply_static(self.nl, virtual_routes.static_specs(self.cfg), False)
        await self.static_addrs.stop()

    def close(self) -> None:
        """Release the timers, sockets and threads at once (no resignation: `stop` does that first)."""
        if self._startup_delay is not None:
            self._startup_delay.cancel()
            self._startup_delay = None
        if self.watchdog is not None:
            self.watchdog.close()
            self.watchdog = None
        self.timer.close()
        self.status.close()
        self._close_control()
        if self.metrics is not None:
            self.metrics.close()
        if self.monitor is not None:
            self.monitor.close()
        if self._rx_read is not None:
            self._rx_read.cancel()
            self._rx_read = None
        self.links.close()
        self.nl.close()
        self.systemd.close()

    def _close_control(self) -> None:
        if self.control is not None:
            self.control.close()
            unix_socket.remove_socket(os.path.abspath(self.control_path or ""), self._control_inode)
            self.control = None

    async def _start_owners(self, cfg: Config, owners: list[Any]) -> None:
        """RFC 5798 6.4.1: an address owner leaving Initialize sends an ADVERTISEMENT first. The owners
        outside any sync group are built and started before the other instances are built, so their first
        adverts go out at once, not after a thousand other instances (docs/costs.md#start-up). Their state
        machine is the same: started with what their trackers say (an owner whose interface is not known to
        be up yet waits, and starts with the others)."""
        for icfg in owners:
            await self.builder.add(icfg, cfg)
        self.tracking.start()  # every instance's initial effective priority; the rest are not built yet
        now = now_us()
        for icfg in owners:
            inst = self.insts[icfg.name]
            eff = self.tracking.effective(inst.name)
            if not eff.waiting and not inst.io.started:
                self._begin(inst, eff, now)
        self._after(now)  # the owners' adverts leave here

    def _config_order(self, cfg: Config) -> None:
        """The instances in the order of the configuration (status file, dumps, metrics), owners included."""
        rank = {icfg.name: k for k, icfg in enumerate(cfg.instances)}
        ordered = sorted(self.insts.items(), key=lambda item: rank.get(item[0], len(rank)))
        self.insts.clear()
        self.insts.update(ordered)

    def _state_names(self) -> list[str]:
        return [inst.core.state.name for inst in list(self.insts.values())]

    def _after_transitions(self) -> None:
        """Called once per batch of transitions: the status file and systemd's STATUS= follow."""
        self.status.write()
        self.systemd.states_changed()

    def set_sync_groups(self, cfg: Config) -> None:
        self.driver.set_sync_groups({name: sg.group for name, sg in cfg.sync_groups.items()})
        self.groups.configure(cfg)

    # --- starting instances as their trackers allow ---------------------------------------------------------

    def _start_instances(self) -> None:
        """Start every instance not started yet whose trackers do not hold it back."""
        self._startup_delay = None
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

    def _begin(self, inst: RunningInstance, eff: Effective, now: int) -> None:
        """Start an instance with what its trackers say (keepalived: FAULT at once if one is down)."""
        inst.io.started = True
        eff = _no_peer_fault(inst, self.operator.adjust(inst.name, eff, inst.core.owner))
        if eff.fault:
            log.info("(%s) entering FAULT: %s", inst.name, ", ".join(eff.faults))
            # Remembered in INIT (start() goes to FAULT); through the driver so a sync group hears of it.
            self.driver.set_fault(inst, True, now)
        if not inst.core.owner and eff.priority != inst.core.tracked_priority:
            inst.core.set_priority(eff.priority, now)
        if inst.name in self.operator.drained:  # drained before a reload rebuilt it: it stays drained
            self.driver.set_drain(inst, True, now)
        self.driver.start(inst, now)

    def on_effective(self, name: str, eff: Effective) -> None:
        """Tracking changed an instance's effective priority, FAULT or waiting flag."""
        inst = self.insts.get(name)
        if inst is None:
            return
        eff = _no_peer_fault(inst, self.operator.adjust(name, eff, inst.core.owner))
        now = now_us()
        if not inst.io.started:
            if not eff.waiting and self._startup_delay is None and not self._building:
                self._begin(inst, eff, now)
                self._after(now)
            return
        core = inst.core
        if eff.fault != core.faulty:
            if eff.fault:
                log.info("(%s) entering FAULT: %s", name, ", ".join(eff.faults))
            self.driver.set_fault(inst, eff.fault, now)
        if not core.owner and eff.priority != core.tracked_priority:
            log.info("(%s) priority %d -> %d", name, core.tracked_priority, eff.priority)
            self.driver.set_priority(inst, eff.priority, now)
        self._after(now)

    # --- the loop: sockets, the one timer, link events -----------------------------------------------------

    def _on_rx_ready(self) -> None:
        """A receive socket became readable (links.py: reported once, then quiet until re-armed)."""
        if not self.links.harvest() or self._rx_read is not None:
            return  # nothing new, or a read is already due: it reads these too
        if self._rx_mode == RX_QUIET:
            self._read_rx()
        else:
            self._rx_read = self.loop.call_later(RX_PERIOD_S, self._read_rx)

    def _read_rx(self) -> None:
        """Read every socket reported readable since it was last re-armed (each until it is empty), then
        choose how to read next (RX_PERIOD_S above)."""
        self._rx_read = None
        links = self.links.to_read()
        now = now_us()
        self._send_due(now)
        eng = self.engine
        before = eng.rx_datagrams
        events: list = []
        for link in links:
            try:
                events += eng.receive(link.rx_id, now, RX_MAX_EVENTS)
            except OSError as exc:
                log.warning("receive on %s failed: %s", link.ifname, exc)
        if events:
            now = now_us()  # the adverts count as heard when Python handles them (a stall may lie between)
            self._guarded(self.driver.handle, events, now, now_us)
        self._after(now)
        got = eng.rx_datagrams - before
        mode = self._rx_mode
        idle = 0 if got else self._rx_idle + 1
        if got > 1 or (mode == RX_CADENCE and idle < RX_IDLE_READS):
            self._rx_mode = RX_CADENCE
            self._rx_idle = idle  # the sockets stay quiet: the next read comes from the timer
            if self._rx_read is None and not self.links.closed:
                # the rest of a backlog (a stall) at the next loop turn, else after the period
                delay = 0 if len(events) >= RX_MAX_EVENTS else RX_PERIOD_S
                self._rx_read = self.loop.call_later(delay, self._read_rx)
            return
        self._rx_mode = RX_DWELL if mode == RX_CADENCE else RX_QUIET
        self._rx_idle = 0
        self.links.rearm()

    def _on_timer(self) -> None:
        now = now_us()
        if now - self.timer.fired_us > self.scheduling.late_us:
            self.scheduling.late(self.timer.fired_us, now)  # max_auto_priority (daemon/scheduling.py)
        self._guarded(self.driver.tick, now, now_us)
        self._after(now)

    def _send_due(self, now: int) -> None:
        """Adverts before everything else: when the earliest deadline is due, run the engine's deadlines (a
        master's adverts go out from here) before other work of the loop. Cheap when nothing is due."""
        nd = self.engine.next_deadline(now)
        if 0 <= nd <= now:
            self._guarded(self.driver.tick, now, now_us)
            self.engine.flush()

    def _guarded(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a bug must not stop the adverts of every instance: log it and go on
            log.exception("internal error in %s", getattr(fn, "__name__", fn))

    def _after(self, now: int) -> None:
        """Send what is queued, then re-arm the one loop timer to the earliest deadline."""
        self.engine.flush()
        # exact up to the next read; an early value past it only keeps the timer where it is (below)
        nd = self.driver.next_deadline(now + RX_PERIOD_US)
        if self.watchdog is not None:
            # it rescues masters' adverts only: with no master it sleeps (no timerfd re-arm per wake-up)
            self.watchdog.feed(nd if self.engine.masters else -1)
        if nd < 0:
            return
        armed = self.timer.armed_us
        if 0 <= armed < now - self.scheduling.late_us:
            self.scheduling.late(armed, now)  # woken late, by something else than its timer
        if 0 <= armed <= nd and (armed == nd or armed > now + RX_PERIOD_US):
            # armed early enough; firing early is harmless (nothing due is a no-op). A backup's deadlines move
            # later with every advert: a fire due before the next read would be a wake-up for nothing, so
            # that one is moved (one timerfd_settime instead of a wake-up: docs/costs.md#receive-dwell).
            return
        self.timer.arm(nd)

    def _on_link(self, ifindex: int, ifname: str, up: bool) -> None:
        """Link states (the first one of each interface comes from the monitor's initial dump) feed tracking:
        the instance's own interface (weight 0: down = FAULT) and every track_interface."""
        was = self._link_up.get(ifindex)
        self._link_up[ifindex] = up
        if was is not None and not up:
            for inst in self.insts.values():
                if inst.ifindex == ifindex:
                    log.info("(%s) Interface %s is down", inst.name, ifname)
        self.tracking.interface(ifname, up)

    # --- reload ------------------------------------------------------------------------------------------

    async def reload(self) -> None:
        """SIGHUP: apply a new config (daemon/reload.py Reloader)."""
        await self.reloader()

    def rearm(self) -> None:
        """Send what is queued and set the loop timer to the earliest deadline (after a reload)."""
        self._after(now_us())


def early_owners(cfg: Config) -> list[Any]:
    """The address owners (priority 255) that start before the other instances are built: not in a sync
    group (a group starts together)."""
    grouped = {m for sg in cfg.sync_groups.values() for m in sg.group}
    return [icfg for icfg in cfg.instances if icfg.priority == PRIO_OWNER and icfg.name not in grouped]


def _no_peer_fault(inst: RunningInstance, eff: Effective) -> Effective:
    """keepalived.conf(5) unicast_fault_no_peer: an instance with no unicast_peer does not fall back to
    multicast; it stays in FAULT whatever its trackers say."""
    icfg = inst.io.cfg
    if not icfg.unicast_fault_no_peer or icfg.unicast_peers:
        return eff
    return dataclasses.replace(eff, fault=True, faults=(*eff.faults, "unicast_fault_no_peer, no peer"))
