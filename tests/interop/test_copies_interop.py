"""A Debian keepalived (2.2.7) backup facing a fastvrrp master with advert_copies 2
(docs/rfc-checklist.md#advert-copies): keepalived takes each copy as one more advert from its master - its
advert counter doubles, its interval and address-list error counters stay at 0, it makes no transition.
keepalived's counters come from its JSON dump (the JSON signal), read as
tests/interop/test_keepalived_dumps.py reads them, under the same lock on keepalived's fixed paths in /tmp."""

from __future__ import annotations

import json
import time

import pytest
from test_keepalived_dumps import KA_FILES, dump, keepalived_files_lock

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = [pytest.mark.interop, pytest.mark.netns]

A = 100  # ms


def test_keepalived_backup_takes_copies_as_ordinary_adverts(lab, keepalived_bin):
    specs = [
        InstanceSpec(vrid=51, advert_int_ms=A, vips=("192.0.2.100/24",)),
        InstanceSpec(vrid=52, advert_int_ms=A, vips=("2001:db8::100/64",)),
        InstanceSpec(vrid=53, version=2, advert_int_ms=1000, vips=("198.51.100.1/32",)),
    ]
    copies = ("advert_copies 2", "advert_copy_delay 0.01")
    lan = Lan(lab, routers=2, client=False)
    m = lan.router(
        1, "fastvrrp", [InstanceSpec(**{**s.__dict__, "priority": 200, "extra": copies}) for s in specs]
    )
    b = lan.router(2, "keepalived", specs, keepalived_bin=keepalived_bin)

    def stats() -> dict[str, dict]:
        return {e["data"]["iname"]: e["stats"] for e in json.loads(dump(b, "json", KA_FILES["json"]))}

    m.start()
    m.wait_all("MASTER", timeout=20)
    with keepalived_files_lock():
        b.start()
        b.wait_all("BACKUP", timeout=30)
        before = stats()
        marks = {s.iname: len(b.transitions(s.iname)) for s in specs}
        t0 = time.monotonic()
        wait_for(lambda: time.monotonic() - t0 > 6.5, timeout=15, interval=0.5, what="a window of adverts")
        after = stats()
        t1 = time.monotonic()
    assert m.states() == {s.iname: "MASTER" for s in specs}
    for s in specs:
        got = {k: after[s.iname][k] - before[s.iname][k] for k in after[s.iname]}
        assert got["advert_interval_err"] == 0 and got["addr_list_err"] == 0, (s.iname, got)
        assert got["become_master"] == 0, (s.iname, got)
        assert len(b.transitions(s.iname)) == marks[s.iname], (s.iname, b.transitions(s.iname))
        assert b.state(s.iname) == "BACKUP"
        # keepalived counted both copies of every advert: two per interval (single adverts would give at
        # most 1.0 + an edge; a loaded machine may delay the dumps that bound the window, hence 1.5).
        assert got["advert_rcvd"] >= 1.5 * (t1 - t0) * 1000 / s.advert_int_ms, (s.iname, got)
    assert b.stop() == 0
