"""The sample corpus (tests/configs): valid files load, invalid ones fail with a located problem.
(tests/netns/test_config_agrees_with_keepalived.py compares the same files with keepalived -t.)"""

from __future__ import annotations

import pathlib

import pytest

from fastvrrp.config import check

HERE = pathlib.Path(__file__).resolve().parent.parent / "configs"
VALID = sorted((HERE / "valid").glob("*.conf"))
INVALID = sorted((HERE / "invalid").glob("*.conf"))


def test_corpus_is_not_empty():
    assert len(VALID) >= 8 and len(INVALID) >= 15


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_configs_load(path):
    cfg, problems, _ = check(str(path), instance_id="main")
    assert problems == []
    assert cfg is not None and cfg.instances


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_configs_fail_with_a_located_problem(path):
    cfg, problems, _ = check(str(path), instance_id="main")
    assert cfg is None
    assert problems and all(p.file.endswith(".conf") and p.line >= 1 for p in problems)
