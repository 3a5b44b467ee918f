"""keepalived.conf reader: the configuration language and the VRRP keywords, as frozen dataclasses.

    cfg = load("/etc/keepalived/keepalived.conf")            # Config, or raises ConfigError
    cfg, problems, warnings = check(path)                    # never raises for a bad config
    result = check_file(path, strict=False)                  # the same, adjustments kept apart

Every problem is a Problem(file, line, message) naming the file where the text is, after includes.
`warnings` lists the adjustments (problems keepalived 2.2.7 works around when it starts the file - it rounds,
drops or skips something - which fastvrrp works around the same way, saying what it did), then the
keepalived features present in the file that fastvrrp does not implement (one note per feature); neither is
an error. With `strict` (or `fastvrrp_strict_config` in global_defs) every adjustment is a problem instead.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

from fastvrrp.health.spec import CheckSpec, DnsCheck, HttpCheck, TcpCheck, UrlSpec

from .lexer import iter_tree
from .model import (
    Config,
    ConfigError,
    GlobalDefs,
    InstanceConfig,
    Problem,
    Route,
    Rule,
    Script,
    SyncGroupConfig,
    TrackFile,
    TrackProcess,
    TrackRef,
    UnicastPeer,
    VirtualAddress,
    VrrpScript,
)
from .preprocess import Preprocessor
from .reader import Reader

__all__ = [
    "CheckSpec",
    "Config",
    "ConfigError",
    "DnsCheck",
    "GlobalDefs",
    "HttpCheck",
    "Problem",
    "Route",
    "Rule",
    "Script",
    "SyncGroupConfig",
    "TcpCheck",
    "TrackFile",
    "TrackProcess",
    "TrackRef",
    "UnicastPeer",
    "UrlSpec",
    "VirtualAddress",
    "InstanceConfig",
    "VrrpScript",
    "Checked",
    "check",
    "check_file",
    "load",
]


@dataclass(frozen=True, slots=True)
class Checked:
    """What reading a file found: the Config (None if it has a problem), the problems, the adjustments (see
    the module docstring; already among the problems if strict) and the unsupported-feature notes."""

    config: Config | None
    problems: list[Problem]
    adjustments: list[Problem]
    unsupported: list[Problem]
    strict: bool


def check(
    path: str,
    instance_id: str | None = None,
    env: dict[str, str] | None = None,
    strict: bool = False,
) -> tuple[Config | None, list[Problem], list[Problem]]:
    """Read and validate `path`: (config or None if any problem, problems, warnings: the adjustments then
    the unsupported notes).

    `instance_id` is keepalived's -i config id (default: the short host name); `env` is what `${_ENV X}`
    reads (default: os.environ).
    """
    res = check_file(path, instance_id, env, strict)
    return res.config, res.problems, ([] if res.strict else res.adjustments) + res.unsupported


def check_file(
    path: str,
    instance_id: str | None = None,
    env: dict[str, str] | None = None,
    strict: bool = False,
) -> Checked:
    """check(), with the adjustments kept apart from the unsupported notes (what `-t` needs)."""
    # Reading makes millions of objects that all live until the end and form no cycles: the cyclic
    # collector would only walk them again and again (about 5 s of a 65,024-instance config).
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        pre = Preprocessor(instance_id, env)
        problems: list[Problem] = pre.problems
        reader = Reader()
        # Each top-level statement is read as soon as it is complete (see iter_tree): the statements of a
        # large generated config are read while still in the CPU caches, and those the reader keeps no
        # reference to are freed straight away.
        reader.read(iter_tree(pre.read_chunks(path), problems))
        cfg = reader.finish(tuple(pre.files))
        order = _order(pre.files)
        adjustments = sorted(set(reader.adjustments), key=order)
        strict = strict or bool(cfg.global_defs.other.get("fastvrrp_strict_config"))
        if strict:
            problems = problems + [
                Problem(a.file, a.line, f"{a.message} [refused: strict configuration]") for a in adjustments
            ]
        problems = sorted(set(problems + reader.problems), key=order)
        # Free the intermediates now, by reference counting (nothing the reader holds forms a cycle).
        del reader, pre
    finally:
        if gc_was_on:
            # What survives (the Config) was all allocated with the collector off and sits in the youngest
            # generation: the first collection after enable() would walk every one of its objects
            # (0.7 s on a 65,024-instance config) only to promote them. Promote them directly instead:
            # freeze() + unfreeze() moves every tracked object to the oldest generation, where a long-lived
            # configuration belongs; nothing is kept alive by this, cycles are still found by a full
            # collection.
            gc.freeze()
            gc.unfreeze()
            gc.enable()
    unsupported = list(cfg.unsupported)
    return Checked(None if problems else cfg, problems, adjustments, unsupported, strict)


def load(path: str, instance_id: str | None = None, env: dict[str, str] | None = None) -> Config:
    """Read and validate `path`; raise ConfigError (with every problem) if it is not valid."""
    cfg, problems, _unsupported = check(path, instance_id, env)
    if cfg is None:
        raise ConfigError(problems)
    return cfg


def _order(files: list[str]):
    rank = {f: i for i, f in enumerate(files)}

    def key(p: Problem):
        return (rank.get(p.file, len(rank)), p.file, p.line, p.message)

    return key
