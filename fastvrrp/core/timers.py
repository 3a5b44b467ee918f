"""VRRP timer arithmetic in integer milliseconds (RFC 5798 6.1, RFC 3768 6.1).

Rounding: the RFC values are fractions of a centisecond (v3) or of a second (v2). We compute them exactly in
integers and round *down* to the millisecond, so a computed Skew_Time or Master_Down_Interval is at most 1 ms
shorter than the RFC value (prio 100 at 1 s: skew 609.375 ms -> 609 ms, down 3609.375 ms -> 3609 ms). Rounding
down means a backup never waits longer than the RFC asks; the error is far below a centisecond, the unit the
protocol itself carries (VRRP-NOTES K3).
"""

from __future__ import annotations


def skew_ms(version: int, priority: int, master_adver_interval_ms: int) -> int:
    """Skew_Time: v3 ((256 - Priority) * Master_Adver_Interval) / 256 (RFC 5798 6.1); v2 (256 - Priority)
    / 256 seconds (RFC 3768 6.1). Priority is the local (effective) one."""
    if version == 2:
        return (256 - priority) * 1000 // 256
    return (256 - priority) * master_adver_interval_ms // 256


def master_down_interval_ms(version: int, priority: int, master_adver_interval_ms: int) -> int:
    """Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time (RFC 5798 6.1; RFC 3768 6.1, where the
    interval is the locally configured Advertisement_Interval)."""
    return 3 * master_adver_interval_ms + skew_ms(version, priority, master_adver_interval_ms)
