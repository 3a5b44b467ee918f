"""systemd's notify protocol (sd_notify(3), systemd.service(5) Type=notify): newline-separated KEY=VALUE
datagrams to the AF_UNIX socket named by $NOTIFY_SOCKET, no library needed.

What the daemon says: READY=1 (with MAINPID and STATUS) once every instance has its sockets and its initial
state, STATUS= with the number of instances per state after transitions (batched: at most one datagram per
STATUS_MIN_INTERVAL_S however many instances move at once), RELOADING=1 with MONOTONIC_USEC on SIGHUP and
READY=1 when the reload is done or refused, STOPPING=1 before the priority-0 handover, and WATCHDOG=1 every
half WATCHDOG_USEC from a loop timer, so a stuck event loop stops feeding the watchdog.

Without NOTIFY_SOCKET nothing is sent; a send that fails is logged once and never stops the daemon.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping

log = logging.getLogger("fastvrrp")

STATUS_MIN_INTERVAL_S = 0.5  # STATUS= after transitions: at most two datagrams a second
REFUSED_NOTE = "; the last reload was refused (see the log)"
_KEY = re.compile(r"[A-Z][A-Z0-9_]*\Z")
# The states in the order STATUS= lists them (keepalived's names, as the log and the status file use).
_STATE_ORDER = ("MASTER", "BACKUP", "FAULT", "INIT")


def socket_address(value: str | None) -> str | None:
    """The address $NOTIFY_SOCKET names: an absolute path, or '@name' for a name in the abstract namespace
    (returned with its leading NUL, as socket.sendto takes it). None when unset or empty; ValueError with the
    reason for anything systemd itself would not hand over."""
    if not value:
        return None
    if value.startswith("@"):
        if len(value) < 2:
            raise ValueError("NOTIFY_SOCKET '@' names no abstract socket")
        return "\0" + value[1:]
    if not value.startswith("/"):
        raise ValueError(f"NOTIFY_SOCKET {value!r} is neither an absolute path nor an '@' abstract name")
    if len(value.encode()) > 107:  # sun_path holds 108 bytes with the terminating NUL
        raise ValueError(f"NOTIFY_SOCKET {value!r} is longer than an AF_UNIX path may be")
    return value


def format_message(fields: Iterable[tuple[str, object]]) -> bytes:
    """One datagram: KEY=VALUE lines. A key must be upper case (sd_notify's variables); a value must be one
    line (a newline would start another assignment), so newlines in values become spaces."""
    lines = []
    for key, value in fields:
        if not _KEY.match(key):
            raise ValueError(f"not a notify variable name: {key!r}")
        text = str(value).replace("\r", " ").replace("\n", " ")
        lines.append(f"{key}={text}")
    if not lines:
        raise ValueError("an empty notify message")
    return "\n".join(lines).encode()  # no trailing newline, as systemd-notify(1) sends it


def watchdog_interval_us(environ: Mapping[str, str], pid: int) -> int | None:
    """WATCHDOG_USEC when the watchdog is meant for this process (WATCHDOG_PID unset or ours), else None.
    A value that is not a positive integer is refused with ValueError."""
    raw = environ.get("WATCHDOG_USEC")
    if not raw:
        return None
    wpid = environ.get("WATCHDOG_PID")
    if wpid:
        if not wpid.isdigit():
            raise ValueError(f"WATCHDOG_PID {wpid!r} is not a process id")
        if int(wpid) != pid:
            return None
    if not raw.isdigit() or int(raw) == 0:
        raise ValueError(f"WATCHDOG_USEC {raw!r} is not a positive number of microseconds")
    return int(raw)


def status_text(states: Iterable[str]) -> str:
    """'3 instances: 1 MASTER, 2 BACKUP' (states in a fixed order, an unknown one after the known ones)."""
    counts = collections.Counter(states)
    total = sum(counts.values())
    order = [s for s in _STATE_ORDER if counts[s]] + sorted(s for s in counts if s not in _STATE_ORDER)
    noun = "instance" if total == 1 else "instances"
    if not order:
        return f"0 {noun}"
    return f"{total} {noun}: " + ", ".join(f"{counts[s]} {s}" for s in order)


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as RELOADING=1 wants it in MONOTONIC_USEC."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class NotifySocket:
    """Sends datagrams to the service manager. Disabled (every send a no-op) without an address."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._sock: socket.socket | None = None
        self._failed = False  # the first failure is logged; the later ones are counted
        self.failures = 0
        self.sent = 0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: tuple[str, object]) -> bool:
        """Send one message; False (logged the first time) if it could not go. Never raises OSError."""
        if self.address is None:
            return False
        data = format_message(fields)
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)  # a full manager queue must not block the loop
            self._sock.sendto(data, self.address)
        except OSError as exc:
            self.failures += 1
            if not self._failed:
                self._failed = True
                shown = "@" + self.address[1:] if self.address.startswith("\0") else self.address
                log.warning("cannot notify the service manager at %s: %s (going on without)", shown, exc)
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class ServiceNotifier:
    """The daemon's side of Type=notify: what to say at start, reload and stop, the batched STATUS= updates
    and the watchdog timer. `states()` returns the current state name of every instance."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: NotifySocket,
        states: Callable[[], Iterable[str]],
        watchdog_us: int | None = None,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.states = states
        self.watchdog_us = watchdog_us
        self._watchdog: asyncio.TimerHandle | None = None
        self._status_timer: asyncio.TimerHandle | None = None
        self._status_sent_at = -1e9  # loop time of the last STATUS= datagram
        self._last_status = ""
        self._ready_sent = False
        self._stopping = False
        self._note = ""  # appended to STATUS= (a refused reload)

    @classmethod
    def from_environ(
        cls,
        loop: asyncio.AbstractEventLoop,
        states: Callable[[], Iterable[str]],
        environ: MutableMapping[str, str] | None = None,
    ) -> ServiceNotifier:
        """Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, and take them out of the environment so the
        notify and tracking scripts this daemon runs do not talk to systemd in its name (sd_notify(3))."""
        env = os.environ if environ is None else environ
        address = watchdog_us = None
        try:
            address = socket_address(env.get("NOTIFY_SOCKET"))
        except ValueError as exc:
            log.warning("%s: not notifying the service manager", exc)
        try:
            watchdog_us = watchdog_interval_us(env, os.getpid())
        except ValueError as exc:
            log.warning("%s: not feeding the watchdog", exc)
        for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(key, None)
        if address is None:
            watchdog_us = None  # nobody to ping
        return cls(loop, NotifySocket(address), states, watchdog_us)

    @property
    def enabled(self) -> bool:
        return self.sock.enabled

    # --- the life cycle ----------------------------------------------------------------------------------

    def start_watchdog(self) -> None:
        """Ping now and then every half WATCHDOG_USEC, from the loop (a stuck loop stops pinging)."""
        if self.watchdog_us and self.enabled and self._watchdog is None:
            self._ping()

    def ready(self) -> None:
        """READY=1 with the current counts (first time: MAINPID too)."""
        if not self.enabled:
            return
        text = self._status()
        fields: list[tuple[str, object]] = [("READY", 1), ("STATUS", text)]
        if not self._ready_sent:
            fields.append(("MAINPID", os.getpid()))
        self._ready_sent = True
        self._send_status_fields(fields, text)

    def reloading(self) -> None:
        """RELOADING=1 with MONOTONIC_USEC (systemd.service(5) Type=notify-reload); `reloaded()` ends it.
        Before the first READY=1 a reload is part of starting, and systemd hears of neither."""
        if self.enabled and self._ready_sent and not self._stopping:
            self.sock.send(("RELOADING", 1), ("MONOTONIC_USEC", monotonic_usec()), ("STATUS", "reloading"))

    def reloaded(self, refused: bool = False) -> None:
        """READY=1 after a reload, only if the daemon had said READY=1 before. A refused configuration is
        named in STATUS= (what `systemctl status` shows) until a reload succeeds."""
        self._note = REFUSED_NOTE if refused else ""
        if self._ready_sent and not self._stopping:
            self.ready()

    def stopping(self) -> None:
        self._stopping = True
        self._cancel_status()
        if self.enabled:
            self.sock.send(("STOPPING", 1), ("STATUS", "stopping: " + self._status()))

    def close(self) -> None:
        self._cancel_status()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self.sock.close()

    # --- STATUS= after transitions -------------------------------------------------------------------------

    def states_changed(self) -> None:
        """Some instance changed state: send the new counts soon, at most once per STATUS_MIN_INTERVAL_S (a
        thousand transitions in one burst give one datagram)."""
        if not self.enabled or not self._ready_sent or self._stopping or self._status_timer is not None:
            return
        wait = max(0.0, self._status_sent_at + STATUS_MIN_INTERVAL_S - self.loop.time())
        self._status_timer = self.loop.call_later(wait, self._send_status)

    def _send_status(self) -> None:
        self._status_timer = None
        text = self._status()
        if text != self._last_status:
            self._send_status_fields([("STATUS", text)], text)

    def _send_status_fields(self, fields: list[tuple[str, object]], text: str) -> None:
        self.sock.send(*fields)
        self._status_sent_at = self.loop.time()
        self._last_status = text

    def _status(self) -> str:
        return status_text(self.states()) + self._note

    def _cancel_status(self) -> None:
        if self._status_timer is not None:
            self._status_timer.cancel()
            self._status_timer = None

    def _ping(self) -> None:
        self.sock.send(("WATCHDOG", 1))
        assert self.watchdog_us is not None
        self._watchdog = self.loop.call_later(self.watchdog_us / 2e6, self._ping)
