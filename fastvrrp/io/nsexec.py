"""Run a function inside another network namespace, in a throwaway thread.

setns(CLONE_NEWNET) changes the namespace of the calling *thread* only, so a short-lived thread can enter a
namespace, create sockets there (a socket stays in the namespace it was created in for its whole life) and
exit, while the rest of the process stays where it was. The daemon itself runs inside its namespace (`ip
netns exec`) and never needs this; tests use it to drive several routers from one pytest process.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/var/run/netns"

_libc = ctypes.CDLL(None, use_errno=True)


def enter_netns(netns: str) -> None:
    """Move the calling thread into the named namespace (`ip netns add` name, or a path)."""
    path = netns if netns.startswith("/") else os.path.join(NETNS_RUN_DIR, netns)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def call_in_netns(netns: str | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Return fn(*args, **kwargs) evaluated in a fresh thread inside `netns` (None: call it right here)."""
    if netns is None:
        return fn(*args, **kwargs)
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            enter_netns(netns)
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=runner, name=f"netns:{netns}", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
