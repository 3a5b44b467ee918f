"""global_defs' startup_script and shutdown_script, as keepalived 2.2.7 runs them: the startup script before
the daemon touches the kernel or starts an instance, the shutdown script once the instances have stopped and
their addresses are gone; the daemon waits for each, at most its timeout (`startup_script_timeout` /
`shutdown_script_timeout`, 1..1000 s, 10 by default), then the script is killed and the daemon goes on. A
script that fails is logged; it changes nothing else. Scripts run as the notify scripts do (script_user,
enable_script_security)."""

from __future__ import annotations

import logging
from typing import Any

from fastvrrp.health.runner import ScriptRunner

log = logging.getLogger("fastvrrp")

DEFAULT_TIMEOUT_S = 10


async def run(runner: ScriptRunner, other: Any, which: str) -> None:
    """Run `which` ("startup" or "shutdown") script of global_defs, if there is one, and wait for it."""
    script = other.get(f"{which}_script")
    if script is None:
        return
    timeout_s = other.get(f"{which}_script_timeout") or DEFAULT_TIMEOUT_S
    log.debug("running %s_script %s", which, script.command)
    res = await runner.run(script.command, timeout_s * 1000, user=script.user, group=script.group)
    if res.ok:
        log.debug("%s_script %s succeeded", which, script.command)
    else:
        log.warning("%s_script %s: %s", which, script.command, res.reason)
