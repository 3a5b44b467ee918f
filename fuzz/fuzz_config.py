"""Fuzz the keepalived.conf reader (fastvrrp/config: lexer.py, preprocess.py, reader.py and the keyword
readers behind them) through check_file(), the entry point of `fastvrrp -t` and of every load.

The input is text (UTF-8, undecodable bytes kept as surrogates, as the reader opens files): up to the first
NUL it is keepalived.conf, after it inc.conf, both in a private temporary directory, so `include inc.conf`
and globs reach a second file. Inputs that name a path outside that directory (any "/" or ${_PWD} on an
input that says "include") are skipped: the harness must not read the machine's files.

The documented answer: a Checked result, never an exception (config mistakes are Problems naming
FILE:LINE); each problem names one of the two files and a line number in it (0 for the file itself).
"""

from __future__ import annotations

import os
import tempfile

from _harness import check, instrumented, main

with instrumented():
    from fastvrrp import config
    from fastvrrp.config import preprocess

# The preprocessor's bounds, lowered so that an input reaching one costs milliseconds instead of seconds
# (the same code is exercised; the real bounds are in preprocess.py and tests/unit/test_fuzz_findings.py).
preprocess._MAX_ROWS = 4096
preprocess._MAX_EXPANDED = 1 << 14

DIR = tempfile.mkdtemp(prefix="fastvrrp-fuzz-config-")
MAIN = os.path.join(DIR, "keepalived.conf")
INC = os.path.join(DIR, "inc.conf")
ENV = {"FUZZ": "1", "HOME": DIR}


def one(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    if "include" in text and ("/" in text or "_PWD" in text):
        return
    main_text, _, inc_text = text.partition("\0")
    lines = {}
    for path, body in ((MAIN, main_text), (INC, inc_text)):
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(body)
        lines[path] = body.count("\n") + 1
    res = config.check_file(MAIN, instance_id="fuzz", env=ENV)
    check((res.config is None) == bool(res.problems), "a config returned together with problems")
    for p in [*res.problems, *res.adjustments, *res.unsupported]:
        check(p.file in lines, f"problem in an unknown file: {p}")
        check(
            isinstance(p.line, int) and 0 <= p.line <= lines[p.file],
            f"problem at a line not in the file: {p}",
        )
        check(isinstance(p.message, str) and p.message, f"problem without a message: {p}")


if __name__ == "__main__":
    main(one)
