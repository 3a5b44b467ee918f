"""The sample corpus: fastvrrp and Debian's `keepalived -t` must agree on validity (except the table)."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

from fastvrrp.config import check

HERE = pathlib.Path(__file__).resolve().parent.parent / "configs"
VALID = sorted((HERE / "valid").glob("*.conf"))
INVALID = sorted((HERE / "invalid").glob("*.conf"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Where fastvrrp is deliberately stricter than keepalived 2.2.7 (which accepts with exit code 0).
STRICTER = {
    "missing_include.conf": "keepalived only logs 'Config files missing'; a named file that is absent is an error",  # noqa: E501
}


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


@pytest.fixture(scope="module")
def keepalived_ns():
    """A namespace holding eth0 and eth1 (keepalived -t checks that interfaces exist)."""
    exe = shutil.which("keepalived") or "/usr/sbin/keepalived"
    if not os.path.exists(exe) or os.geteuid() != 0:
        if IN_CI:
            pytest.fail("keepalived and root are required under CI=true")
        pytest.skip("keepalived not installed or not root")
    from fastvrrp.lab.namespaces import Lab

    lab = Lab(prefix=f"fvcfg{os.getpid() % 100000}-")
    try:
        ns = lab.ns("k")
        lab.veth(ns, "eth0", ns, "eth1")
        yield exe, ns
    finally:
        lab.close()


def _keepalived_ok(exe: str, ns: str, path: pathlib.Path) -> tuple[bool, str]:
    # keepalived 2.2.7 -t: exit 0 if clean, non-zero (5 config error/warning, 6 script security) otherwise.
    p = subprocess.run(
        ["ip", "netns", "exec", ns, exe, "-t", "-f", str(path), "-i", "main", "-l", "-D"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        timeout=30,
    )
    return p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("path", VALID + INVALID, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_agrees_with_keepalived(keepalived_ns, path):
    exe, ns = keepalived_ns
    ka_ok, log = _keepalived_ok(exe, ns, path)
    ours, problems, _ = check(str(path), instance_id="main")
    if path.name in STRICTER:
        assert ka_ok and ours is None, STRICTER[path.name]
        return
    assert ka_ok == (ours is not None), f"keepalived ok={ka_ok}: {log}\nfastvrrp: {problems}"
