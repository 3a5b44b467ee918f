"""The signals the daemon answers, with keepalived's numbers, and the ones it ignores.

keepalived(8) SIGNALS names its signal functions; `keepalived --signum=NAME` prints their numbers, and
scripts and the Prometheus exporters send what it prints. Debian's keepalived 2.2.7 (read off it with
`keepalived --signum=NAME`, and compared again by tests/interop/test_keepalived_dumps.py):

    STOP 15 (SIGTERM)   RELOAD 1 (SIGHUP)   DATA 10 (SIGUSR1)   STATS 12 (SIGUSR2)
    STATS_CLEAR 63 (SIGRTMAX-1)   JSON 36 (SIGRTMIN+2)

TDATA, which the man page also lists, is not built into Debian's keepalived: it answers "Unknown sigfunc
TDATA" and exits 1, and so does fastvrrp. SIGINT stops as SIGTERM does.

Every other signal someone may send a daemon by hand or by library habit is caught and does nothing (caught,
not ignored, so the scripts the daemon starts get them back at their default), so none can take the daemon
down without its priority-0 handover: SIGPIPE, SIGALRM, SIGIO (SIGPOLL), SIGVTALRM, SIGPROF, SIGWINCH,
SIGURG, SIGTTIN, SIGTTOU, SIGTSTP (a daemon must not stop), SIGXFSZ, SIGXCPU, SIGPWR, SIGSTKFLT, SIGQUIT and
the real-time signals SIGRTMIN..SIGRTMAX not listed above. Left as they are: SIGKILL and SIGSTOP (they
cannot be caught), SIGCHLD and SIGCONT (their default does no harm and asyncio watches SIGCHLD), and the
fault signals SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT and SIGSYS (ignoring a real fault would
spin on it; they mean the process is broken).
"""

from __future__ import annotations

import signal
from collections.abc import Callable

# keepalived's signal functions and numbers on Linux (glibc: SIGRTMIN 34, SIGRTMAX 64).
SIGFUNC: dict[str, int] = {
    "STOP": int(signal.SIGTERM),
    "RELOAD": int(signal.SIGHUP),
    "DATA": int(signal.SIGUSR1),
    "STATS": int(signal.SIGUSR2),
    "STATS_CLEAR": int(signal.SIGRTMAX) - 1,
    "JSON": int(signal.SIGRTMIN) + 2,
}

# Never touched: cannot be caught, or asyncio's, or harmless by default, or a real fault.
_LEFT_ALONE = {
    signal.SIGKILL,
    signal.SIGSTOP,
    signal.SIGCHLD,
    signal.SIGCONT,
    signal.SIGSEGV,
    signal.SIGBUS,
    signal.SIGFPE,
    signal.SIGILL,
    signal.SIGTRAP,
    signal.SIGABRT,
    signal.SIGSYS,
}


def signum_answer(name: str | None) -> tuple[int, str, str]:
    """`keepalived --signum=NAME`: (exit code, stdout, stderr), as keepalived 2.2.7 answers."""
    if not name:
        return 1, "", "Missing parameter for option --signum\n"
    number = SIGFUNC.get(name)
    if number is None:
        return 1, "", f"Unknown sigfunc {name}\n"
    return 0, f"{number}\n", ""


def ignored_signals(handled: set[int]) -> list[int]:
    """Every catchable signal the daemon neither handles nor leaves alone: it ignores them."""
    out = []
    for s in signal.valid_signals():
        n = int(s)
        if n in handled or n in _LEFT_ALONE or n < 1:
            continue
        if n < int(signal.SIGRTMIN) and n not in {int(x) for x in signal.Signals}:
            continue  # 32, 33: glibc's own (threads); not ours to change
        out.append(n)
    return sorted(out)


def install(
    add_handler: Callable[[int, Callable[[], object]], None],
    *,
    stop: Callable[[], object],
    reload: Callable[[], object],
    data: Callable[[], object],
    stats: Callable[[], object],
    stats_clear: Callable[[], object],
    json: Callable[[], object],
) -> list[int]:
    """Wire keepalived's signals through `add_handler` (loop.add_signal_handler) and ignore the others;
    returns the signals set to be ignored."""
    table: dict[int, Callable[[], object]] = {
        int(signal.SIGTERM): stop,
        int(signal.SIGINT): stop,
        SIGFUNC["RELOAD"]: reload,
        SIGFUNC["DATA"]: data,
        SIGFUNC["STATS"]: stats,
        SIGFUNC["STATS_CLEAR"]: stats_clear,
        SIGFUNC["JSON"]: json,
    }
    for sig, fn in table.items():
        add_handler(sig, fn)
    ignored = ignored_signals(set(table))
    for sig in ignored:
        # A handler that does nothing, not SIG_IGN: an ignored signal stays ignored across exec, a caught one
        # goes back to its default, so the scripts the daemon runs get every signal as usual.
        add_handler(sig, _nothing)
    return ignored


def _nothing() -> None:
    pass
