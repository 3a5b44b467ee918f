"""The sample corpus (tests/configs): fastvrrp and Debian's `keepalived -t` agree on validity, except where
fastvrrp is deliberately stricter (the table below). keepalived checks that interfaces exist, so it runs in
a namespace holding eth0 and eth1."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

from fastvrrp.config import check

pytestmark = pytest.mark.netns

HERE = pathlib.Path(__file__).resolve().parent.parent / "configs"
VALID = sorted((HERE / "valid").glob("*.conf"))
INVALID = sorted((HERE / "invalid").glob("*.conf"))

# Where fastvrrp is deliberately stricter than keepalived 2.2.7 (which accepts with exit code 0).
STRICTER = {
    "missing_include.conf": "keepalived only logs 'Config files missing'; a named file that is absent is an error",  # noqa: E501
}


@pytest.fixture(scope="module")
def keepalived_ns(keepalived_bin):
    """A namespace holding eth0 and eth1 (keepalived -t checks that interfaces exist)."""
    from fastvrrp.lab.namespaces import Lab

    lab = Lab(prefix=f"fvcfg{os.getpid() % 100000}-")
    try:
        ns = lab.ns("k")
        lab.veth(ns, "eth0", ns, "eth1")
        yield keepalived_bin, ns
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
