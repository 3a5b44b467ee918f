"""The shipped systemd unit and environment file: `systemd-analyze verify` accepts the unit without a word
(it works offline, no systemd as PID 1 needed), and the unit says what the daemon relies on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")  # as tests/conftest.py
DIST = Path(__file__).resolve().parents[2] / "dist" / "systemd"
UNIT = DIST / "fastvrrp.service"
DEFAULTS = DIST / "fastvrrp.default"
INSTALLED_PATH = "/usr/local/bin/fastvrrp"  # the ExecStart path the unit ships with


@pytest.fixture
def analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        if IN_CI:
            pytest.fail("systemd-analyze (Debian package systemd) is required under CI=true; `make deps`")
        pytest.skip("systemd-analyze is not installed")
    return found


def verify(analyze: str, unit_text: str, tmp_path: Path) -> list[str]:
    """Run `systemd-analyze verify` on `unit_text` installed as fastvrrp.service in a temp dir with
    ExecStart pointing at this checkout's fastvrrp; return the lines it printed about the unit."""
    wrapper = tmp_path / "fastvrrp"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m fastvrrp "$@"\n')
    wrapper.chmod(0o755)
    unit = tmp_path / "fastvrrp.service"
    unit.write_text(unit_text.replace(INSTALLED_PATH, str(wrapper)))
    env = dict(os.environ, SYSTEMD_LOG_LEVEL="notice", SYSTEMD_PAGER="")
    res = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path
    )
    out = (res.stdout + res.stderr).splitlines()
    about = [ln for ln in out if "fastvrrp" in ln or str(tmp_path) in ln]
    if res.returncode != 0:
        about.append(f"exit status {res.returncode}: {out}")
    return about


def test_systemd_analyze_verify_accepts_the_unit(analyze, tmp_path):
    text = UNIT.read_text()
    assert text.count(INSTALLED_PATH) == 1  # the one path the test replaces is ExecStart's
    assert verify(analyze, text, tmp_path) == []


def test_the_check_catches_a_broken_unit(analyze, tmp_path):
    """The same check fails a unit systemd would only half read (it exits 0 and warns)."""
    text = UNIT.read_text() + "\n[Service]\nWatchdogSecs=10s\nRestart=sometimes\n"
    problems = verify(analyze, text, tmp_path)
    assert any("WatchdogSecs" in p for p in problems), problems
    assert any("restart specifier" in p for p in problems), problems


def directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_the_unit_says_what_the_daemon_relies_on():
    d = directives(UNIT.read_text())
    assert d["Type"] == ["notify"]
    assert d["NotifyAccess"] == ["main"]
    assert d["EnvironmentFile"] == ["-/etc/default/fastvrrp"]
    assert d["ExecStart"] == [f"{INSTALLED_PATH} --dont-fork $DAEMON_ARGS"]
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert d["Restart"] == ["on-failure"]
    assert d["WatchdogSec"] and d["RuntimeDirectory"] == ["fastvrrp"]
    assert d["PrivateTmp"] == ["no"]  # the dump files in /tmp are read from outside the unit
    caps = " ".join(d["CapabilityBoundingSet"]).split()
    needed = ("CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_SETUID", "CAP_SETGID")
    assert set(needed) <= set(caps)


def test_the_environment_file_sets_daemon_args_as_a_shell_would_read_it():
    res = subprocess.run(
        ["sh", "-c", '. "$1" && printf "%s" "${DAEMON_ARGS-unset}"', "sh", str(DEFAULTS)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""  # defined and empty: the daemon's defaults
