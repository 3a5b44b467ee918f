"""static_ipaddress: addresses that belong to the node, not to a virtual router. The daemon adds them at
start, before the static routes (a route may use one as its source) and before any instance (an interface
may have no other address), and removes them when it stops, after the static routes, whatever the
instances' states: a stop that leaves the VIPs (-V) removes them too, as keepalived 2.2.7 does
(docs/keepalived-config.md). A reload removes the ones the new file drops and adds the ones it brings. No
GARP, no tracking: VRRP never moves them.

An address already there is no error (another tool or an earlier run put it there); it is removed at stop
all the same, as keepalived does."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from fastvrrp.config import Config, ConfigError, Problem
from fastvrrp.daemon.instances import address_spec
from fastvrrp.io import netlink

log = logging.getLogger("fastvrrp")


class StaticAddresses:
    """The static addresses the daemon put in place (as added, so a stop removes exactly those)."""

    __slots__ = ("nl", "specs")

    def __init__(self, nl: netlink.NetlinkWorker) -> None:
        self.nl = nl
        self.specs: tuple[netlink.VipSpec, ...] = ()

    async def specs_of(self, cfg: Config, strict: bool = False) -> tuple[netlink.VipSpec, ...]:
        """The file's static_ipaddress lines as netlink wants them (a line without `dev` on the default
        interface); a line whose interface does not exist (-t names those) is logged and left out. `strict`
        (the start): a line without `dev` when the default interface does not exist refuses the file, as
        keepalived 2.2.7 does ("Static address ... requires either an interface or default interface")."""
        out = []
        for va in cfg.static_ipaddress:
            dev = va.dev or cfg.global_defs.default_interface
            spec = await address_spec(self.nl, va, dev)
            if spec is None and strict and va.dev is None:
                msg = f"static_ipaddress: address {va.address} names no interface and {dev} is not here"
                raise ConfigError([Problem(va.file, va.line, msg)])
            if spec is None:
                log.error("static address %s/%d: interface %s does not exist", va.address, va.prefixlen, dev)
            elif spec not in out:
                out.append(spec)
        return tuple(out)

    async def start(self, cfg: Config) -> None:
        self.specs = await self.specs_of(cfg, strict=True)
        await self._apply(self.specs, True)

    async def reload(self, cfg: Config) -> None:
        """Make the kernel hold the new file's static addresses: the dropped ones go first, then the new
        ones come (an address moved to another interface or prefix is both)."""
        before, after = self.specs, await self.specs_of(cfg)
        await self._apply([s for s in before if s not in after], False)
        await self._apply([s for s in after if s not in before], True)
        self.specs = after

    async def stop(self) -> None:
        await self._apply(self.specs, False)
        self.specs = ()

    async def _apply(self, specs: Sequence[netlink.VipSpec], add: bool) -> None:
        if not specs:
            return
        res = await (self.nl.add_addresses(specs) if add else self.nl.remove_addresses(specs))
        for spec in res.done:
            log.info("static address %s %s", spec.text(), "added" if add else "removed")
        for spec, err in res.failed:
            verb = "add" if add else "remove"
            log.error("cannot %s static address %s: %s", verb, spec.text(), os.strerror(err))
