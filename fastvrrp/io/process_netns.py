"""Move the whole daemon into a named network namespace (-s NAME), as `ip netns exec NAME` would.

Called on the main thread before any socket, netlink channel or thread exists, so everything the daemon
opens later - and every thread it starts, which inherits the namespace - is inside NAME. Like `ip netns
exec` (and keepalived -s, which also makes a mount namespace), it then takes a private mount namespace and
mounts a sysfs there, so /sys/class/net shows NAME's interfaces and not the ones it came from.
"""

from __future__ import annotations

import ctypes
import os

from fastvrrp.io.nsexec import NETNS_RUN_DIR, enter_netns

CLONE_NEWNS = 0x00020000
MS_REC = 16384
MS_SLAVE = 1 << 19
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


class NoSuchNamespace(Exception):
    pass


def netns_path(name: str) -> str:
    return os.path.join(NETNS_RUN_DIR, name)


def _call(what: str, rc: int) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def enter_process_netns(name: str) -> None:
    """Enter namespace NAME for good; NoSuchNamespace if `ip netns add NAME` was never done, OSError else."""
    if "/" in name or name in ("", ".", ".."):
        raise NoSuchNamespace(f"-s {name!r}: a namespace name, as `ip netns list` shows it, has no '/'")
    path = netns_path(name)
    if not os.path.exists(path):
        raise NoSuchNamespace(
            f"-s {name}: no network namespace {path} (create it with `ip netns add {name}`)"
        )
    enter_netns(name)
    # Our own view of the mounts, then a sysfs that belongs to the namespace we are now in.
    _call("unshare(CLONE_NEWNS)", _libc.unshare(CLONE_NEWNS))
    _call("mount --make-rslave /", _libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None))
    _libc.umount2(b"/sys", MNT_DETACH)  # nothing mounted there is fine too
    _call("mount sysfs on /sys", _libc.mount(name.encode(), b"/sys", b"sysfs", 0, None))
