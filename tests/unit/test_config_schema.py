"""The keyword schemas (fastvrrp/config/blocks.py): declarations that fit their block state, and the one
walker's handling of unknown, unsupported and block-carrying statements."""

from __future__ import annotations

import dataclasses

import pytest

from fastvrrp.config import check
from fastvrrp.config.blocks import Schema, read_statements, store
from fastvrrp.config.check_block import PROBE_SCHEMAS, URL, VRRP_CHECK, CheckState, ProbeState, UrlState
from fastvrrp.config.global_defs import GLOBAL_DEFS, GlobalState
from fastvrrp.config.groups import (
    GARP_GROUP,
    SYNC_GROUP,
    TRACK_GROUP,
    GarpGroupState,
    SyncGroupState,
    TrackGroupState,
)
from fastvrrp.config.instance import AUTHENTICATION, VRRP_INSTANCE, InstanceState
from fastvrrp.config.lexer import Node
from fastvrrp.config.model import SyncGroupConfig, TrackFile, TrackProcess, VrrpScript
from fastvrrp.config.trackers import (
    TRACK_FILE,
    TRACK_PROCESS,
    VRRP_SCRIPT,
    TrackFileState,
    TrackProcessState,
    VrrpScriptState,
)
from fastvrrp.config.values import Reporter

SCHEMAS = [
    (VRRP_INSTANCE, InstanceState),
    (AUTHENTICATION, InstanceState),
    (GLOBAL_DEFS, GlobalState),
    (VRRP_SCRIPT, VrrpScriptState),
    (TRACK_FILE, TrackFileState),
    (TRACK_PROCESS, TrackProcessState),
    (SYNC_GROUP, SyncGroupState),
    (TRACK_GROUP, TrackGroupState),
    (GARP_GROUP, GarpGroupState),
    (VRRP_CHECK, CheckState),
    (URL, UrlState),
    *((s, ProbeState) for s in PROBE_SCHEMAS.values()),
]


@pytest.mark.parametrize("schema,state", SCHEMAS, ids=lambda x: getattr(x, "name", None) or "")
def test_each_declared_field_is_an_attribute_of_the_block_state(schema, state):
    slots = set(state.__slots__)
    for keyword, kw in schema.keywords.items():
        if kw.field:
            assert kw.field in slots, f"{schema.name} {keyword}: no {kw.field} in {state.__name__}"
        if kw.at:
            assert kw.at in slots
        if kw.handle is store:
            assert kw.read is not None and kw.field, f"{schema.name} {keyword} stores nothing"


@pytest.mark.parametrize(
    "model,state",
    [(VrrpScript, VrrpScriptState), (TrackFile, TrackFileState), (TrackProcess, TrackProcessState)]
    + [(SyncGroupConfig, SyncGroupState)],
)
def test_block_states_hold_every_field_of_their_model(model, state):
    assert {f.name for f in dataclasses.fields(model)} <= set(state.__slots__)


def test_statements_the_schema_does_not_know():
    r = Reporter()

    @dataclasses.dataclass(slots=True)
    class S:
        n: int | None = None

    from fastvrrp.config.blocks import int_kw

    schema = Schema("demo", S, {"n": int_kw("n", 1, 9)}, unsupported={"old": "old things"})
    nodes = [
        Node("n", ["3"], "f", 1),
        Node("old", [], "f", 2),
        Node("what", [], "f", 3),
        Node("old", [], "f", 4),
    ]
    nodes[0].children = []
    st = S()
    # keepalived skips an unknown statement and starts the file: an adjustment, not a problem
    assert read_statements(r, nodes, schema, st) is True
    assert st.n == 3
    assert [(p.line, p.message) for p in r.problems] == [(1, "'n' does not take a block")]
    assert [(p.line, p.message) for p in r.adjustments] == [
        (3, "unknown keyword 'what' in demo: ignored (keepalived skips it too)")
    ]
    own = Schema("own", S, {"n": int_kw("n", 1, 9)}, unknown_ignored=False)  # fastvrrp's own blocks
    r2 = type(r)()
    assert read_statements(r2, [Node("what", [], "f", 5)], own, S()) is False
    assert [(p.line, p.message) for p in r2.problems] == [(5, "unknown keyword 'what' in own")]
    assert [p.message for p in r.unsupported_notes()] == [
        "'old': old things not implemented by fastvrrp, ignored (and 1 more place)"
    ]


def test_a_keyword_of_every_top_level_block_is_read(tmp_path):
    p = tmp_path / "k.conf"
    p.write_text(
        "global_defs {\n router_id r1\n}\nvrrp_script s {\n script /bin/true\n}\n"
        "track_file f {\n file /tmp/f\n}\nvrrp_track_process t {\n process x\n}\n"
        "vrrp_check c {\n TCP_CHECK {\n  connect_ip 192.0.2.1\n  connect_port 80\n }\n}\n"
        "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n"
        " virtual_ipaddress {\n  192.0.2.9/24\n }\n}\n"
        "vrrp_sync_group G {\n group {\n  V\n }\n}\ntrack_group T {\n group {\n  V\n }\n}\n"
        "garp_group {\n interface eth0\n}\n"
    )
    cfg, problems, _ = check(str(p), instance_id="x", env={})
    assert problems == [] and cfg is not None
    assert cfg.global_defs.router_id == "r1" and cfg.vrrp_scripts["s"].script == "/bin/true"
    assert cfg.track_files["f"].file == "/tmp/f" and cfg.track_processes["t"].process == ("x",)
    assert cfg.vrrp_checks["c"].check.connect_port == 80 and cfg.instances[0].sync_group == "G"
    assert cfg.track_groups["T"] == ("V",) and cfg.garp_groups[0].interfaces == ("eth0",)
