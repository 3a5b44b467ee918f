"""The command line: keepalived's options for the daemon, plus a few subcommands.

    fastvrrp -f FILE [-n] [-l] [-D] [-p PIDFILE] [-i ID]     run the daemon (keepalived's options)
    fastvrrp -f FILE -t                                        test the configuration, exit 0 or 1
    fastvrrp -f FILE --dump-conf                               print the parsed configuration as JSON
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
import sys
from collections.abc import Callable, Sequence
from typing import Any

from fastvrrp import __version__

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"

# Exit codes: 0 success, 1 the configuration has errors (-t), 2 runtime trouble (damaged capture, a part
# of fastvrrp that is not installed), 64 usage (EX_USAGE, sysexits.h).
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


def keepalived_parser() -> argparse.ArgumentParser:
    """keepalived(8)'s options. Those that only concern its other subsystems are accepted and ignored."""
    p = _Parser(
        prog="fastvrrp",
        description="A VRRP daemon that runs keepalived.conf. Without a subcommand: keepalived's options.",
        epilog="subcommands: ctl, decode, demo, status, who-has (fastvrrp SUBCOMMAND --help)",
    )
    p.add_argument("-f", "--use-file", dest="config_file", metavar="FILE", default=DEFAULT_CONFIG)
    p.add_argument("-n", "--dont-fork", action="store_true", help="stay in the foreground")
    p.add_argument("-l", "--log-console", action="store_true", help="log to the console")
    p.add_argument("-D", "--log-detail", action="store_true", help="detailed log messages")
    p.add_argument(
        "-S", "--log-facility", metavar="FACILITY", help="syslog facility (0-7, local0-7, user, daemon)"
    )
    p.add_argument("-g", "--log-file", metavar="FILE", help="also log to FILE")
    p.add_argument("--flush-log-file", action="store_true")
    p.add_argument("-G", "--no-syslog", action="store_true")
    p.add_argument("-p", "--pid", dest="pid_file", metavar="FILE", help="pid file of the daemon")
    p.add_argument(
        "-r", "--vrrp_pid", dest="vrrp_pid_file", metavar="FILE", help="pid file (keepalived's VRRP child)"
    )
    p.add_argument("-c", "--checkers_pid", dest="checkers_pid_file", metavar="FILE", help="accepted, unused")
    p.add_argument("-b", "--bfd_pid", dest="bfd_pid_file", metavar="FILE", help="accepted, unused")
    p.add_argument("-i", "--config-id", dest="config_id", metavar="ID", help="configuration id for @ID lines")
    p.add_argument("-s", "--namespace", metavar="NAME", help="run inside network namespace NAME")
    p.add_argument(
        "-t",
        "--config-test",
        dest="config_test",
        nargs="?",
        const="-",
        metavar="LOG_FILE",
        help="check the configuration, print FILE:LINE: problems, exit 0 (good) or 1",
    )
    p.add_argument(
        "-d",
        "--dump-conf",
        dest="dump_conf",
        action="store_true",
        help="print the parsed configuration as JSON and exit (keepalived logs it and goes on)",
    )
    p.add_argument(
        "-P", "--vrrp", action="store_true", help="only VRRP (always so: fastvrrp has no IPVS checker)"
    )
    p.add_argument("-C", "--check", action="store_true", help="only the IPVS checker: not supported")
    p.add_argument("-B", "--no_bfd", action="store_true")
    p.add_argument("--all", dest="all_subsystems", action="store_true")
    p.add_argument("-X", "--release-vips", action="store_true")
    p.add_argument("-V", "--dont-release-vrrp", action="store_true", help="leave VIPs in place on exit")
    p.add_argument(
        "--metrics",
        metavar="ADDR:PORT",
        help="serve Prometheus metrics at http://ADDR:PORT/metrics (off unless given)",
    )
    p.add_argument(
        "--status-file",
        metavar="FILE",
        help="where `fastvrrp status` reads the state (default /run/fastvrrp/status.json)",
    )
    p.add_argument(
        "--control",
        metavar="PATH",
        help="control socket for `fastvrrp ctl` (default /run/fastvrrp/control.sock; root only, mode 0600)",
    )
    p.add_argument("-I", "--dont-release-ipvs", action="store_true")
    p.add_argument("-R", "--dont-respawn", action="store_true")
    p.add_argument("-a", "--address-monitoring", action="store_true")
    p.add_argument(
        "-e", "--all-config", action="store_true", help="refuse to start if an included file is missing"
    )
    p.add_argument("-u", "--umask", metavar="NUMBER")
    p.add_argument("-m", "--core-dump", action="store_true")
    p.add_argument("-x", "--snmp", action="store_true", help="not supported")
    p.add_argument("-v", "--version", action="store_true")
    return p


def decode_parser() -> argparse.ArgumentParser:
    from fastvrrp.tools import decode

    p = _Parser(
        prog="fastvrrp decode", description="Print every VRRP packet in capture files, decoded and judged."
    )
    decode.add_arguments(p)
    return p


def demo_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fastvrrp demo", description="Build a namespace lab and show a failover.")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="passed to fastvrrp.lab.demo")
    return p


def status_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fastvrrp status", description="Show the state of a running fastvrrp.")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="passed to fastvrrp.tools.status")
    return p


def ctl_parser() -> argparse.ArgumentParser:
    from fastvrrp.tools import ctl

    return ctl.parser()


def who_has_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="fastvrrp who-has", description="Listen for VRRP adverts and show who is master per VRID."
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help="passed to fastvrrp.tools.who_has")
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


def _run_passthrough(name: str, module: str, argv: Sequence[str]) -> int:
    parsers = {"ctl": ctl_parser, "demo": demo_parser, "status": status_parser, "who-has": who_has_parser}
    parser = parsers[name]()
    if argv and argv[0] in ("-h", "--help"):
        parser.print_help()
        return EXIT_OK
    fn = _load(module, "main")
    rc = fn(list(argv))
    return int(rc or 0)


SUBCOMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "ctl": lambda argv: _run_passthrough("ctl", "fastvrrp.tools.ctl", argv),
    "decode": _run_decode,
    "demo": lambda argv: _run_passthrough("demo", "fastvrrp.lab.demo", argv),
    "status": lambda argv: _run_passthrough("status", "fastvrrp.tools.status", argv),
    "who-has": lambda argv: _run_passthrough("who-has", "fastvrrp.tools.who_has", argv),
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


def _config_mode(args: argparse.Namespace) -> int:
    """-t and --dump-conf: read the configuration with fastvrrp.config.check and report like a compiler."""
    check = _load("fastvrrp.config", "check")
    cfg, problems, unsupported = check(args.config_file, args.config_id)
    lines = [_problem_line(pr) for pr in problems]
    # Unsupported keepalived features are not errors: the file still runs, without them.
    lines += [_problem_line(pr).replace(": ", ": warning: ", 1) if getattr(pr, "file", None) else
              f"warning: {pr}" for pr in unsupported]  # fmt: skip
    bad = cfg is None or bool(problems)
    if args.config_test is not None and not args.dump_conf:
        lines.append(f"{args.config_file}: {'configuration has errors' if bad else 'configuration is valid'}")
    if args.config_test not in (None, "-"):
        # keepalived -t=FILE writes its findings to FILE
        with open(args.config_test, "w") as f:
            f.write("".join(line + "\n" for line in lines))
    else:
        for line in lines:
            print(line, file=sys.stderr)
    if args.dump_conf and cfg is not None:
        data = cfg.to_json()
        # to_json() may hand back text or a JSON-ready structure; print JSON either way.
        sys.stdout.write((data if isinstance(data, str) else json.dumps(data, indent=2)).rstrip("\n") + "\n")
    return EXIT_CONFIG if bad else EXIT_OK


def _keepalived_mode(argv: Sequence[str]) -> int:
    args = keepalived_parser().parse_args(list(argv))
    if args.version:
        print(f"fastvrrp {__version__} (keepalived-compatible command line)")
        return EXIT_OK
    if args.check:
        raise UsageError("fastvrrp: -C/--check (IPVS checker only) is not supported: fastvrrp runs VRRP only")
    if args.config_test is not None or args.dump_conf:
        return _config_mode(args)
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
            "usage: fastvrrp [-f FILE] [-n] [-l] [-D] [-p PIDFILE] [-i ID] [-t] [--dump-conf] | fastvrrp "
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
