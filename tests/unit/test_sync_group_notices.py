"""Sync group notices (daemon/sync_groups.py) across a reload that drops the group."""

from __future__ import annotations

from fastvrrp.config.model import Config, GlobalDefs, SyncGroupConfig
from fastvrrp.daemon.sync_groups import SyncGroupNotices


class _Recorder:
    """Stands in for the notifier: only records what would be reported."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, str]] = []

    def group_state(self, name, scripts, word) -> None:
        self.reports.append((name, word))


def _config(groups: dict[str, tuple[str, ...]]) -> Config:
    return Config(
        global_defs=GlobalDefs(),
        instances=(),
        sync_groups={n: SyncGroupConfig(name=n, group=members) for n, members in groups.items()},
    )


def test_a_member_stopped_while_a_reload_drops_its_group_reports_nothing():
    rec = _Recorder()
    notices = SyncGroupNotices(rec, {}, _config({"G": ("VI_1", "VI_2")}))  # type: ignore[arg-type]
    notices.configure(notices.config)
    # reload: the new configuration is in charge before the notices follow it (apply_config's order)
    notices.config = _config({})
    notices.member_changed("VI_1")  # raised KeyError before
    assert rec.reports == []
    notices.configure(notices.config)
    assert notices.group_of == {}
