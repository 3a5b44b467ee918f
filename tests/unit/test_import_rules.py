"""The import rules between fastvrrp's parts, checked on the source: every module under fastvrrp/ is parsed
(Python with ast, Cython .pyx/.pxd line by line) and every import it makes is held to the table below -
top-level and lazy ones (inside functions), `import x`, `from x import y`, relative imports resolved, and
modules imported by name (`importlib.import_module("fastvrrp.x")`, a module name handed to a loader).

A failure names the file, the line and the import, and the rule it breaks."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

# What each part may import. `only`: the fastvrrp modules the part may import at all (None: any). `never`:
# module prefixes it must not import (fastvrrp's or others'). A module belongs to a part when its dotted name
# is the part or lies under it; `unless` takes modules out of a part. docs/DESIGN.md mirrors this table.
IO_AND_CLOCK = (
    "asyncio",
    "socket",
    "select",
    "selectors",
    "time",
    "threading",
    "subprocess",
    "uvloop",
    "pyroute2",
    "prometheus_client",
)


@dataclass(frozen=True)
class Rule:
    part: str
    only: tuple[str, ...] | None
    never: tuple[str, ...]
    why: str
    unless: tuple[str, ...] = ()


RULES = (
    Rule(
        "fastvrrp.core",
        only=("fastvrrp.core", "fastvrrp._wire"),
        never=IO_AND_CLOCK,
        why="the protocol core is sans-I/O: it takes now_us and returns actions",
    ),
    Rule(
        "fastvrrp.health",
        only=None,
        never=("fastvrrp.core", "fastvrrp.daemon", "fastvrrp._engine"),
        why="trackers and checks report up/down/value and know no VRRP",
    ),
    Rule(
        "fastvrrp.health.status", only=None, never=IO_AND_CLOCK, why="pure tracker pieces: no I/O, no clock"
    ),
    Rule("fastvrrp.health.dnswire", only=None, never=IO_AND_CLOCK, why="a pure codec: no I/O, no clock"),
    Rule("fastvrrp.health.spec", only=None, never=IO_AND_CLOCK, why="plain data: no I/O, no clock"),
    Rule("fastvrrp.config", only=None, never=("fastvrrp.daemon",), why="reading a file runs no daemon"),
    Rule("fastvrrp._wire", only=None, never=("fastvrrp.daemon",), why="the codec runs no daemon"),
    Rule(
        "fastvrrp",
        only=None,
        never=("fastvrrp.lab",),
        why="product code does not depend on the test bed",
        unless=("fastvrrp.lab",),
    ),
)

# Imports a rule would forbid but which are allowed, with the reason: (importing module, imported module).
EXCEPTIONS = {
    ("fastvrrp.cli", "fastvrrp.lab.demo"): "`fastvrrp demo` loads the demo by name, only when asked for",
}

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "fastvrrp"


@dataclass(frozen=True)
class Import:
    line: int
    text: str  # the statement as written, for the message
    module: str  # what it imports, resolved to an absolute dotted name


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve(path: Path, level: int, module: str | None) -> str:
    """The absolute name of `from <level dots><module> import ...` written in `path`."""
    if level == 0:
        return module or ""
    base = module_name(path).split(".")
    if not _is_package(path):
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _known_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (
        any((ROOT / rel).with_suffix(ext).is_file() for ext in (".py", ".pyx", ".pxd"))
        or (ROOT / rel / "__init__.py").is_file()
    )


def _call_name(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Attribute):
        return f.attr
    return f.id if isinstance(f, ast.Name) else ""


def python_imports(path: Path, source: str) -> list[Import]:
    """Every import in a Python module, lazy ones included, plus fastvrrp modules named as a call's argument
    (import_module, __import__, a loader taking a module name); a logger's name is not an import."""
    lines = source.splitlines()
    out: list[Import] = []
    for node in ast.walk(ast.parse(source, str(path))):
        text = lines[node.lineno - 1].strip() if hasattr(node, "lineno") else ""
        if isinstance(node, ast.Import):
            out += [Import(node.lineno, text, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(path, node.level, node.module)
            out.append(Import(node.lineno, text, base))
            # `from fastvrrp import _engine` imports the module fastvrrp._engine
            out += [Import(node.lineno, text, f"{base}.{a.name}") for a in node.names if a.name != "*"]
        elif isinstance(node, ast.Call) and _call_name(node) != "getLogger":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    name = arg.value
                    top = name.split(".")[0]
                    if _call_name(node) in ("__import__", "import_module") or (
                        top == "fastvrrp" and "." in name and _known_module(name)
                    ):
                        out.append(Import(node.lineno, text, name))
    return out


_CY_IMPORT = re.compile(r"^\s*(?:from\s+(\S+)\s+c?import\b|c?import\s+([\w.]+))")


def cython_imports(path: Path, source: str) -> list[Import]:
    """`import`, `cimport`, `from x import` and `from x cimport` lines of a .pyx/.pxd (absolute names)."""
    out = []
    for n, line in enumerate(source.splitlines(), 1):
        m = _CY_IMPORT.match(line)
        if m:
            name = m.group(1) or m.group(2)
            if name.startswith("."):
                level = len(name) - len(name.lstrip("."))
                name = _resolve(path, level, name.lstrip(".") or None)
            out.append(Import(n, line.strip(), name))
    return out


def imports_of(path: Path) -> list[Import]:
    source = path.read_text()
    if path.suffix == ".py":
        return python_imports(path, source)
    return cython_imports(path, source)


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def covers(rule: Rule, module: str) -> bool:
    return _under(module, rule.part) and not any(_under(module, u) for u in rule.unless)


def breaks(rule: Rule, importer: str, imp: Import) -> bool:
    if (importer, imp.module) in EXCEPTIONS:
        return False
    if any(_under(imp.module, n) for n in rule.never):
        return True
    if rule.only is not None and _under(imp.module, "fastvrrp"):
        return not any(_under(imp.module, o) for o in rule.only)
    return False


def violations(rule: Rule, files: list[Path]) -> list[str]:
    """One line per offending statement: `file:line: statement` and the first forbidden module it names."""
    out: dict[tuple[str, int, str], str] = {}
    for path in files:
        importer = module_name(path)
        if not covers(rule, importer):
            continue
        for imp in imports_of(path):
            if breaks(rule, importer, imp):
                out.setdefault((str(path.relative_to(ROOT)), imp.line, imp.text), imp.module)
    return [f"{rel}:{line}: `{text}` imports {mod}" for (rel, line, text), mod in sorted(out.items())]


def source_files() -> list[Path]:
    return sorted(p for ext in ("*.py", "*.pyx", "*.pxd") for p in PKG.rglob(ext))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.part)
def test_import_rule(rule: Rule):
    """The part's modules import nothing the table forbids it."""
    bad = violations(rule, source_files())
    if bad:
        pytest.fail(f"{rule.part} must not import these ({rule.why}):\n" + "\n".join(bad), pytrace=False)


def test_every_rule_covers_modules():
    """A rule whose part has no module (renamed, moved) would pass for nothing."""
    names = [module_name(p) for p in source_files()]
    for rule in RULES:
        assert any(covers(rule, n) for n in names), rule.part


def test_every_exception_is_still_used():
    """An exception whose import is gone must leave the table, or it would hide a later one."""
    for importer, imported in EXCEPTIONS:
        path = next(p for p in source_files() if module_name(p) == importer)
        assert any(i.module == imported for i in imports_of(path)), (importer, imported)


def test_detector_sees_every_import_form():
    """The scanner must see each form, or the rules above could never fail."""
    mod = PKG / "health" / "example.py"  # a path inside the package, so relative imports resolve
    src = (
        "import time\n"
        "from socket import socket\n"
        "import asyncio.events as e\n"
        "from .. import _engine\n"
        "from ..daemon.driver import Driver\n"
        "def f():\n"
        "    from fastvrrp.core import priority\n"
        "    __import__('pyroute2')\n"
        "    importlib.import_module('fastvrrp.lab.demo')\n"
        "    load('fastvrrp.daemon.status', 'main')\n"
        "    logging.getLogger('fastvrrp.daemon')\n"
    )
    got = {(i.line, i.module) for i in python_imports(mod, src)}
    assert {
        (1, "time"),
        (2, "socket"),
        (3, "asyncio.events"),
        (4, "fastvrrp._engine"),
        (5, "fastvrrp.daemon.driver"),
        (7, "fastvrrp.core.priority"),
        (8, "pyroute2"),
        (9, "fastvrrp.lab.demo"),
        (10, "fastvrrp.daemon.status"),
    } <= got
    assert not any(line == 11 for line, _ in got)
    init = PKG / "core" / "__init__.py"
    assert {i.module for i in python_imports(init, "from .types import State\n")} == {
        "fastvrrp.core.types",
        "fastvrrp.core.types.State",
    }
    pyx = PKG / "_wire.pyx"
    cy = "from libc.stdint cimport uint8_t\nimport socket as _socket\nfrom fastvrrp.daemon cimport x\n"
    assert [i.module for i in cython_imports(pyx, cy)] == ["libc.stdint", "socket", "fastvrrp.daemon"]


def test_rules_catch_what_they_forbid():
    """Each kind of rule fails on a forbidden import and passes an allowed one."""
    core = next(r for r in RULES if r.part == "fastvrrp.core")
    health = next(r for r in RULES if r.part == "fastvrrp.health")
    product = next(r for r in RULES if r.part == "fastvrrp")
    assert breaks(core, "fastvrrp.core.timers", Import(1, "", "asyncio"))
    assert breaks(core, "fastvrrp.core.timers", Import(1, "", "fastvrrp.io.timer"))
    assert not breaks(core, "fastvrrp.core.timers", Import(1, "", "fastvrrp._wire"))
    assert not breaks(core, "fastvrrp.core.timers", Import(1, "", "dataclasses"))
    assert breaks(health, "fastvrrp.health.status", Import(1, "", "fastvrrp.daemon.driver"))
    assert not breaks(health, "fastvrrp.health.trackers", Import(1, "", "fastvrrp.io.inotify"))
    assert breaks(product, "fastvrrp.daemon.status", Import(1, "", "fastvrrp.lab.namespaces"))
    assert not breaks(product, "fastvrrp.cli", Import(1, "", "fastvrrp.lab.demo"))
    assert not covers(product, "fastvrrp.lab.demo")
