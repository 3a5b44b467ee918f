"""VRRP timer arithmetic in integer microseconds (RFC 5798 6.1, RFC 3768 6.1).

Exactness: the RFC values are fractions of a centisecond (v3) or of a second (v2). We compute them in
integers and round *down* to the microsecond, so a computed Skew_Time or Master_Down_Interval is at most
1 us shorter than the RFC value, and exact whenever the RFC value is a whole number of microseconds (the
common case: prio 100 at 100 cs gives skew 609375 us and down 3609375 us exactly; prio 1 at 1 cs gives
9960.9375 us -> 9960 us). Rounding down means a backup never waits longer than the RFC asks. The engine keeps
deadlines in us too, so the fast path and the core agree to the microsecond
(docs/rfc-checklist.md#timer-gold-values).
"""

from __future__ import annotations

US_PER_MS = 1000
US_PER_S = 1_000_000


def skew_us(version: int, priority: int, master_adver_interval_us: int) -> int:
    """Skew_Time: v3 ((256 - Priority) * Master_Adver_Interval) / 256 (RFC 5798 6.1); v2 (256 - Priority)
    / 256 seconds (RFC 3768 6.1). Priority is the local (effective) one."""
    if version == 2:
        return (256 - priority) * US_PER_S // 256
    return (256 - priority) * master_adver_interval_us // 256


def master_down_interval_us(
    version: int, priority: int, master_adver_interval_us: int, adverts: int = 3
) -> int:
    """Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time (RFC 5798 6.1; RFC 3768 6.1, where the
    interval is the locally configured Advertisement_Interval). keepalived's down_timer_adverts replaces
    the 3 by `adverts` (a backup gives up on the master after that many missed adverts)."""
    return adverts * master_adver_interval_us + skew_us(version, priority, master_adver_interval_us)
