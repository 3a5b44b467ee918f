"""A Unix stream socket only root can use: the kernel side of the control API (daemon/control.py).

`open_private_socket(path)` refuses (PrivateSocketError, with a message an operator can act on) rather than
open a socket someone else could reach or replace:

- every directory from / down to the socket's own must belong to root (or to the daemon's user) and must
  not be writable by group or others, unless its sticky bit is set (as /tmp's is: others may then create
  their own files there but cannot rename or remove ours);
- an existing file at the path is removed only if it is a socket nobody answers on (a stale one from a
  daemon that died); a live socket means another daemon uses the path, anything else is not ours to remove;
- the socket is made under umask 0177, so it is 0600 from the moment it exists, and checked after bind:
  a socket, owned by us, no group or other bits.

Connecting to a Unix socket needs write permission on it, so mode 0600 leaves only root (and the daemon's
own user) able to connect; `peer_credentials` (SO_PEERCRED) tells the server who did, for the log and a
second check.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import struct
from dataclasses import dataclass

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class PrivateSocketError(Exception):
    """The control socket cannot be opened safely; the message says why and what to change."""


@dataclass(frozen=True, slots=True)
class Peer:
    """Who is at the other end of a Unix socket (SO_PEERCRED), and the process name from /proc."""

    pid: int
    uid: int
    gid: int
    comm: str

    def __str__(self) -> str:
        return f"pid {self.pid} uid {self.uid} ({self.comm})"


def peer_credentials(sock: socket.socket) -> Peer:
    pid, uid, gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    try:
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
    except OSError:
        comm = "?"  # gone already, or in another pid namespace
    return Peer(pid, uid, gid, comm)


def check_directories(directory: str) -> None:
    """Raise PrivateSocketError unless nobody but root (or us) can change `directory` or its parents."""
    me = os.geteuid()
    d = os.path.realpath(directory)
    while True:
        try:
            st = os.stat(d)
        except OSError as e:
            raise PrivateSocketError(f"cannot check directory {d}: {e.strerror}") from e
        if not stat.S_ISDIR(st.st_mode):
            raise PrivateSocketError(f"{d} is not a directory")
        if st.st_uid not in (0, me):
            raise PrivateSocketError(
                f"directory {d} belongs to uid {st.st_uid}: that user could replace the control socket; "
                "put it in a directory owned by root"
            )
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            who = "others" if st.st_mode & stat.S_IWOTH else "its group"
            raise PrivateSocketError(
                f"directory {d} (mode {stat.S_IMODE(st.st_mode):04o}) is writable by {who} without the sticky"
                " bit: they could replace the control socket; use a directory only root can write"
            )
        if d == "/":
            return
        d = os.path.dirname(d)


def _remove_stale(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise PrivateSocketError(f"{path} exists and is not a socket; not removing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError as e:
        if e.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise PrivateSocketError(f"cannot tell whether {path} is in use: {e.strerror}") from e
    else:
        raise PrivateSocketError(
            f"another process (a running fastvrrp?) answers on {path}; give this daemon its own --control"
        )
    finally:
        probe.close()
    os.unlink(path)  # a stale socket left by a daemon that did not stop cleanly


def open_private_socket(path: str, backlog: int = 16) -> tuple[socket.socket, int]:
    """A listening, non-blocking AF_UNIX stream socket at `path`, mode 0600; returns it and its inode (for
    `remove_socket`). The directory is made (0755) if missing. Raises PrivateSocketError."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    except OSError as e:
        raise PrivateSocketError(f"cannot create directory {directory}: {e.strerror}") from e
    check_directories(directory)
    _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        st = os.lstat(path)
        if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise PrivateSocketError(f"{path} is not a private socket after bind (mode {st.st_mode:o})")
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise PrivateSocketError(f"cannot open the control socket {path}: {e.strerror or e}") from e
    except PrivateSocketError:
        sock.close()
        raise
    return sock, st.st_ino


def remove_socket(path: str, inode: int) -> None:
    """Unlink `path` if it is still the socket we made (another daemon may have taken the path since)."""
    try:
        if os.lstat(path).st_ino == inode:
            os.unlink(path)
    except OSError:
        pass
