"""Sync group notifications: keepalived reports a sync group's state (its notify scripts, `GROUP "G" MASTER 0`
FIFO lines) once every member present has reached it. The group's protocol behaviour is the core's
(core/syncgroup.py, applied by the driver); this only tells the outside world.
"""

from __future__ import annotations

from fastvrrp.config import Config
from fastvrrp.core.types import State
from fastvrrp.daemon import notify
from fastvrrp.daemon.driver import RunningInstance


class SyncGroupNotices:
    def __init__(self, notifier: notify.Notifier, insts: dict[str, RunningInstance], config: Config) -> None:
        self.notifier = notifier
        self.insts = insts
        self.config = config  # the running configuration (reload replaces it before `configure`)
        self.group_of: dict[str, str] = {}  # sync group of each member
        self.scripts: dict[str, notify.Scripts] = {}
        self.word: dict[str, str] = {}  # the state last reported for each sync group

    def configure(self, cfg: Config) -> None:
        """Follow the groups of `cfg`; a group that stays keeps the state it last reported."""
        self.config = cfg
        self.group_of = {m: name for name, sg in cfg.sync_groups.items() for m in sg.group}
        self.scripts = {name: notify.Scripts.of(sg) for name, sg in cfg.sync_groups.items()}
        self.word = {k: v for k, v in self.word.items() if k in cfg.sync_groups}

    def member_changed(self, member: str) -> None:
        """`member` changed state: report its group's state if every started member now shares it."""
        gname = self.group_of.get(member)
        if gname is None:
            return
        # During a reload the new configuration is in place before `configure` follows it: a group it
        # dropped has nothing left to report.
        sg = self.config.sync_groups.get(gname)
        if sg is None:
            return
        words = {
            "STOP" if i.core.state is State.INIT else i.core.state.name
            for n in sg.group
            if (i := self.insts.get(n)) is not None and i.io.started
        }
        if len(words) == 1:
            (word,) = words
            if self.word.get(gname) != word:
                self.word[gname] = word
                self.notifier.group_state(gname, self.scripts[gname], word)
