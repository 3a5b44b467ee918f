"""The sample corpus (tests/configs): fastvrrp and Debian's `keepalived -t` agree on validity and on the
exit code of `-t`, except where fastvrrp is deliberately stricter (the tables below). keepalived checks that
interfaces exist, so both run in a namespace holding eth0 and eth1.

keepalived 2.2.7 -t exits 0 clean, 5 when it reported a problem (whether it works around it or drops what
it is about), 6 script security. fastvrrp -t: 0, 5 (worked around: the file starts, as keepalived's does),
6, and 4 where fastvrrp refuses the file (keepalived says 5 there: it starts without the part in question).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from fastvrrp.config import check

pytestmark = pytest.mark.netns

HERE = pathlib.Path(__file__).resolve().parent.parent / "configs"
ROOT = HERE.parent.parent
VALID = sorted((HERE / "valid").glob("*.conf"))
INVALID = sorted((HERE / "invalid").glob("*.conf"))
WORKED_AROUND = sorted((HERE / "worked_around").glob("*.conf"))
SCRIPT_SECURITY = sorted((HERE / "script_security").glob("*.conf"))

# Where fastvrrp is deliberately stricter than keepalived 2.2.7 (which accepts with exit code 0).
STRICTER = {
    "missing_include.conf": "keepalived only logs 'Config files missing'; a named file that is absent is an error",  # noqa: E501
    "auth_ah.conf": "fastvrrp has no IPsec-AH: advertising without it would make both routers master",
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
    rc, log = _keepalived_t(exe, ns, path)
    return rc in (0, 6), log


def _keepalived_t(exe: str, ns: str, path: pathlib.Path) -> tuple[int, str]:
    # keepalived 2.2.7 -t: exit 0 if clean, 5 a reported problem, 6 script security.
    p = subprocess.run(
        ["ip", "netns", "exec", ns, exe, "-t", "-f", str(path), "-i", "main", "-l", "-D"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        timeout=30,
    )
    return p.returncode, p.stdout + p.stderr


def _fastvrrp_t(ns: str, path: pathlib.Path) -> tuple[int, str]:
    p = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "fastvrrp", "-t", "-f", str(path), "-i", "main"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    return p.returncode, p.stderr


@pytest.mark.parametrize(
    "path", VALID + INVALID + WORKED_AROUND + SCRIPT_SECURITY, ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_agrees_with_keepalived(keepalived_ns, path):
    exe, ns = keepalived_ns
    ka_ok, log = _keepalived_ok(exe, ns, path)
    ours, problems, _ = check(str(path), instance_id="main")
    if path.name in STRICTER:
        assert ka_ok and ours is None, STRICTER[path.name]
        return
    # keepalived starts the worked-around files (its -t exit 5 means "reported"), and so does fastvrrp.
    starts = ka_ok or path.parent.name == "worked_around"
    assert starts == (ours is not None), f"keepalived ok={ka_ok}: {log}\nfastvrrp: {problems}"


# Where fastvrrp -t's exit code differs from keepalived 2.2.7's, and why.
EXIT_DIFFERS = {
    "missing_include.conf": (0, 4, STRICTER["missing_include.conf"]),
    "auth_ah.conf": (0, 4, STRICTER["auth_ah.conf"]),
}


@pytest.mark.parametrize(
    "path", VALID + INVALID + WORKED_AROUND + SCRIPT_SECURITY, ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_exit_code_of_t_agrees_with_keepalived(keepalived_ns, path):
    exe, ns = keepalived_ns
    ka, log = _keepalived_t(exe, ns, path)
    fv, err = _fastvrrp_t(ns, path)
    if path.name in EXIT_DIFFERS:
        assert (ka, fv) == EXIT_DIFFERS[path.name][:2], f"keepalived: {log}\nfastvrrp: {err}"
    elif path.parent.name == "invalid":
        # keepalived reports and starts without the part (5); fastvrrp refuses the file (4)
        assert (ka, fv) == (5, 4), f"keepalived: {log}\nfastvrrp: {err}"
    else:
        assert fv == ka, f"keepalived -t exited {ka}: {log}\nfastvrrp -t exited {fv}: {err}"
    expected = {"valid": 0, "worked_around": 5, "script_security": 6}.get(path.parent.name)
    if expected is not None:
        assert fv == expected
    # every finding names FILE:LINE
    for line in err.splitlines()[:-1]:
        assert line.startswith(f"{path}:") and line.split(":")[1].isdigit(), line


def test_missing_file_and_missing_interface_exit_4(keepalived_ns, tmp_path):
    """keepalived 2.2.7 -t exits 0 for a missing file ("Config files missing") and 5 for an instance on a
    missing interface ("(VI_1) Unknown interface!"); fastvrrp cannot use either file: 4."""
    exe, ns = keepalived_ns
    absent = tmp_path / "absent.conf"
    assert _keepalived_t(exe, ns, absent)[0] == 0
    assert _fastvrrp_t(ns, absent)[0] == 4
    conf = tmp_path / "k.conf"
    conf.write_text((HERE / "valid" / "basic_v2.conf").read_text().replace("eth0", "nosuch0"))
    assert _keepalived_t(exe, ns, conf)[0] == 5
    rc, err = _fastvrrp_t(ns, conf)
    assert rc == 4 and "interface nosuch0 does not exist here" in err, err


def test_missing_tracked_interface_comes_before_script_security(keepalived_ns, tmp_path):
    """keepalived 2.2.7 -t stops at "Non-existent interface specified in configuration" (exit 5) before its
    script security check (exit 6 once the interface is there); fastvrrp -t exits the same."""
    exe, ns = keepalived_ns
    text = (HERE / "script_security" / "root_script.conf").read_text()
    conf = tmp_path / "k.conf"
    conf.write_text(
        text.replace(
            "    track_script {", "    track_interface {\n        nosuch0\n    }\n    track_script {"
        )
    )
    assert _keepalived_t(exe, ns, conf)[0] == 5
    rc, err = _fastvrrp_t(ns, conf)
    assert rc == 5 and "tracked interface nosuch0 does not exist here" in err, err
