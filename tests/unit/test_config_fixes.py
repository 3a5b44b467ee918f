"""Gaps closed in the reader (garp_extra_if, static track_group location, random_seed) and guards that keep
the large-config fast paths in place (counts, not timings)."""

from __future__ import annotations

import dataclasses
import gc

from fastvrrp.config import InstanceConfig, Problem, check, reader
from fastvrrp.config._fast import maker
from fastvrrp.config.preprocess import Preprocessor

INST = """vrrp_instance V {{
    interface eth0
    virtual_router_id 7
    virtual_ipaddress {{
        192.0.2.7/24
    }}
{extra}
}}
"""


def _check(tmp_path, text):
    p = tmp_path / "k.conf"
    p.write_text(text)
    return check(str(p), instance_id="main", env={}), str(p)


def test_garp_extra_if_is_noted_as_unsupported_not_dropped(tmp_path):
    (cfg, problems, unsupported), path = _check(
        tmp_path, INST.format(extra="    garp_extra_if all 100\n    garp_extra_if_vmac 30")
    )
    assert problems == [] and cfg is not None
    assert unsupported == [
        Problem(
            path,
            7,
            "'garp_extra_if': periodic GARP/NA on extra interfaces not implemented by fastvrrp, "
            "ignored (and 1 more place)",
        )
    ]


def test_garp_extra_if_syntax_is_checked(tmp_path):
    (cfg, problems, _), path = _check(
        tmp_path, INST.format(extra="    garp_extra_if all\n    garp_extra_if_vmac 90000")
    )
    assert cfg is None
    assert problems == [
        Problem(path, 7, "'garp_extra_if' expects [all] and a delay in seconds"),
        Problem(path, 8, "garp_extra_if_vmac delay 90000 out of range [0, 86400] seconds"),
    ]


def test_static_address_with_undefined_track_group_is_located(tmp_path):
    text = INST.format(extra="") + "static_ipaddress {\n    192.0.2.200/24 dev eth0 track_group TG\n}\n"
    (cfg, problems, _), path = _check(tmp_path, text)
    assert cfg is None
    assert problems == [Problem(path, 10, "no track_group 'TG'")]


def _randoms(tmp_path, head):
    p = tmp_path / "r.conf"
    p.write_text(head + "".join(f"r{i} ${{_RANDOM 0 1000000}}\n" for i in range(5)))
    return [t for _f, _ln, t in Preprocessor("x").read(str(p)) if t.startswith("r")]


def test_random_seed_seeds_the_random_builtin(tmp_path):
    seeded = "global_defs {\n random_seed 42\n}\n"
    a, b = _randoms(tmp_path, seeded), _randoms(tmp_path, seeded)
    assert a == b and len(set(a)) > 1
    assert _randoms(tmp_path, seeded.replace("42", "43")) != a
    # unseeded reads differ from each other (5 draws from a million values)
    assert _randoms(tmp_path, "") != _randoms(tmp_path, "")


def test_random_seed_through_check_still_valid(tmp_path):
    text = "global_defs {\n    random_seed 7\n}\n" + INST.format(extra="    priority ${_RANDOM 1 254}")
    (cfg1, problems, _), _path = _check(tmp_path, text)
    (cfg2, _, _), _ = _check(tmp_path, text)
    assert problems == [] and cfg1 is not None and cfg2 is not None
    assert cfg1.instances[0].priority == cfg2.instances[0].priority
    assert cfg1.global_defs.other["random_seed"] == 7


# --- guards for the fast paths (see fastvrrp/config/_fast.py and preprocess._substitute) -------------------


def test_model_classes_get_the_fast_constructor_and_it_matches_init():
    make = maker(InstanceConfig)
    assert make is not InstanceConfig  # a new field kind (default_factory, __post_init__) would lose it
    vals = [f.default for f in dataclasses.fields(InstanceConfig)]
    vals[:5] = ["V", "f", 3, "eth0", 9]
    a, b = make(*vals), InstanceConfig(*vals)
    assert type(a) is InstanceConfig and a == b and hash(a) == hash(b)


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
    was = gc.isenabled()
    try:
        gc.enable()
        _check(tmp_path, INST.format(extra=""))
        assert gc.isenabled()
        gc.disable()
        _check(tmp_path, INST.format(extra=""))
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    assert reader._make_instance is not InstanceConfig
