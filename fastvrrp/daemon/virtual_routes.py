"""virtual_routes and virtual_rules: turned into netlink arguments once per instance, added after its
addresses and removed before them while it is MASTER (a route or rule may use a VIP as its source). The
netlink calls are io/routes.py's. static_routes and static_rules: added at start and removed at every stop
(one that leaves the VIPs, -V, included), as keepalived 2.2.7 does; a reload adds and removes the difference.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastvrrp.config import Config, InstanceConfig
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


def static_specs(cfg: Config) -> tuple[routes.NetSpec, ...]:
    """static_routes then static_rules: installed while the daemon runs, whatever the instances' states."""
    return tuple(routes.route_spec(r) for r in cfg.static_routes) + tuple(
        routes.rule_spec(r) for r in cfg.static_rules
    )


async def apply_static(nl: netlink.NetlinkWorker, specs: tuple[routes.NetSpec, ...], add: bool) -> None:
    """Add (at start, as keepalived does) or remove (at a graceful stop) static routes and rules."""
    if not specs:
        return
    res = await nl.call(routes.apply, specs, add)
    verb = "add" if add else "remove"
    for spec, why in res.failed:
        log.error("cannot %s static %s '%s': %s", verb, spec.kind, spec.text, why)


async def reload_static(
    nl: netlink.NetlinkWorker, old: Config, new: Config, addresses: Callable[[], Awaitable[None]]
) -> None:
    """A reload: the static routes and rules the new file drops go, then `addresses` changes the static
    addresses, then every static route and rule of the new file is put in place (those already there stay
    as they are; one that went with an address it used as its source comes back)."""
    before, after = static_specs(old), static_specs(new)
    await apply_static(nl, tuple(s for s in before if s not in after), False)
    await addresses()
    await apply_static(nl, after, True)
