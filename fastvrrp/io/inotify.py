"""inotify on directories, one instance per event loop, through libc (the stdlib has no binding).

inotify instances are a scarce per-user resource (fs.inotify.max_user_instances is often 128), so every
watcher on a loop shares one (`shared_inotify`). Watches are on directories, not files: a file that is
replaced by a rename, deleted or created later is still seen. Used by health's track_file.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
import struct
from collections.abc import Callable

log = logging.getLogger("fastvrrp.health")  # its only user is track_file: its errors log there

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_IGNORED = 0x8000
IN_Q_OVERFLOW = 0x4000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len

DIR_MASK = (
    IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
)

_libc = ctypes.CDLL(None, use_errno=True)


class Inotify:
    """One inotify instance (they are a scarce per-user resource: max_user_instances is often 128) shared by
    every FileTracker on a loop. Watches directories; calls back with (directory, file name, mask)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"inotify_init1: {os.strerror(e)}")
        self.fd = fd
        self._wd: dict[int, str] = {}  # wd -> directory
        self._dirs: dict[str, int] = {}
        self._subs: dict[str, list[Callable[[str, int], None]]] = {}  # directory -> callbacks(name, mask)
        self.events = 0
        self.overflows = 0
        loop.add_reader(fd, self._readable)

    def watch(self, directory: str, cb: Callable[[str, int], None]) -> None:
        if directory not in self._dirs:
            wd = _libc.inotify_add_watch(self.fd, os.fsencode(directory), DIR_MASK)
            if wd < 0:
                e = ctypes.get_errno()
                raise OSError(e, f"inotify_add_watch({directory}): {os.strerror(e)}")
            self._dirs[directory] = wd
            self._wd[wd] = directory
        self._subs.setdefault(directory, []).append(cb)

    def unwatch(self, directory: str, cb: Callable[[str, int], None]) -> None:
        subs = self._subs.get(directory, [])
        if cb in subs:
            subs.remove(cb)
        if not subs and directory in self._dirs:
            wd = self._dirs.pop(directory)
            self._wd.pop(wd, None)
            self._subs.pop(directory, None)
            _libc.inotify_rm_watch(self.fd, wd)

    def close(self) -> None:
        if self.fd >= 0:
            # before close: uvloop aborts otherwise (docs/kernel-notes.md#remove-the-reader-before-closing)
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1

    def _readable(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                log.error("inotify read failed: %s", e)
                return
            off = 0
            while off + _EVENT.size <= len(data):
                wd, mask, _cookie, ln = _EVENT.unpack_from(data, off)
                name = (
                    data[off + _EVENT.size : off + _EVENT.size + ln]
                    .split(b"\0", 1)[0]
                    .decode(errors="replace")
                )
                off += _EVENT.size + ln
                self.events += 1
                if mask & IN_Q_OVERFLOW:
                    # events were lost: everybody re-reads
                    self.overflows += 1
                    for subs in list(self._subs.values()):
                        for cb in list(subs):
                            cb("", mask)
                    continue
                d = self._wd.get(wd)
                if d is None:
                    continue
                for cb in list(self._subs.get(d, ())):
                    cb(name, mask)


_INOTIFY: dict[int, Inotify] = {}


def shared_inotify(loop: asyncio.AbstractEventLoop) -> Inotify:
    """The loop's one Inotify, made on first use (and again if the previous one was closed)."""
    ino = _INOTIFY.get(id(loop))
    if ino is None or ino.fd < 0 or ino.loop is not loop:
        ino = _INOTIFY[id(loop)] = Inotify(loop)
    return ino
