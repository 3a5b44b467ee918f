"""An address owner starts before the other instances are built (docs/costs.md#start-up), through the same
state machine: what its trackers say still decides. An owner held by a failing weight-0 script never
advertises nor takes its address; an owner in a sync group starts with its group; a healthy owner advertises
and the others follow, in configuration order."""

from __future__ import annotations

import json
import os
import time

import pytest

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = pytest.mark.netns

A = 100


def test_an_owner_held_by_a_failing_script_never_advertises(lab):
    lan = Lan(lab, routers=1, client=False)
    bad = lab.script("bad.sh", "exit 1")
    track = ("track_script {", "    bad", "}")
    owner = InstanceSpec(vrid=1, priority=255, advert_int_ms=A, vips=("192.0.2.101/32",), extra=track)
    plain = InstanceSpec(vrid=2, priority=100, advert_int_ms=A, vips=("192.0.2.102/32",))
    r = lan.router(1, "fastvrrp", [owner, plain])
    r.blocks_before = f"vrrp_script bad {{\n    script {bad}\n    interval 1\n    fall 1\n    rise 1\n}}\n"
    with lan.tap() as tap:
        r.start()
        r.wait_state("FAULT", "VI_1", timeout=15)
        r.wait_state("MASTER", "VI_2", timeout=15)  # alone on the LAN: it takes over
        t = time.monotonic()
        wait_for(lambda: time.monotonic() - t >= 1.0, timeout=5, interval=0.05, what="a second of adverts")
    assert tap.adverts(2, r.addr4), "the other instance advertises"
    assert tap.adverts(1, r.addr4) == []
    assert lan.who_has("192.0.2.101") == []
    assert "MASTER" not in r.transitions("VI_1")


def test_an_owner_in_a_sync_group_starts_with_its_group_and_owners_keep_config_order(lab):
    lan = Lan(lab, routers=1, client=False)
    specs = [
        InstanceSpec(vrid=1, priority=100, advert_int_ms=A, vips=("192.0.2.111/32",), name="A_PLAIN"),
        InstanceSpec(vrid=2, priority=255, advert_int_ms=A, vips=("192.0.2.112/32",), name="B_OWNER"),
        InstanceSpec(vrid=3, priority=255, advert_int_ms=A, vips=("192.0.2.113/32",), name="C_GROUPED"),
        InstanceSpec(vrid=4, priority=100, advert_int_ms=A, vips=("192.0.2.114/32",), name="D_GROUPED"),
    ]
    r = lan.router(1, "fastvrrp", specs)
    r.blocks = "vrrp_sync_group G {\n    group {\n        C_GROUPED\n        D_GROUPED\n    }\n}\n"
    with lan.tap() as tap:
        r.start()
        r.wait_all("MASTER", timeout=15)
        wait_for(lambda: len(tap.adverts(2, r.addr4)) > 0, timeout=5, what="the owner's advert on the wire")
    # The free owner advertised first; the grouped owner with its group (both MASTER above).
    first = {vrid: min(e.t for e in tap.adverts(vrid, r.addr4)) for vrid in (1, 2, 3, 4)}
    assert first[2] == min(first.values())
    # The status file lists the instances in configuration order, the early owner included.
    status = os.path.join(lab.workdir, f"{r.name}.status.json")
    with open(status) as f:
        names = [row["name"] for row in json.load(f)["instances"]]
    assert names == [s.name for s in specs]
