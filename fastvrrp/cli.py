"""The command line: keepalived's options for the daemon, plus a few subcommands.

    fastvrrp -f FILE [-n] [-l] [-D] [-d] [-p PIDFILE] [-s NS]  run the daemon (keepalived's options)
    fastvrrp -f FILE -t                                        test the configuration
    fastvrrp -f FILE --dump-json                               print the parsed configuration as JSON
    fastvrrp decode FILE... [--json]                           decode VRRP packets in capture files
    fastvrrp ctl status | drain | undrain | priority | reset   run-time control of a running daemon
    fastvrrp demo | status | who-has ...                       see `fastvrrp SUBCOMMAND --help`

keepalived takes its options without a subcommand, and existing unit files and scripts call it that way, so
the first word decides: a known subcommand name selects it, anything else is parsed as keepalived's options.
The modules behind each mode are imported only when that mode runs, so `decode` works on a machine where
the daemon's dependencies (uvloop, pyroute2) are absent.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from fastvrrp import __version__

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
SYSLOG_SOCKET_ENV = "FASTVRRP_SYSLOG_SOCKET"  # fastvrrp.daemon.logs reads it

# Exit codes: 0 success, 1 the configuration has errors (--dump-json; -t exits as keepalived, see
# EXIT_TEST_*), 2 runtime trouble (damaged capture, a part of fastvrrp that is not installed), 64 usage
# (EX_USAGE, sysexits.h).
EXIT_OK = 0
EXIT_CONFIG = 1
EXIT_FAILURE = 2
EXIT_USAGE = 64


class UsageError(Exception):
    pass


class _Exit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() decides the exit code and tests see the message."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:  # type: ignore[override]
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


# keepalived options fastvrrp does not have: refused with the reason, never accepted and ignored.
NOT_SUPPORTED: dict[str, str] = {
    "check": "-C/--check (only the IPVS health checker): fastvrrp runs VRRP only",
    "all_subsystems": "--all (run the checker and BFD processes too): fastvrrp has only VRRP",
    "release_vips": "-X/--release-vips (drop the VIPs on a transition forced by a signal)",
    "snmp": "-x/--snmp: fastvrrp has no SNMP agent (see --metrics for Prometheus)",
    "snmp_agent_socket": "-A/--snmp-agent-socket: fastvrrp has no SNMP agent",
    "genhash": "-T/--genhash: fastvrrp has no genhash mode",
    "core_dump_pattern": "-M/--core-dump-pattern (sets the host-wide kernel.core_pattern)",
}


def _umask(text: str) -> int:
    """-u NUMBER as C reads a number (keepalived's form): 0NNN octal, 0xNN hex, else decimal."""
    try:
        if len(text) > 1 and text[0] == "0" and text.isdigit():
            value = int(text, 8)  # C: a leading 0 means octal
        else:
            value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid umask {text!r}: give a number such as 022") from None
    if not 0 <= value <= 0o777:
        raise argparse.ArgumentTypeError(f"umask {text!r} is out of range 0-0777")
    return value


def _facility(text: str) -> str:
    from fastvrrp.daemon.logs import parse_facility

    try:
        parse_facility(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _refused(p: argparse._ActionsContainer, *flags: str, dest: str, value: bool = False) -> None:
    why = NOT_SUPPORTED[dest]
    if value:
        p.add_argument(*flags, dest=dest, nargs="?", const="-", metavar="X", help=f"not supported: {why}")
    else:
        p.add_argument(*flags, dest=dest, action="store_true", help=f"not supported: {why}")


def _configuration_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration")
    g.add_argument(
        "-f",
        "--use-file",
        dest="config_file",
        metavar="FILE",
        default=DEFAULT_CONFIG,
        help=f"the configuration file (default {DEFAULT_CONFIG})",
    )
    g.add_argument(
        "-i",
        "--config-id",
        dest="config_id",
        metavar="ID",
        help="the id @ID lines are kept for (default: the short host name)",
    )
    g.add_argument(
        "-e",
        "--all-config",
        action="store_true",
        help="refuse a configuration whose included file is missing (fastvrrp always does)",
    )
    g.add_argument(
        "-t",
        "--config-test",
        dest="config_test",
        nargs="?",
        const="-",
        metavar="LOG_FILE",
        help="check the configuration and this host (interfaces, script security), print FILE:LINE: "
        "findings (to LOG_FILE if given), exit as keepalived -t: 0 clean, 4 unusable, 5 problems worked "
        "around, 6 scripts would run as root without enable_script_security",
    )
    g.add_argument(
        "--strict-config",
        dest="strict_config",
        action="store_true",
        help="refuse a configuration with problems keepalived works around (global_defs: "
        "fastvrrp_strict_config); without it they are worked around as keepalived does, with a warning",
    )
    g.add_argument(
        "-d",
        "--dump-conf",
        dest="dump_conf",
        action="store_true",
        help="write the resolved configuration to the log at start, then run",
    )
    g.add_argument(
        "--dump-json",
        dest="dump_json",
        action="store_true",
        help="print the resolved configuration as JSON on stdout and exit (fastvrrp's own)",
    )


def _logging_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("logging (default: syslog, facility daemon)")
    g.add_argument("-l", "--log-console", action="store_true", help="log to the console (stderr)")
    g.add_argument("-D", "--log-detail", action="store_true", help="detailed log messages (debug level)")
    g.add_argument(
        "-S",
        "--log-facility",
        metavar="FACILITY",
        type=_facility,
        help="syslog facility: 0-7 (local0-7), local0-local7, user or daemon (default)",
    )
    g.add_argument("-G", "--no-syslog", action="store_true", help="do not log to syslog")
    g.add_argument(
        "-g", "--log-file", metavar="FILE", help="also log to FILE (buffered; see --flush-log-file)"
    )
    g.add_argument("--flush-log-file", action="store_true", help="flush the -g file after each line")
    g.add_argument(
        "--log-ident",
        metavar="NAME",
        help="syslog ident (default fastvrrp; Keepalived_vrrp keeps rules written for keepalived)",
    )


def _process_control_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("process")
    g.add_argument(
        "--signum",
        nargs="?",
        const="",
        metavar="SIGFUNC",
        help="print the signal number for STOP, RELOAD, DATA, STATS, STATS_CLEAR or JSON and exit",
    )
    g.add_argument("-n", "--dont-fork", action="store_true", help="stay in the foreground (else detach)")
    g.add_argument(
        "-p",
        "--pid",
        dest="pid_file",
        metavar="FILE",
        help="pid file (default /run/keepalived.pid, with -s NAME "
        "/run/keepalived/NAME/keepalived.pid); a live process holding it stops the start",
    )
    g.add_argument(
        "-r",
        "--vrrp_pid",
        dest="vrrp_pid_file",
        metavar="FILE",
        help="keepalived's VRRP child pid file: written with fastvrrp's pid when given",
    )
    g.add_argument(
        "-c",
        "--checkers_pid",
        dest="checkers_pid_file",
        metavar="FILE",
        help="keepalived's checker pid file: no checker runs, so none is written (keepalived -P too)",
    )
    g.add_argument(
        "-b",
        "--bfd_pid",
        dest="bfd_pid_file",
        metavar="FILE",
        help="keepalived's BFD pid file: no BFD process runs, so none is written",
    )
    g.add_argument(
        "-s",
        "--namespace",
        metavar="NAME",
        help="run inside network namespace NAME (made by `ip netns add NAME`)",
    )
    g.add_argument(
        "-u", "--umask", metavar="NUMBER", type=_umask, help="umask for the files fastvrrp creates"
    )
    g.add_argument("-m", "--core-dump", action="store_true", help="lift the core size limit (RLIMIT_CORE)")
    g.add_argument("-P", "--vrrp", action="store_true", help="only VRRP (always so: fastvrrp has no checker)")
    g.add_argument("-B", "--no_bfd", action="store_true", help="no BFD (always so)")
    g.add_argument(
        "-I", "--dont-release-ipvs", action="store_true", help="keep IPVS (fastvrrp never touches it)"
    )
    g.add_argument(
        "-R",
        "--dont-respawn",
        action="store_true",
        help="no respawn (always so: one process, no child to respawn; use systemd's Restart=)",
    )
    g.add_argument(
        "-V",
        "--dont-release-vrrp",
        action="store_true",
        help="on stop, leave the VIPs, virtual routes and VMACs in place and send no priority-0 advert",
    )
    g.add_argument(
        "-a",
        "--address-monitoring",
        action="store_true",
        help="log every address netlink reports added or removed (those present at start too)",
    )


def _fastvrrp_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fastvrrp's own")
    g.add_argument(
        "--metrics",
        metavar="ADDR:PORT",
        help="serve Prometheus metrics at http://ADDR:PORT/metrics (off unless given)",
    )
    g.add_argument(
        "--no-keepalived-metrics",
        action="store_true",
        help="leave out the keepalived_* families (mehdy/keepalived-exporter's names) from --metrics",
    )
    g.add_argument(
        "--no-kernel-fast-path",
        action="store_true",
        help="read every advert from the receive sockets: no eBPF filter absorbing a followed master's "
        "unchanged adverts in the kernel (docs/costs.md#kernel-fast-path)",
    )
    g.add_argument(
        "--status-file",
        metavar="FILE",
        help="where `fastvrrp status` reads the state (default /run/fastvrrp/status.json, with -s NAME "
        "/run/fastvrrp/NAME/status.json)",
    )
    g.add_argument(
        "--control",
        metavar="PATH",
        help="control socket for `fastvrrp ctl` (default /run/fastvrrp/control.sock, with -s NAME "
        "/run/fastvrrp/NAME/control.sock; root only, mode 0600)",
    )
    g.add_argument(
        "--dump-dir",
        metavar="DIR",
        help="where SIGUSR1, SIGUSR2 and the JSON signal write keepalived.data, .stats, .json (default /tmp)",
    )


def _refused_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("not supported (refused with the reason)")
    _refused(g, "-C", "--check", dest="check")
    _refused(g, "--all", dest="all_subsystems")
    _refused(g, "-X", "--release-vips", dest="release_vips")
    _refused(g, "-x", "--snmp", dest="snmp")
    _refused(g, "-A", "--snmp-agent-socket", dest="snmp_agent_socket", value=True)
    _refused(g, "-T", "--genhash", dest="genhash")
    _refused(g, "-M", "--core-dump-pattern", dest="core_dump_pattern", value=True)


def keepalived_parser() -> argparse.ArgumentParser:
    """keepalived(8)'s options (2.2.7): each one does what keepalived's does, or is refused with a reason."""
    p = _Parser(
        prog="fastvrrp",
        description="A VRRP daemon that runs keepalived.conf. Without a subcommand: keepalived's options. "
        "Options that only concern keepalived's checker, BFD or SNMP parts are refused when they ask "
        "for something fastvrrp does not do, and accepted when what they ask is already so "
        "(-P, -B, -I, -R, -c, -b).",
        epilog="subcommands: ctl, decode, demo, status, who-has (fastvrrp SUBCOMMAND --help). "
        f"Syslog goes to /dev/log (the environment variable {SYSLOG_SOCKET_ENV} moves it).",
    )
    _configuration_options(p)
    _logging_options(p)
    _process_control_options(p)
    _fastvrrp_options(p)
    _refused_options(p)
    p.add_argument("-v", "--version", action="store_true", help="print the version and exit")
    return p


def decode_parser() -> argparse.ArgumentParser:
    from fastvrrp.tools import decode

    p = _Parser(
        prog="fastvrrp decode", description="Print every VRRP packet in capture files, decoded and judged."
    )
    decode.add_arguments(p)
    return p


def _load(module: str, func: str) -> Callable[..., Any]:
    """Import `module.func` for a mode; a missing part is a clear message, not a traceback."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (e.name == module or module.startswith(e.name + ".")):
            raise _Missing(f"{module} is not part of this installation") from e
        raise _Missing(f"{module} needs {e.name}, which is not installed") from e
    except ImportError as e:  # e.g. the compiled extension is not built
        raise _Missing(f"{module} cannot be loaded: {e}") from e
    fn = getattr(mod, func, None)
    if fn is None:
        raise _Missing(f"{module} has no {func}()")
    return fn  # type: ignore[no-any-return]


class _Missing(Exception):
    pass


def _run_decode(argv: Sequence[str]) -> int:
    from fastvrrp.tools import decode

    args = decode_parser().parse_args(list(argv))
    try:
        return decode.run(args)
    except BrokenPipeError:
        # `fastvrrp decode x.pcap | head`: the reader left; that is not an error.
        return EXIT_OK


def _run_passthrough(module: str, argv: Sequence[str]) -> int:
    """A subcommand whose module parses its own options (--help included): hand it the rest of argv."""
    fn = _load(module, "main")
    try:
        rc = fn(list(argv))
    except SystemExit as e:  # argparse in the module: --help (0) or a usage error (2)
        code = e.code
        if code is None:
            return EXIT_OK
        return code if isinstance(code, int) else EXIT_USAGE
    return int(rc or 0)


SUBCOMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "ctl": lambda argv: _run_passthrough("fastvrrp.tools.ctl", argv),
    "decode": _run_decode,
    "demo": lambda argv: _run_passthrough("fastvrrp.lab.demo", argv),
    "status": lambda argv: _run_passthrough("fastvrrp.tools.status", argv),
    "who-has": lambda argv: _run_passthrough("fastvrrp.tools.who_has", argv),
}


def _problem_line(pr: Any) -> str:
    """`FILE:LINE: message`, the form compilers use, so editors can jump to it."""
    file = getattr(pr, "file", None)
    line = getattr(pr, "line", None)
    msg = getattr(pr, "message", None)
    if msg is None:
        msg = str(pr)
    if file and line:
        return f"{file}:{line}: {msg}"
    if file:
        return f"{file}: {msg}"
    return str(msg)


# `-t`'s exit codes are keepalived 2.2.7's: the file cannot be used; problems were worked around (the file
# starts, with warnings); scripts would run as root without enable_script_security.
EXIT_TEST_UNUSABLE = 4
EXIT_TEST_WORKED_AROUND = 5
EXIT_TEST_SCRIPT_SECURITY = 6


def _config_mode(args: argparse.Namespace) -> int:
    """-t and --dump-json: read the configuration with fastvrrp.config.check_file and report like a
    compiler; -t also checks the host (interfaces in this namespace, script security) as keepalived -t."""
    res = _load("fastvrrp.config", "check_file")(args.config_file, args.config_id, strict=args.strict_config)
    cfg, problems = res.config, list(res.problems)
    adjustments, security = list(res.adjustments) if not res.strict else [], []
    missing_interfaces = False
    if args.config_test is not None and cfg is not None:
        host = _load("fastvrrp.config.host_checks", "host_findings")(cfg)
        problems += host.unusable
        adjustments += host.worked_around
        missing_interfaces = bool(host.worked_around)
        security = host.script_security
        if res.strict:
            problems += adjustments
            adjustments = []
    lines = [_problem_line(pr) for pr in problems]
    # Adjustments and unsupported keepalived features are not errors: the file still runs.
    lines += [_warning_line(pr) for pr in [*adjustments, *security, *res.unsupported]]
    bad = cfg is None or bool(problems)
    if args.config_test is not None and not args.dump_json:
        verdict = "configuration has errors" if bad else "configuration is valid"
        if not bad and adjustments:
            verdict += f" ({len(adjustments)} problem(s) worked around as keepalived does)"
        lines.append(f"{args.config_file}: {verdict}")
    if args.config_test not in (None, "-"):
        # keepalived -t=FILE writes its findings to FILE
        with open(args.config_test, "w") as f:
            f.write("".join(line + "\n" for line in lines))
    else:
        for line in lines:
            print(line, file=sys.stderr)
    if args.dump_json and cfg is not None:
        data = cfg.to_json()
        # to_json() may hand back text or a JSON-ready structure; print JSON either way.
        sys.stdout.write((data if isinstance(data, str) else json.dumps(data, indent=2)).rstrip("\n") + "\n")
    if args.dump_json or args.config_test is None:
        return EXIT_CONFIG if bad else EXIT_OK
    if bad:
        return EXIT_TEST_UNUSABLE
    if missing_interfaces:  # keepalived -t stops there, before its script security check
        return EXIT_TEST_WORKED_AROUND
    if security:
        return EXIT_TEST_SCRIPT_SECURITY
    return EXIT_TEST_WORKED_AROUND if adjustments else EXIT_OK


def _warning_line(pr: Any) -> str:
    return (
        _problem_line(pr).replace(": ", ": warning: ", 1) if getattr(pr, "file", None) else f"warning: {pr}"
    )


def _keepalived_mode(argv: Sequence[str]) -> int:
    if argv and argv[0] in ("-T", "--genhash"):  # genhash's own options follow: refuse before parsing them
        raise UsageError(f"fastvrrp: not supported: {NOT_SUPPORTED['genhash']}")
    args = keepalived_parser().parse_args(list(argv))
    if args.signum is not None:
        from fastvrrp.daemon.signals import signum_answer

        code, out, err = signum_answer(args.signum)
        sys.stdout.write(out)
        sys.stderr.write(err)
        return code
    if args.version:
        print(f"fastvrrp {__version__} (keepalived-compatible command line)")
        return EXIT_OK
    for dest, why in NOT_SUPPORTED.items():
        if getattr(args, dest) not in (None, False):
            raise UsageError(f"fastvrrp: not supported: {why}")
    if args.config_test is not None or args.dump_json:
        return _config_mode(args)
    if args.dump_dir is not None and not os.path.isdir(args.dump_dir):
        raise UsageError(f"fastvrrp: --dump-dir {args.dump_dir}: not a directory")
    run = _load("fastvrrp.daemon.process", "run")
    return int(run(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            return SUBCOMMANDS[argv[0]](argv[1:])
        return _keepalived_mode(argv)
    except UsageError as e:
        print(str(e), file=sys.stderr)
        print(
            "usage: fastvrrp [-f FILE] [-n] [-l] [-D] [-p PIDFILE] [-i ID] [-t] [--dump-json] | fastvrrp "
            "{ctl,decode,demo,status,who-has} ... (--help for more)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except _Missing as e:
        print(f"fastvrrp: {e}", file=sys.stderr)
        return EXIT_FAILURE
    except _Exit as e:  # --help
        return e.status
    except KeyboardInterrupt:
        return 130
