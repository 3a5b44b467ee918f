"""The status file: what the daemon writes for `fastvrrp status` (fastvrrp/tools/status.py) to read - which
box holds which address, and why. The format, the atomic write, and the book of transitions between writes.

The daemon writes the file atomically (a temporary file in the same directory, then rename) on every
transition and every few seconds, so a reader never sees half a file. Schema (version 1):

    {
      "schema": 1, "version": "<fastvrrp version>", "pid": 1234, "hostname": "lb1",
      "written": <unix time, float>, "interval_s": 5,
      "instances": [
        {"name": "VI_1", "state": "MASTER", "since": <unix time>, "reason": "master down timer expired",
         "priority": 100, "base_priority": 100, "master": "192.0.2.1" | null,
         "vips": ["192.0.2.100/24"], "interface": "eth0", "family": 4, "vrid": 51, "vrrp_version": 3,
         "adverts_rx": 10, "adverts_tx": 3, "drained": false, "offset": 0}
      ]
    }
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from itertools import islice
from typing import Any

SCHEMA = 1
DEFAULT_PATH = "/run/fastvrrp/status.json"
DEFAULT_INTERVAL_S = 5


@dataclass(slots=True)
class InstanceStatus:
    name: str
    state: str  # INIT BACKUP MASTER FAULT
    since: float  # unix time of the last transition
    reason: str  # why the last transition happened (the core's StateChanged.reason)
    priority: int  # effective
    base_priority: int
    master: str | None  # the current master's address (ours while MASTER), None if unknown
    vips: list[str] = field(default_factory=list)
    interface: str = ""
    family: int = 4
    vrid: int = 0
    vrrp_version: int = 3
    adverts_rx: int = 0
    adverts_tx: int = 0
    drained: bool = False  # `fastvrrp ctl drain`: runs at priority 1 until undrained
    offset: int = 0  # `fastvrrp ctl priority`: added to the tracked priority


def snapshot(
    instances: Iterable[InstanceStatus],
    *,
    version: str = "",
    pid: int | None = None,
    interval_s: float = DEFAULT_INTERVAL_S,
    now: float | None = None,
) -> dict[str, Any]:
    """The whole document, for write_status(): "instances" is an iterator over the rows, made while the file
    is written (so it can be written once)."""
    return {
        "schema": SCHEMA,
        "version": version,
        "pid": os.getpid() if pid is None else pid,
        "hostname": socket.gethostname(),
        "written": time.time() if now is None else now,
        "interval_s": interval_s,
        "instances": map(_row, instances),
    }


_FIELDS = tuple(f.name for f in fields(InstanceStatus))
# One line: json's C encoder runs only without indent (1,000 instances: ~3 ms instead of ~40 ms).
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
# Rows encoded (and written) at a time: the file is written piece by piece, so a write allocates a few
# dozen rows and a piece of text at a time, not every row and the whole text at once. At 4,000 instances
# the whole document is ~5 MiB of row dicts and text, made every few seconds: enough to fault back in the
# heap pages a /metrics scrape's trim had returned (docs/costs.md#memory).
ROWS_PER_PIECE = 64


def _row(i: InstanceStatus) -> dict[str, Any]:
    # dataclasses.asdict copies every value recursively: ~8x the cost for these flat rows
    d = {name: getattr(i, name) for name in _FIELDS}
    d["vips"] = list(i.vips)
    return d


def _text(snap: Mapping[str, Any]) -> Iterator[str]:
    """The document as JSON text in pieces: the same text as json.dumps(snap, separators=(",", ":")) + a
    newline, with "instances" (an iterable of rows) encoded ROWS_PER_PIECE rows at a time, last."""
    head = _ENCODE({k: v for k, v in snap.items() if k != "instances"})
    yield head[:-1] + (',"instances":[' if len(head) > 2 else '"instances":[')
    rows = iter(snap["instances"])
    sep = ""
    while piece := list(islice(rows, ROWS_PER_PIECE)):
        yield sep + _ENCODE(piece)[1:-1]
        sep = ","
    yield "]}\n"


def write_status(path: str, snap: Mapping[str, Any]) -> None:
    """Write atomically: a temporary file beside `path`, fsync-free (tmpfs /run), then rename over it."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".status.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            for text in _text(snap):
                f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class StatusBook:
    """What the daemon keeps between writes: since/reason per instance, and when the next write is due."""

    def __init__(self, path: str = DEFAULT_PATH, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.path = path
        self.interval_s = interval_s
        self.since: dict[str, tuple[float, str]] = {}
        self.next_write = 0.0  # monotonic
        self.dirty = True
        self.errors = 0

    def transition(self, name: str, reason: str, wall: float | None = None) -> None:
        self.since[name] = (time.time() if wall is None else wall, reason)
        self.dirty = True  # written at the next write() call, which the daemon makes right after

    def forget(self, name: str) -> None:
        self.since.pop(name, None)
        self.dirty = True

    def due(self, mono: float | None = None) -> bool:
        return self.dirty or (time.monotonic() if mono is None else mono) >= self.next_write

    def write(self, instances: Iterable[InstanceStatus], version: str = "") -> bool:
        try:
            write_status(self.path, snapshot(instances, version=version, interval_s=self.interval_s))
        except OSError:
            self.errors += 1
            return False
        finally:
            self.dirty = False
            self.next_write = time.monotonic() + self.interval_s
        return True
