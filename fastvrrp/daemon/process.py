"""The daemon as a process (`fastvrrp -f FILE ...`): logging, the pid file, the configuration check before
starting, the signals (SIGTERM/SIGINT stop, SIGHUP reloads) and the uvloop loop that runs a Daemon.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any

from fastvrrp.config import ConfigError, check
from fastvrrp.daemon import control, status
from fastvrrp.daemon.service import Daemon
from fastvrrp.io.unix_socket import PrivateSocketError

log = logging.getLogger("fastvrrp")


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
        cfg,
        path,
        args.config_id,
        fast_path=os.environ.get("FASTVRRP_FAST_PATH", "1") != "0",
        status_path=getattr(args, "status_file", None) or status.DEFAULT_PATH,
        metrics_addr=metrics_addr,
        control_path=getattr(args, "control", None) or control.DEFAULT_PATH,
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(daemon.reload()))
    try:
        await daemon.start()
    except ConfigError as e:
        for p in e.problems:
            log.error("%s", p)
        daemon.close()
        return 1
    except PrivateSocketError as e:
        log.error("not starting: %s (--control PATH chooses the control socket)", e)
        daemon.close()
        return 1
    log.info("started: %d VRRP instance(s) from %s", len(daemon.insts), path)
    await stop.wait()
    log.info("stopping")
    await daemon.stop()
    log.info("stopped")
    return 0
