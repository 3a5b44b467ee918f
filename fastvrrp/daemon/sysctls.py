"""The kernel settings this run changes (for use_vmac and promote_secondaries): each is remembered the first
time it changes and put back on exit; failed writes are logged against the instance that asked for them.
"""

from __future__ import annotations

import logging

from fastvrrp.io import sysctl

log = logging.getLogger("fastvrrp")


class Sysctls:
    def __init__(self) -> None:
        self.changes = sysctl.SysctlChanges()

    def set(self, path: str, value: int | str) -> bool:
        """Write one setting; False if it failed (the failure waits for `report`)."""
        return self.changes.apply(path, value)

    def report(self, instance: str) -> None:
        """Log the failed writes so far as warnings of `instance`, and forget them."""
        for path, err in self.changes.errors:
            log.warning("(%s) sysctl %s: %s", instance, path, err)
        self.changes.errors.clear()

    def restore(self) -> None:
        self.changes.restore()
