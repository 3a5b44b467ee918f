"""The decision logic stays sans-I/O: fastvrrp/core and the pure modules of fastvrrp/health import no clock,
socket or loop (STYLE "The shape of the house": "core/ and health/ *decision logic*"; habit 1).

health/ also holds the trackers and checks that run on the event loop (runner, trackers, checks): they are
I/O by design, so only its pure modules - the priority math, the shared status/rise-fall pieces and the DNS
codec - are held to the rule, by name (a listed module that disappears fails the test)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "fastvrrp"
FORBIDDEN = {"asyncio", "socket", "pyroute2", "prometheus_client", "time", "uvloop", "select", "selectors"}
HEALTH_PURE = ("priority.py", "status.py", "dnswire.py", "spec.py")


def forbidden_imports(source: str) -> list[tuple[int, str]]:
    bad = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__":
            names = [
                a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
        for n in names:
            if n.split(".")[0] in FORBIDDEN:
                bad.append((node.lineno, n))
    return bad


def modules() -> list[Path]:
    return sorted([*(ROOT / "core").rglob("*.py"), *(ROOT / "health" / n for n in HEALTH_PURE)])


def test_core_package_has_modules():
    """The scan below is only meaningful if it sees the core's modules."""
    names = {p.name for p in (ROOT / "core").rglob("*.py")}
    assert {"instance.py", "types.py", "timers.py"} <= names
    for n in HEALTH_PURE:
        assert (ROOT / "health" / n).is_file(), n


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_io_imports(path: Path):
    """core/ and health's decision logic import nothing from asyncio, socket, pyroute2, prometheus_client
    or time."""
    assert forbidden_imports(path.read_text()) == []


def test_detector_catches_every_import_form():
    """The checker itself must fail on each form, or the test above could never fail."""
    src = "import time\nfrom socket import socket\nimport asyncio.events as e\n__import__('pyroute2')\n"
    assert [n for _, n in forbidden_imports(src)] == ["time", "socket", "asyncio.events", "pyroute2"]
    assert forbidden_imports("from . import time\nimport timeit\n") == []
