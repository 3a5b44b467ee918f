"""The process settings of global_defs, applied to the daemon as keepalived 2.2.7 applies them to its VRRP
process (docs/keepalived-config.md#process-settings):

- `vrrp_rt_priority N`: realtime round-robin scheduling at priority N, not passed on to scripts (reset on
  fork), with `vrrp_rlimit_rttime US` (default 10,000) as RLIMIT_RTTIME: SIGXCPU (logged) after half of it
  without a blocking system call, SIGKILL after all of it;
- `vrrp_priority N` (without a realtime priority): the nice value;
- `vrrp_no_swap`: every page locked in memory once touched (mlockall, current, future, on fault);
- `vrrp_cpu_affinity CPU...`: the CPUs the daemon runs on;
- `max_auto_priority [N]` (N 1..99, without N the highest; -1 or 0 off) with `min_auto_priority_delay US`
  (default one second): a wake-up of the loop later than that after its timer's deadline raises the
  realtime priority one step, up to N (the first step: from normal scheduling to the lowest realtime one).

Each setting applies to every thread the daemon has when it starts (Linux schedules threads, not
processes); threads started later inherit the nice value and the CPUs, not a realtime policy. A setting
the system refuses is logged and left. A reload reads its configuration at normal priority (a long read at
a realtime priority could hit the RLIMIT_RTTIME kill) and takes the new settings afterwards.
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


def _threads() -> list[int]:
    return [int(t) for t in os.listdir("/proc/self/task")]


class ProcessScheduling:
    """Applies Settings to the running daemon; `late(us)` is the loop's report of a late wake-up."""

    def __init__(self, add_signal_handler: Callable[..., Any] | None = None) -> None:
        self.settings = Settings()
        self.rt_priority = 0  # the realtime priority in force (0: normal scheduling)
        self.raised = 0  # realtime steps taken by max_auto_priority
        self.late_us = NEVER  # a wake-up this late after a deadline calls `late` (NEVER: nothing to raise)
        self._deadline_us = -1  # the late deadline `late` last acted on
        self._add_signal_handler = add_signal_handler
        self._locked = False
        self._xcpu = False

    def apply(self, settings: Settings) -> None:
        self.settings = settings
        if settings.cpus:
            self._affinity(settings.cpus)
        if settings.rt_priority:
            self._realtime(settings.rt_priority)
        elif settings.nice is not None:
            self._set_nice(settings.nice)
        if settings.no_swap and not self._locked:
            self._lock_memory()
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
        if self._realtime(step):
            self.raised += 1
        self._arm_auto()

    def normal(self) -> None:
        """Back to normal scheduling for a while (a reload's reading of its file); `apply` restores."""
        if self.rt_priority:
            for tid in _threads():
                try:
                    os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
                except OSError:
                    pass
            self.rt_priority = 0

    # --- the system calls ---------------------------------------------------------------------------------
    def _realtime(self, priority: int) -> bool:
        policy = os.SCHED_RR | os.SCHED_RESET_ON_FORK
        try:
            for tid in _threads():
                try:
                    os.sched_setscheduler(tid, policy, os.sched_param(priority))
                except ProcessLookupError:
                    pass  # a thread that ended meanwhile
        except OSError as e:
            log.warning("cannot set realtime priority %d: %s", priority, e.strerror)
            return False
        self.rt_priority = priority
        log.info("realtime priority %d", priority)
        limit = self.settings.rlimit_rttime_us
        if not limit:
            return True  # vrrp_rlimit_rttime given wrong: keepalived then sets no limit
        if not self._xcpu and self._add_signal_handler is not None:
            self._add_signal_handler(signal.SIGXCPU, self._on_xcpu)
            self._xcpu = True
        try:
            resource.setrlimit(resource.RLIMIT_RTTIME, (limit // 2, limit))
        except (OSError, ValueError) as e:
            log.warning("cannot set the realtime CPU limit to %d us: %s", limit, e)
        return True

    def _on_xcpu(self) -> None:
        limit = self.settings.rlimit_rttime_us
        log.warning("SIGXCPU: %d us of CPU at realtime priority unblocked (killed at %d)", limit // 2, limit)

    def _set_nice(self, nice: int) -> None:
        try:
            for tid in _threads():
                try:
                    os.setpriority(os.PRIO_PROCESS, tid, nice)
                except ProcessLookupError:
                    pass
        except OSError as e:
            log.warning("cannot set the process priority to %d: %s", nice, e.strerror)
            return
        log.info("process priority (nice) %d", nice)

    def _affinity(self, cpus: tuple[int, ...]) -> None:
        try:
            for tid in _threads():
                try:
                    os.sched_setaffinity(tid, cpus)
                except ProcessLookupError:
                    pass
        except OSError as e:
            log.warning("cannot set the CPU affinity to %s: %s", list(cpus), e.strerror)
            return
        log.info("CPU affinity %s", ",".join(map(str, cpus)))

    def _lock_memory(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE | _MCL_ONFAULT) != 0:
            log.warning("cannot lock the process in memory: %s", os.strerror(ctypes.get_errno()))
            return
        self._locked = True
        log.info("process locked in memory")
