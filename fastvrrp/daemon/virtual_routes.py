"""virtual_routes and virtual_rules: turned into netlink arguments once per instance, added after its
addresses and removed before them while it is MASTER (a route or rule may use a VIP as its source). The
netlink calls are io/routes.py's.
"""

from __future__ import annotations

import logging

from fastvrrp.config import InstanceConfig
from fastvrrp.daemon.driver import RunningInstance
from fastvrrp.io import netlink, routes

log = logging.getLogger("fastvrrp")


def specs_for(icfg: InstanceConfig) -> tuple[routes.NetSpec, ...]:
    """The instance's routes then rules, from the fields the reader typed (and judged) at read time."""
    specs = [routes.route_spec(r, icfg.interface) for r in icfg.virtual_routes]
    specs += [routes.rule_spec(r) for r in icfg.virtual_rules]
    return tuple(specs)


async def apply(nl: netlink.NetlinkWorker, inst: RunningInstance, add: bool) -> None:
    """Add or remove the instance's routes and rules (in the netlink thread); log the ones that failed."""
    res = await nl.call(routes.apply, inst.io.routes, add)
    verb = "add" if add else "remove"
    for spec, why in res.failed:
        log.error("(%s) cannot %s %s '%s': %s", inst.name, verb, spec.kind, spec.text, why)
