"""The daemon's Port: what the driver asks of the outside world. Address changes go to netlink (with the
no_accept drop and the virtual routes around them), announcements to the interface's frame sender,
transitions to the log, the notify scripts and FIFOs, the sync group notices and the status file.
Every call returns at once; address changes run as tasks that `settle()` waits for.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any

from fastvrrp import _engine
from fastvrrp.core.types import State, StateChanged
from fastvrrp.daemon import notify, status, virtual_routes
from fastvrrp.daemon.driver import RunningInstance
from fastvrrp.daemon.no_accept import NoAccept
from fastvrrp.io import netlink

log = logging.getLogger("fastvrrp")


class DaemonPort:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        engine: _engine.Engine,
        nl: netlink.NetlinkWorker,
        insts: dict[str, RunningInstance],
        notifier: notify.Notifier,
        group_changed: Callable[[str], None],
        book: status.StatusBook | None,
        write_status: Callable[[], None],
        no_accept: NoAccept,
    ) -> None:
        self.loop = loop
        self.engine = engine
        self.nl = nl
        self.insts = insts
        self.notifier = notifier
        self.group_changed = group_changed  # a member changed state (sync group notices)
        self.book = book
        self.write_status = write_status
        self.no_accept = no_accept
        self._tasks: set[asyncio.Task] = set()  # address changes in flight (stop waits for them)

    # --- the driver's calls ------------------------------------------------------------------------------

    def addresses(self, inst: RunningInstance, add: bool) -> None:
        if inst.io.vips:
            self._spawn(self._change_addresses(inst, add))

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
        self.notifier.instance_state(inst.name, inst.io.scripts, word, inst.core.priority)
        self.group_changed(inst.name)
        if self.book is not None:
            self.book.transition(inst.name, change.reason)
        self.loop.call_soon(self.write_status)  # the status file and systemd's STATUS=, once per batch

    def lower_priority(self, inst: RunningInstance, priority: int) -> None:
        log.info("(%s) received lower priority (%d) advert", inst.name, priority)
        self.notifier.instance_event(inst.name, inst.io.scripts, "MASTER_RX_LOWER_PRI", inst.core.priority)

    # --- addresses taken away behind our back (the link monitor) --------------------------------------------

    def on_addr(self, ifindex: int, family: int, address: str, prefixlen: int, added: bool) -> None:
        """A VIP removed while its instance is MASTER goes back."""
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
                        self._spawn(self._change_addresses(inst, True))
                        return

    def on_resync(self) -> None:
        """Address events were lost: every master adds its VIPs again."""
        for inst in self.insts.values():
            if inst.holds_addresses and inst.core.state is State.MASTER:
                self._spawn(self._change_addresses(inst, True))

    # --- address changes ---------------------------------------------------------------------------------

    async def settle(self) -> None:
        """Wait until no address change is in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _change_addresses(self, inst: RunningInstance, add: bool) -> None:
        verb = "add" if add else "remove"
        await self._before_address_change(inst, add)
        try:
            if add:
                res = await self.nl.fast_add(inst.io.add_batch)
            else:
                res = await self.nl.fast_remove(inst.io.add_batch)
        except Exception:
            log.exception("(%s) netlink %s failed", inst.name, verb)
            return
        finally:
            await self._after_address_change(inst, add)
        for spec, err in res.failed:
            log.error("(%s) cannot %s %s: %s", inst.name, verb, spec.text(), os.strerror(err))

    async def _before_address_change(self, inst: RunningInstance, add: bool) -> None:
        # no_accept: the drop is in place before the address exists (RFC 5798 6.4.3); routes and rules may
        # use a VIP as their source, so they go before the addresses do.
        try:
            if add and inst.io.no_accept:
                await self.no_accept.drop(inst)
            if not add and inst.io.routes:
                await virtual_routes.apply(self.nl, inst, False)
        except Exception:
            log.exception("(%s) preparing the address change failed", inst.name)

    async def _after_address_change(self, inst: RunningInstance, add: bool) -> None:
        try:
            if add and inst.io.routes:
                await virtual_routes.apply(self.nl, inst, True)
            if not add and inst.io.no_accept:
                await self.no_accept.undrop(inst)
        except Exception:
            log.exception("(%s) completing the address change failed", inst.name)
