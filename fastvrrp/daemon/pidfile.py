"""The daemon's pid files: keepalived's default names, and no start while a live process holds one.

fastvrrp is one process where keepalived is a parent and a VRRP child, so it takes keepalived's parent pid
file by default (/run/keepalived.pid, or /run/keepalived/NAME/keepalived.pid with -s NAME, as keepalived
names it): the scripts and exporters that signal `$(cat /run/keepalived.pid)` reach it unchanged. -r
(keepalived's VRRP child pid file) is written too when given, with the same pid.
"""

from __future__ import annotations

import contextlib
import os

RUN_DIR = "/run"


def default_pid_file(netns: str | None) -> str:
    if netns:
        return os.path.join(RUN_DIR, "keepalived", netns, "keepalived.pid")
    return os.path.join(RUN_DIR, "keepalived.pid")


class PidFileHeld(Exception):
    """Another live process's pid is in the file."""


def _holder(path: str) -> int | None:
    """The live process whose pid `path` holds, if any (not us: a file we wrote ourselves is ours)."""
    try:
        with open(path) as f:
            text = f.read(64).strip()
    except (FileNotFoundError, IsADirectoryError):
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    if pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # stale: its process is gone
    except PermissionError:
        return pid  # alive, another user's
    return pid


def _command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def check_free(path: str) -> None:
    """Raise PidFileHeld (with the reason) if a live process holds `path`."""
    pid = _holder(path)
    if pid is not None:
        raise PidFileHeld(
            f"pid file {path} is held by running process {pid} ({_command_of(pid)}): not starting "
            "(stop it, or give this daemon another pid file with -p)"
        )


def write(path: str) -> None:
    """Write our pid to `path` (its directory made if need be); PidFileHeld if a live process has it."""
    check_free(path)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def remove(path: str) -> None:
    """Remove `path` if it still holds our pid (a successor's file is left alone)."""
    try:
        with open(path) as f:
            mine = f.read(64).strip() == str(os.getpid())
    except OSError:
        return
    if mine:
        with contextlib.suppress(OSError):
            os.unlink(path)
