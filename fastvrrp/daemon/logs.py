"""Where the daemon's log goes, as keepalived's options say: syslog (default), the console (-l), a file (-g).

Syslog is written by `SyslogHandler` straight to the /dev/log datagram socket in the form glibc's syslog(3)
uses (`<PRI>Mmm dd hh:mm:ss IDENT[PID]: message`), so rsyslog and journald parse our lines as they parse
keepalived's. We do not use syslog(3) or logging.handlers.SysLogHandler: both send on a blocking socket,
and a syslog daemon that stops reading (its queue full: 10 datagrams by default, net.unix.max_dgram_qlen)
would stall the event loop and with it the adverts. Our socket is non-blocking: a message that finds the
queue full is dropped and counted, and the count is logged once the socket takes messages again. A missing
or restarted syslog daemon costs one connect attempt per second at most, never an error.

The priority of each line is the facility of -S (default LOG_DAEMON, as keepalived's) and a severity from
the record's level: ERROR and worse as LOG_ERR (CRITICAL as LOG_CRIT), WARNING as LOG_WARNING, INFO (the
state transitions among them) as LOG_INFO, DEBUG (-D) as LOG_DEBUG. keepalived itself sends every line
as LOG_INFO; ours let journald (`journalctl -p err`) and rsyslog filter by severity.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
import syslog
import time
from typing import Any

# Where syslog listens. FASTVRRP_SYSLOG_SOCKET moves it (tests bind their own socket there).
DEFAULT_SYSLOG_SOCKET = "/dev/log"
SYSLOG_SOCKET_ENV = "FASTVRRP_SYSLOG_SOCKET"
DEFAULT_IDENT = "fastvrrp"

# -S: keepalived takes 0-7 (LOG_LOCAL0-7), local0-local7, user or daemon; the default is daemon.
FACILITIES: dict[str, int] = {
    **{str(n): getattr(syslog, f"LOG_LOCAL{n}") for n in range(8)},
    **{f"local{n}": getattr(syslog, f"LOG_LOCAL{n}") for n in range(8)},
    "user": syslog.LOG_USER,
    "daemon": syslog.LOG_DAEMON,
}

CONSOLE_FORMAT = "%(asctime)s fastvrrp[%(process)d]: %(message)s"
_MAX_DATAGRAM = 16 * 1024  # longer messages are cut: a datagram over the socket's buffer would be lost whole
_RECONNECT_S = 1.0
_DROP_ERRNOS = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.ENOMEM, errno.EMSGSIZE)


def parse_facility(text: str) -> int:
    """The syslog facility (the LOG_* value, already shifted) for -S TEXT; ValueError names what -S takes."""
    fac = FACILITIES.get(text.strip().lower())
    if fac is None:
        raise ValueError(f"-S {text!r}: the syslog facility must be 0-7, local0-local7, user or daemon")
    return fac


def severity(levelno: int) -> int:
    """The syslog severity of a logging level."""
    if levelno >= logging.CRITICAL:
        return syslog.LOG_CRIT
    if levelno >= logging.ERROR:
        return syslog.LOG_ERR
    if levelno >= logging.WARNING:
        return syslog.LOG_WARNING
    if levelno >= logging.INFO:
        return syslog.LOG_INFO
    return syslog.LOG_DEBUG


class SyslogHandler(logging.Handler):
    """Sends each record as one datagram to a syslog socket; never blocks, never raises."""

    def __init__(self, path: str, facility: int = syslog.LOG_DAEMON, ident: str = DEFAULT_IDENT) -> None:
        super().__init__()
        self.path, self.facility, self.ident = path, facility, ident
        self.dropped = 0  # messages lost since the last one that got through
        self._sock: socket.socket | None = None
        self._next_connect = 0.0

    def _connected(self) -> socket.socket | None:
        if self._sock is not None:
            return self._sock
        now = time.monotonic()
        if now < self._next_connect:
            return None
        self._next_connect = now + _RECONNECT_S
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            return None
        self._sock = sock
        return sock

    def datagram(self, record: logging.LogRecord, text: str) -> bytes:
        stamp = time.strftime("%b %e %H:%M:%S", time.localtime(record.created))
        pri = self.facility | severity(record.levelno)
        return f"<{pri}>{stamp} {self.ident}[{record.process}]: {text}".encode(errors="replace")[
            :_MAX_DATAGRAM
        ]

    def _send(self, data: bytes) -> bool:
        sock = self._connected()
        if sock is None:
            return False
        try:
            sock.send(data)
            return True
        except OSError as e:
            if e.errno not in _DROP_ERRNOS:
                # ECONNREFUSED, ENOTCONN ...: the syslog daemon went away; connect again later.
                sock.close()
                self._sock = None
            return False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = self.datagram(record, self.format(record))
        except Exception:
            self.handleError(record)
            return
        if not self._send(data):
            self.dropped += 1
            return
        if self.dropped:
            note = logging.makeLogRecord({"levelno": logging.WARNING, "levelname": "WARNING"})
            lost, self.dropped = self.dropped, 0
            text = f"{lost} log message(s) were dropped: the syslog socket {self.path} did not take them"
            if not self._send(self.datagram(note, text)):
                self.dropped = lost + 1

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        super().close()


class LogFileHandler(logging.FileHandler):
    """-g FILE. As keepalived's log file, written through a buffer unless --flush-log-file asks for a flush
    after each line; warnings and errors are flushed at once either way, and everything at exit."""

    def __init__(self, path: str, flush_each: bool) -> None:
        super().__init__(path, mode="a", encoding="utf-8")
        self.flush_each = flush_each

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is None:
            self.stream = self._open()
        try:
            self.stream.write(self.format(record) + self.terminator)
            if self.flush_each or record.levelno >= logging.WARNING:
                self.stream.flush()
        except Exception:
            self.handleError(record)


def setup(args: Any, netns: str | None = None) -> list[logging.Handler]:
    """Install the handlers the options ask for on the root logger; return them.

    `netns` (-s NAME) makes the syslog ident `fastvrrp_NAME`, as keepalived's becomes `Keepalived_NAME`.
    """
    handlers: list[logging.Handler] = []
    fmt = logging.Formatter(CONSOLE_FORMAT)
    if not getattr(args, "no_syslog", False):
        facility = (
            parse_facility(args.log_facility) if getattr(args, "log_facility", None) else syslog.LOG_DAEMON
        )
        ident = getattr(args, "log_ident", None) or DEFAULT_IDENT
        if netns:
            ident = f"{ident}_{netns}"
        path = os.environ.get(SYSLOG_SOCKET_ENV) or DEFAULT_SYSLOG_SOCKET
        sh = SyslogHandler(path, facility, ident)
        sh.setFormatter(logging.Formatter("%(message)s"))
        handlers.append(sh)
    if getattr(args, "log_console", False):
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(fmt)
        handlers.append(console)
    if getattr(args, "log_file", None):
        fh = LogFileHandler(args.log_file, bool(getattr(args, "flush_log_file", False)))
        fh.setFormatter(fmt)
        handlers.append(fh)
    # What no format of ours prints is not gathered for each record: the caller's file and line (a stack walk,
    # the largest part of a record's cost), the thread and the multiprocessing names.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    for h in handlers:
        root.addHandler(h)
    root.setLevel(logging.WARNING)  # libraries: warnings and worse
    level = logging.DEBUG if getattr(args, "log_detail", False) else logging.INFO
    logging.getLogger("fastvrrp").setLevel(level)  # -D details ours, not every library's
    return handlers


def has_console(handlers: list[logging.Handler]) -> bool:
    return any(type(h) is logging.StreamHandler for h in handlers)
