"""Guards that keep the large-config fast paths in place (counts and identities, not timings)."""

from __future__ import annotations

import dataclasses
import gc

from fastvrrp.config import InstanceConfig, check
from fastvrrp.config._fast import from_state, maker
from fastvrrp.config.instance import InstanceState, build_instance, new_instance_state
from fastvrrp.config.preprocess import Preprocessor

INST = (
    "vrrp_instance V {\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  192.0.2.7/24\n }\n}\n"
)


def test_model_classes_get_the_fast_constructor_and_it_matches_init():
    make = maker(InstanceConfig)
    assert make is not InstanceConfig  # a new field kind (default_factory, __post_init__) would lose it
    vals = [f.default for f in dataclasses.fields(InstanceConfig)]
    vals[:5] = ["V", "f", 3, "eth0", 9]
    a, b = make(*vals), InstanceConfig(*vals)
    assert type(a) is InstanceConfig and a == b and hash(a) == hash(b)


def test_building_from_a_block_state_takes_what_was_written_else_the_default():
    vals = [f.default for f in dataclasses.fields(InstanceConfig)]
    st = InstanceState("V", "f", 3, None)  # type: ignore[arg-type]
    st.interface, st.virtual_router_id, st.priority = "eth0", 9, 200
    built = build_instance(st, vals)
    assert built == InstanceConfig("V", "f", 3, "eth0", 9, priority=200)
    assert type(built) is InstanceConfig
    # every InstanceConfig field but the one set after reading (sync_group) is read from the state
    assert {f.name for f in dataclasses.fields(InstanceConfig)} - set(InstanceState.__slots__) == {
        "sync_group"
    }
    assert from_state(InstanceConfig, InstanceState) is not None


def test_a_fresh_instance_state_is_made_by_the_short_constructor_and_equals_init():
    assert new_instance_state is not InstanceState  # a default that is not a constant would lose it
    node = object()
    assert new_instance_state("V", "f", 3, node) == InstanceState("V", "f", 3, node)  # type: ignore[arg-type]


def test_generated_lines_parse_their_references_once(tmp_path):
    p = tmp_path / "g.conf"
    p.write_text(
        "$B= \\\nvrrp_instance v${N} { \\\n interface eth0 \\\n virtual_router_id ${N} \\\n}\n"
        "~SEQ(N, 1, 200) $B\n"
    )
    pre = Preprocessor("x")
    chunks = pre.read_chunks(str(p))
    # one chunk per expansion, and only the two distinct texts ("$B" and its value) were ever parsed
    assert len(chunks) == 200 and len(pre._refs) == 2
    assert [t for _f, _l, t in Preprocessor("x").read(str(p))][:4] == [
        "vrrp_instance v1 {",
        "interface eth0",
        "virtual_router_id 1",
        "}",
    ]


def test_check_restores_the_collector_state(tmp_path):
    p = tmp_path / "k.conf"
    p.write_text(INST)
    was = gc.isenabled()
    try:
        gc.enable()
        check(str(p), instance_id="main", env={})
        assert gc.isenabled()
        gc.disable()
        check(str(p), instance_id="main", env={})
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
