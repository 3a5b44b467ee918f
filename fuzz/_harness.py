"""What every fuzz harness shares (docs/fuzzing.md): the repository on sys.path, atheris set up, and the
rule that decides a finding.

A harness is `python fuzz/fuzz_NAME.py [libFuzzer options] [corpus dirs]`. Its `one(data)` feeds the bytes to
one parser and returns normally when the parser gave its documented answer (a result, or one of the
exceptions the harness lists as the parser's way of saying "malformed"). Anything else - another exception,
a broken invariant (`Finding`), a crash of the compiled code, AddressSanitizer's report in the fuzz build,
running past libFuzzer's -timeout or -rss_limit_mb - ends the run with the input saved as crash-*/timeout-*.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import atheris  # noqa: E402


class Finding(AssertionError):
    """A parser answered, but the answer breaks a rule the harness checks."""


def check(ok: object, what: str) -> None:
    if not ok:
        raise Finding(what)


def instrumented() -> object:
    """Context manager: fastvrrp's Python modules imported inside it are instrumented for coverage (their
    branches and comparisons reach libFuzzer); the compiled extensions get theirs from the fuzz build."""
    return atheris.instrument_imports(include=["fastvrrp"])


def main(one: Callable[[bytes], None]) -> None:
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
