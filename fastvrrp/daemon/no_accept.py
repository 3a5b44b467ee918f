"""no_accept (RFC 5798 Accept_Mode False): which instances drop traffic to their VIPs while MASTER, the
nftables table they share (made on first need, removed on exit), and the drop put in place before the VIPs
are added and lifted after they are removed. The nft calls are io/noaccept.py's.
"""

from __future__ import annotations

import logging

from fastvrrp.config import InstanceConfig
from fastvrrp.daemon.driver import RunningInstance
from fastvrrp.io import netlink, noaccept

log = logging.getLogger("fastvrrp")


class NoAccept:
    def __init__(self, nl: netlink.NetlinkWorker) -> None:
        self.nl = nl
        self.ready = False  # the nftables table exists

    def decide(self, inst: RunningInstance, icfg: InstanceConfig) -> None:
        """Set `inst.io.no_accept`: not the owner, accept off, and VIPs to protect. Without nftables the
        instance runs anyway, accepting traffic (logged)."""
        inst.io.no_accept = not icfg.accept and not inst.core.owner and bool(inst.io.vips)
        if inst.io.no_accept and not self.ready:
            why = noaccept.available()
            if why is None:
                try:
                    noaccept.setup()
                    self.ready = True
                except noaccept.NoAcceptError as exc:
                    why = str(exc)
            if why is not None:
                log.error("(%s) no_accept not enforced (%s): the VIPs accept traffic", inst.name, why)
                inst.io.no_accept = False

    async def drop(self, inst: RunningInstance) -> None:
        await self.nl.in_thread(noaccept.drop, [v.address for v in inst.io.vips])

    async def undrop(self, inst: RunningInstance) -> None:
        await self.nl.in_thread(noaccept.undrop, [v.address for v in inst.io.vips])

    def teardown(self) -> None:
        if self.ready:
            try:
                noaccept.teardown()
            except noaccept.NoAcceptError as exc:
                log.error("cannot remove the nftables table %s: %s", noaccept.TABLE, exc)
            self.ready = False
