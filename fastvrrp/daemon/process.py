"""The daemon as a process (`fastvrrp -f FILE ...`): the namespace (-s), the fork (unless -n), logging, the
pid file, the configuration check before starting, the signals (SIGTERM/SIGINT stop, SIGHUP reloads,
keepalived's dump signals write its dump files, the rest are ignored: daemon/signals.py) and the uvloop loop
that runs a Daemon.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import shlex
import signal
import sys
from typing import Any

from fastvrrp import __version__
from fastvrrp.config import Config, ConfigError, check
from fastvrrp.daemon import address_log, control, logs, pidfile, signals, status
from fastvrrp.daemon.service import Daemon
from fastvrrp.daemon.snapshots import DumpWriter
from fastvrrp.io.unix_socket import PrivateSocketError

log = logging.getLogger("fastvrrp")


def run(args: Any) -> int:
    """`fastvrrp -f FILE ...`: run until SIGTERM/SIGINT (in the background unless -n)."""
    import uvloop

    # Until the loop answers them, keepalived's dump signals and the rest are ignored, not fatal (no script
    # runs before the loop, which then catches them instead: daemon/signals.py).
    for sig in signals.ignored_signals({signal.SIGTERM, signal.SIGINT, signal.SIGHUP}):
        signal.signal(sig, signal.SIG_IGN)
    netns = getattr(args, "namespace", None)
    _process_options(args)  # -u first: it applies to the -g file too
    handlers = logs.setup(args, netns)
    console = logs.has_console(handlers)
    log.info("Starting fastvrrp %s", __version__)
    log.info("Command line: %s", shlex.join(["fastvrrp", *sys.argv[1:]]))
    if netns and not _enter_netns(netns, console):
        return 1
    cfg = _read_config(args, console)
    if cfg is None:
        return 1
    if not netns and cfg.global_defs.other.get("net_namespace"):
        # keepalived's top-level `net_namespace NAME` is -s NAME when the command line gives none (reading
        # the file does not depend on the namespace)
        netns = args.namespace = cfg.global_defs.other["net_namespace"]
        handlers = logs.setup(args, netns)  # the syslog ident names the namespace, as with -s
        console = logs.has_console(handlers)
        log.info("net_namespace %s: running inside it", netns)
        if not _enter_netns(netns, console):
            return 1
    pid_files = [getattr(args, "pid_file", None) or pidfile.default_pid_file(netns)]
    if getattr(args, "vrrp_pid_file", None):
        pid_files.append(args.vrrp_pid_file)
    try:
        for path in pid_files:
            pidfile.check_free(path)
    except pidfile.PidFileHeld as e:
        _fatal(str(e), console)
        return 1
    if not getattr(args, "dont_fork", False):
        _daemonize()  # after the checks, so whoever started us sees why we do not run, and the exit code
    try:
        for path in pid_files:
            pidfile.write(path)
    except (pidfile.PidFileHeld, OSError) as e:
        _fatal(str(e), console)
        for path in pid_files:
            pidfile.remove(path)
        return 1
    try:
        return uvloop.run(_main(args, cfg, console))
    finally:
        for path in pid_files:
            pidfile.remove(path)
        log.info("Stopped fastvrrp %s", __version__)


def _enter_netns(netns: str, console: bool) -> bool:
    from fastvrrp.io.process_netns import NoSuchNamespace, enter_process_netns

    try:
        enter_process_netns(netns)  # before any socket, netlink channel or thread exists
    except (NoSuchNamespace, OSError) as e:
        _fatal(str(e), console)
        return False
    return True


def default_status_file(netns: str | None) -> str:
    """One status file per namespace (-s NAME), so daemons in several namespaces do not share one."""
    return _per_namespace(status.DEFAULT_PATH, netns)


def default_control_socket(netns: str | None) -> str:
    """One control socket per namespace (-s NAME), as the status file."""
    return _per_namespace(control.DEFAULT_PATH, netns)


def _per_namespace(path: str, netns: str | None) -> str:
    if netns:
        return os.path.join(os.path.dirname(path), netns, os.path.basename(path))
    return path


def _process_options(args: Any) -> None:
    """-u (umask) and -m (core dumps), as keepalived applies them."""
    umask = getattr(args, "umask", None)
    if umask is not None:
        os.umask(umask)
    if getattr(args, "core_dump", False):
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        except (OSError, ValueError) as e:  # raising the hard limit needs CAP_SYS_RESOURCE
            log.warning("-m: cannot lift the core size limit: %s", e)


def _daemonize() -> None:
    """Without -n, as keepalived: detach from the terminal and the caller, who gets its prompt back."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    fd = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        os.dup2(fd, std)
    if fd > 2:
        os.close(fd)


def _fatal(message: str, console: bool) -> None:
    """An error that stops the start: logged, and on stderr too when the log does not go there."""
    log.error("%s", message)
    if not console:
        print(f"fastvrrp: {message}", file=sys.stderr)


def _read_config(args: Any, console: bool) -> Config | None:
    path = args.config_file
    cfg, problems, unsupported = check(path, args.config_id, strict=getattr(args, "strict_config", False))
    if cfg is None:
        for p in problems:
            _fatal(str(p), console)
        _fatal(f"{path}: configuration has errors, not starting", console)
        return None
    for note in unsupported:
        log.warning("%s", note)
    if getattr(args, "dump_conf", False):
        dump_config(cfg, path)
    return cfg


def dump_config(cfg: Config, path: str) -> None:
    """-d: the resolved configuration into the log, one line per log message, as keepalived dumps it."""
    log.info("------< Configuration of %s (resolved, as JSON) >------", path)
    for line in cfg.to_json(indent=2).splitlines():
        log.info("%s", line)
    log.info("------< end of configuration >------")


async def _reload(daemon: Daemon, args: Any) -> None:
    """SIGHUP; with -d the configuration now in charge is dumped again, as keepalived does after a reload."""
    before = daemon.cfg
    await daemon.reload()
    if getattr(args, "dump_conf", False) and daemon.cfg is not before:
        dump_config(daemon.cfg, args.config_file)


async def _main(args: Any, cfg: Config, console: bool) -> int:
    path = args.config_file
    metrics_addr = None
    if getattr(args, "metrics", None):
        host, _, port = args.metrics.rpartition(":")
        metrics_addr = (host.strip("[]") or "127.0.0.1", int(port))
    daemon = Daemon(
        cfg,
        path,
        args.config_id,
        fast_path=os.environ.get("FASTVRRP_FAST_PATH", "1") != "0",
        status_path=getattr(args, "status_file", None)
        or default_status_file(getattr(args, "namespace", None)),
        metrics_addr=metrics_addr,
        metrics_keepalived=not getattr(args, "no_keepalived_metrics", False),
        control_path=getattr(args, "control", None)
        or default_control_socket(getattr(args, "namespace", None)),
        # FASTVRRP_KERNEL_FAST_PATH=0 as --no-kernel-fast-path (for labs that cannot pass options, as
        # FASTVRRP_FAST_PATH=0 for the whole fast path)
        kernel_fast_path=not getattr(args, "no_kernel_fast_path", False)
        and os.environ.get("FASTVRRP_KERNEL_FAST_PATH", "1") != "0",
    )
    daemon.strict_config = bool(getattr(args, "strict_config", False))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    dumper = DumpWriter(daemon, getattr(args, "dump_dir", None))  # None: keepalived's directory
    signals.install(
        loop.add_signal_handler,
        stop=stop.set,
        reload=lambda: loop.create_task(_reload(daemon, args)),
        data=lambda: _dump(loop, dumper.data()),
        stats=lambda: _dump(loop, dumper.stats()),
        stats_clear=lambda: _dump(loop, dumper.stats(clear=True)),
        json=lambda: _dump(loop, dumper.json()),
    )
    try:
        await daemon.start()
    except ConfigError as e:  # what only the running system shows, such as a missing interface
        for p in e.problems:
            _fatal(str(p), console)
        await daemon.undo_kernel_changes()  # the static addresses and routes added before the refusal
        daemon.close()
        return 1
    except PrivateSocketError as e:
        _fatal(f"not starting: {e} (--control PATH chooses the control socket)", console)
        daemon.close()
        return 1
    if getattr(args, "address_monitoring", False):
        await address_log.start(daemon)
    log.info("started: %d VRRP instance(s) from %s", len(daemon.insts), path)
    await stop.wait()
    log.info("stopping")
    if getattr(args, "dont_release_vrrp", False):
        await daemon.leave()  # -V
    else:
        await daemon.stop()
    log.info("stopped")
    return 0


def _dump(loop: asyncio.AbstractEventLoop, writing: Any) -> None:
    """A dump signal: the file is written by a task; a failure is logged, never the end of the daemon."""

    async def guarded() -> None:
        try:
            await writing
        except Exception:
            log.exception("writing a dump file failed")

    loop.create_task(guarded())
