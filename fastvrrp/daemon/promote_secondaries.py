"""keepalived promote_secondaries: the per-interface kernel setting that keeps the other addresses of a
subnet (the VIPs) when its primary address is removed. Set while we run, put back on exit with the rest.
"""

from __future__ import annotations

from fastvrrp.config import InstanceConfig
from fastvrrp.daemon.sysctls import Sysctls
from fastvrrp.io import sysctl


def promote_secondaries(sysctls: Sysctls, icfg: InstanceConfig) -> None:
    """While we run, removing the primary address of the VIPs' interface promotes a secondary (a VIP in the
    same subnet) instead of deleting it too."""
    if not icfg.promote_secondaries or not icfg.interface:
        return
    if not sysctls.set(sysctl.conf_path(4, icfg.interface, "promote_secondaries"), 1):
        sysctls.report(icfg.name)
