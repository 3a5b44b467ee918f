"""The process settings of global_defs, applied to the daemon as keepalived 2.2.7 applies them to its VRRP
process (docs/keepalived-config.md#process-settings):

- `vrrp_rt_priority N`: realtime round-robin scheduling at priority N, not passed on to scripts (reset on
  fork), with `vrrp_rlimit_rttime US` (default 10,000) as RLIMIT_RTTIME: the kernel sends SIGXCPU after half
  of it without a blocking system call and SIGKILL after all of it. keepalived logs the SIGXCPU (and its
  parent restarts a killed VRRP process); fastvrrp, which has no such parent, logs it and goes back to
  normal scheduling at once, so the limit cannot kill it (the next reload applies the settings again);
- `vrrp_priority N` (without a realtime priority): the nice value;
- `vrrp_no_swap`: every page locked in memory once touched (mlockall, current, future, on fault);
- `vrrp_cpu_affinity CPU...`: the CPUs the daemon runs on;
- `max_auto_priority [N]` (N 1..99, without N the highest; -1 or 0 off) with `min_auto_priority_delay US`
  (default one second): a wake-up of the loop later than that after its timer's deadline raises the
  realtime priority one step, up to N (the first step: from normal scheduling to the lowest realtime one).

Each setting applies to every thread the daemon has when it starts (Linux schedules threads, not
processes); threads started later inherit the nice value and the CPUs, not a realtime policy. A setting
the system refuses is logged and left. A reload reads its configuration at normal scheduling (a long read
at a realtime priority could reach the RLIMIT_RTTIME limit) and then takes the new file's settings; a
setting the new file drops goes back to what the daemon started with (nice value, CPUs, realtime limit,
memory unlocked), as keepalived's reset does.
"""

from __future__ import annotations

import ctypes
import logging
import os
import resource
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("fastvrrp")

RT_RLIMIT_DEFAULT_US = 10_000
NEVER = 1 << 62
AUTO_DELAY_DEFAULT_US = 1_000_000
_MCL_CURRENT, _MCL_FUTURE, _MCL_ONFAULT = 1, 2, 4


@dataclass(frozen=True, slots=True)
class Settings:
    """What a configuration asks for (0 / None / () where it asks nothing)."""

    rt_priority: int = 0
    rlimit_rttime_us: int = RT_RLIMIT_DEFAULT_US
    nice: int | None = None
    no_swap: bool = False
    cpus: tuple[int, ...] = ()
    max_auto_priority: int = 0
    auto_delay_us: int = AUTO_DELAY_DEFAULT_US

    @classmethod
    def from_globals(cls, other: Mapping[str, Any]) -> Settings:
        """From global_defs' `other`, where the reader left each value as keepalived would use it."""
        return cls(
            rt_priority=other.get("vrrp_rt_priority", 0),
            rlimit_rttime_us=other.get("vrrp_rlimit_rttime", RT_RLIMIT_DEFAULT_US),
            nice=other.get("vrrp_priority"),
            no_swap=bool(other.get("vrrp_no_swap")),
            cpus=other.get("vrrp_cpu_affinity", ()),
            max_auto_priority=other.get("max_auto_priority", 0),
            auto_delay_us=other.get("min_auto_priority_delay", AUTO_DELAY_DEFAULT_US),
        )


def _each_thread(call: Callable[..., Any], *args: Any) -> None:
    """call(tid, *args) for every thread of the daemon (Linux schedules threads, not processes); a thread
    that ended meanwhile is skipped, any other refusal raises OSError."""
    for tid in os.listdir("/proc/self/task"):
        try:
            call(int(tid), *args)
        except ProcessLookupError:
            pass


class ProcessScheduling:
    """Applies Settings to the running daemon; `late` is the loop's report of a late wake-up. Nothing here
    raises: a refusal of the system is logged."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.rt_priority = 0  # the realtime priority in force (0: normal scheduling)
        self.late_us = NEVER  # a wake-up this late after a deadline calls `late` (NEVER: nothing to raise)
        self._deadline_us = -1  # the late deadline `late` last acted on
        self._locked = False
        self._xcpu = False
        self._origin: tuple[int, set[int], tuple[int, int]] | None = None  # nice, CPUs, RLIMIT_RTTIME

    def apply(self, settings: Settings) -> None:
        """Make the daemon run as `settings` say (at start, and after a reload's `normal`)."""
        try:
            self._apply(settings)
        except OSError as e:  # /proc unreadable ...: the daemon runs on as it is
            log.warning("process settings not applied: %s", e)

    def _apply(self, settings: Settings) -> None:
        if self._origin is None:
            self._origin = (
                os.getpriority(os.PRIO_PROCESS, 0),
                os.sched_getaffinity(0),
                resource.getrlimit(resource.RLIMIT_RTTIME),
            )
        nice0, cpus0, rttime0 = self._origin
        self.settings = settings
        self._affinity(set(settings.cpus) or cpus0)
        if settings.rt_priority:
            self._realtime(settings.rt_priority)
        else:
            self._set_nice(nice0 if settings.nice is None else settings.nice)
            self._set_rlimit(rttime0)
        if settings.no_swap != self._locked:
            self._lock_memory(settings.no_swap)
        self._arm_auto()

    def _arm_auto(self) -> None:
        s = self.settings
        room = s.max_auto_priority and self.rt_priority < s.max_auto_priority
        self.late_us = s.auto_delay_us if room else NEVER

    def late(self, deadline_us: int, now_us: int) -> None:
        """The loop woke at now_us, after its timer's deadline_us: raise the realtime priority one step when
        that is more than min_auto_priority_delay late and max_auto_priority allows it (once per deadline:
        the loop may notice the same one twice)."""
        s = self.settings
        late_us = now_us - deadline_us
        if deadline_us == self._deadline_us or late_us <= s.auto_delay_us:
            return
        self._deadline_us = deadline_us
        if not s.max_auto_priority or self.rt_priority >= s.max_auto_priority:
            return
        step = self.rt_priority + 1 if self.rt_priority else os.sched_get_priority_min(os.SCHED_RR)
        log.warning("the loop's timer fired %.6f s late: raising the realtime priority", late_us / 1e6)
        try:
            self._realtime(step)
        except OSError as e:
            log.warning("cannot raise the realtime priority: %s", e)
        self._arm_auto()

    def normal(self) -> None:
        """Normal scheduling until the next `apply` (a reload's reading of its file; a SIGXCPU)."""
        self.late_us = NEVER
        if not self.rt_priority:
            return
        try:
            _each_thread(os.sched_setscheduler, os.SCHED_OTHER, os.sched_param(0))
        except OSError as e:
            log.warning("cannot go back to normal scheduling: %s", e.strerror)
        self.rt_priority = 0

    def _on_xcpu(self, signum: int, frame: Any) -> None:
        """SIGXCPU: half of vrrp_rlimit_rttime used without blocking. A Python-level handler, so that it runs
        in the middle of the long turn of the loop that caused it, before the kernel's SIGKILL."""
        if self.rt_priority:
            self.normal()
            log.warning(
                "SIGXCPU: %d us of CPU at a realtime priority without blocking: back to normal scheduling",
                self.settings.rlimit_rttime_us // 2,
            )

    # --- the system calls ---------------------------------------------------------------------------------
    def _realtime(self, priority: int) -> bool:
        policy = os.SCHED_RR | os.SCHED_RESET_ON_FORK
        try:
            _each_thread(os.sched_setscheduler, policy, os.sched_param(priority))
        except OSError as e:
            log.warning("cannot set realtime priority %d: %s", priority, e.strerror)
            return False
        self.rt_priority = priority
        log.info("realtime priority %d", priority)
        limit = self.settings.rlimit_rttime_us
        if limit:  # 0: vrrp_rlimit_rttime given wrong, and keepalived then sets no limit
            if not self._xcpu:
                signal.signal(signal.SIGXCPU, self._on_xcpu)
                self._xcpu = True
            self._set_rlimit((limit // 2, limit))
        return True

    def _set_rlimit(self, limits: tuple[int, int]) -> None:
        try:
            if resource.getrlimit(resource.RLIMIT_RTTIME) != limits:
                resource.setrlimit(resource.RLIMIT_RTTIME, limits)
        except (OSError, ValueError) as e:
            log.warning("cannot set the realtime CPU limit to %s us: %s", limits, e)

    def _set_nice(self, nice: int) -> None:
        if os.getpriority(os.PRIO_PROCESS, 0) == nice:
            return
        try:
            _each_thread(lambda tid: os.setpriority(os.PRIO_PROCESS, tid, nice))
        except OSError as e:
            log.warning("cannot set the process priority to %d: %s", nice, e.strerror)
            return
        log.info("process priority (nice) %d", nice)

    def _affinity(self, cpus: set[int]) -> None:
        if os.sched_getaffinity(0) == cpus:
            return
        try:
            _each_thread(os.sched_setaffinity, cpus)
        except OSError as e:
            log.warning("cannot set the CPU affinity to %s: %s", sorted(cpus), e.strerror)
            return
        log.info("CPU affinity %s", ",".join(map(str, sorted(cpus))))

    def _lock_memory(self, lock: bool) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if (libc.mlockall(_MCL_CURRENT | _MCL_FUTURE | _MCL_ONFAULT) if lock else libc.munlockall()) != 0:
            why = os.strerror(ctypes.get_errno())
            log.warning("cannot %s the process in memory: %s", "lock" if lock else "unlock", why)
            return
        self._locked = lock
        log.info("process %s memory", "locked in" if lock else "unlocked from")
