"""Pure pieces shared by the trackers: the status they report, keepalived's rise/fall counter, and the
track_file value reader. No I/O, no clock."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TrackerStatus:
    """What a tracker reports through `on_change(tracker_name, status)`.

    up     True / False; None while a script or check has produced no result yet (keepalived's INIT state).
    value  the integer read from a track_file (None for every other kind). For files `up` is `value == 0`,
           which is how keepalived reads a file tracked with weight 0.
    reason why, in words: "exit 0", "exit 3", "timed out after 2000 ms", "not executable: /x", "refused" ...
    """

    up: bool | None
    value: int | None = None
    reason: str = ""


class RiseFall:
    """keepalived's vrrp_script result counter (also used by the in-process checks).

    `result` runs from 0 to rise+fall-1; the tracker is up when result >= rise. A success while down counts
    up by one, and the rise-th consecutive success jumps to the top (up); a failure while up counts down by
    one, and the fall-th consecutive failure drops to 0 (down). Before the first result the tracker is in
    INIT (up is None) and that first result decides at once, either way; with `init_fail` it starts down
    instead and needs `rise` successes.
    """

    __slots__ = ("rise", "fall", "result", "initial")

    def __init__(self, rise: int = 1, fall: int = 1, init_fail: bool = False) -> None:
        self.rise = max(1, int(rise))
        self.fall = max(1, int(fall))
        self.initial = not init_fail
        self.result = self.rise - 1 if self.initial else 0

    @property
    def up(self) -> bool | None:
        if self.initial:
            return None
        return self.result >= self.rise

    def feed(self, ok: bool) -> bool:
        """Count one result; return True when `up` changed (including leaving INIT)."""
        before = self.up
        top = self.rise + self.fall - 1
        if ok:
            self.result = self.result + 1 if self.result < self.rise - 1 else top
        else:
            self.result = self.result - 1 if self.result > self.rise else 0
        self.initial = False
        return self.up != before


_INT = re.compile(rb"\s*([+-]?)(0[xX][0-9a-fA-F]+|[1-9][0-9]*|0[0-7]*)")

FILE_VALUE_MIN = -254
FILE_VALUE_MAX = 254


def parse_track_file_value(data: bytes) -> int:
    """The integer at the start of a track_file, read like C strtol(buf, NULL, 0): leading blanks, an
    optional sign, then decimal, 0x hex or 0 octal; anything unreadable (or an empty file) is 0. The result
    is clamped to -254..254, the range keepalived keeps."""
    m = _INT.match(data[:127])
    if not m:
        return 0
    sign, digits = m.group(1), m.group(2)
    if digits[:2] in (b"0x", b"0X"):
        v = int(digits[2:], 16)
    elif len(digits) > 1 and digits[:1] == b"0":
        v = int(digits[1:], 8)
    else:
        v = int(digits)
    if sign == b"-":
        v = -v
    return max(FILE_VALUE_MIN, min(FILE_VALUE_MAX, v))
