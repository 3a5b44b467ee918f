"""The kernel's process events connector (NETLINK_CONNECTOR, CN_IDX_PROC): fork, exec, comm and exit of
every process, as they happen.

Subscribing (PROC_CN_MCAST_LISTEN) needs CAP_NET_ADMIN, and the kernel only reports to sockets in the
initial network namespace, so when we run inside another one the socket is made in /proc/1/ns/net (a socket
keeps the namespace it was made in). Used by health's vrrp_track_process, which decides what the events mean.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import struct
from collections.abc import Callable

log = logging.getLogger("fastvrrp.health")  # its only user is vrrp_track_process: its errors log there

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_COMM = 0x00000200
PROC_EVENT_EXIT = 0x80000000
NLMSG_DONE = 3
_NLH = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_CN = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
_EVH = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
_PAIR = struct.Struct("=II")
_FORK = struct.Struct("=IIII")  # parent pid, parent tgid, child pid, child tgid

# on_event(what, pid, parent): what is a PROC_EVENT_*; pid the process (for a fork: the child); parent the
# forking process for PROC_EVENT_FORK, else 0.
OnProcEvent = Callable[[int, int, int], None]


def send_mcast(s: socket.socket, op: int) -> None:
    """Subscribe (PROC_CN_MCAST_LISTEN) or unsubscribe (PROC_CN_MCAST_IGNORE) a connector socket."""
    payload = struct.pack("=I", op)
    cn = _CN.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0)
    nlh = _NLH.pack(_NLH.size + len(cn) + len(payload), NLMSG_DONE, 0, 0, os.getpid())
    s.send(nlh + cn + payload)


def open_socket() -> socket.socket:
    """A subscribed, non-blocking connector socket in the initial network namespace. Raises OSError."""

    def make() -> socket.socket:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            s.bind((0, CN_IDX_PROC))
            send_mcast(s, PROC_CN_MCAST_LISTEN)
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        return s

    try:
        same = os.stat("/proc/self/ns/net").st_ino == os.stat("/proc/1/ns/net").st_ino
    except OSError:
        same = True
    if same:
        return make()
    from fastvrrp.io.nsexec import call_in_netns

    return call_in_netns("/proc/1/ns/net", make)


class ProcConnector:
    """One connector socket read on an event loop. `on_event(what, pid, parent)` is called for each fork,
    exec, comm and exit of a process; events about threads are counted in `events` but not passed on.
    `on_lost()` is called when the kernel dropped events (ENOBUFS): the caller must recount from /proc.
    Making one raises OSError when the connector cannot be used."""

    def __init__(self, on_event: OnProcEvent, on_lost: Callable[[], None]) -> None:
        self.sock: socket.socket | None = open_socket()
        self.on_event = on_event
        self.on_lost = on_lost
        self.events = 0
        self.malformed = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self.sock is not None
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        if self.sock is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
        try:
            send_mcast(self.sock, PROC_CN_MCAST_IGNORE)
        except OSError:
            pass
        self.sock.close()
        self.sock = None

    def _readable(self) -> None:
        assert self.sock is not None
        for _ in range(256):  # bounded per wake-up so a fork storm cannot starve the loop
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    self.on_lost()
                    continue
                log.error("vrrp_track_process: connector read failed: %s", e)
                return
            self.parse(data)

    def parse(self, data: bytes) -> None:
        """Every netlink message in one datagram; a message too short to hold an event counts as malformed,
        and a length that runs past the datagram ends it."""
        off = 0
        while off + _NLH.size <= len(data):
            ln = _NLH.unpack_from(data, off)[0]
            if ln < _NLH.size or off + ln > len(data):
                self.malformed += 1
                return
            body = off + _NLH.size
            if ln >= _NLH.size + _CN.size + _EVH.size:
                idx, val = _CN.unpack_from(data, body)[:2]
                if idx == CN_IDX_PROC and val == CN_VAL_PROC:
                    self._event(data, body + _CN.size, off + ln)
            else:
                self.malformed += 1
            off += (ln + 3) & ~3

    def _event(self, data: bytes, p: int, end: int) -> None:
        what = _EVH.unpack_from(data, p)[0]
        q = p + _EVH.size
        self.events += 1
        if what in (PROC_EVENT_EXEC, PROC_EVENT_COMM, PROC_EVENT_EXIT) and q + 8 <= end:
            pid, tgid = _PAIR.unpack_from(data, q)
            if pid == tgid:  # the process itself, not one of its threads
                self.on_event(what, tgid, 0)
        elif what == PROC_EVENT_FORK and q + 16 <= end:
            _ppid, ptgid, cpid, ctgid = _FORK.unpack_from(data, q)
            if cpid == ctgid:  # a new process, not a thread
                self.on_event(what, ctgid, ptgid)
