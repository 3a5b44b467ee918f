"""A seconds-long run of every fuzz harness in fuzz/ (the long runs are `make fuzz`, docs/fuzzing.md).

Each harness replays its seed corpus and then fuzzes for a second on atheris' own libFuzzer with
the normal build (the Python parsers are coverage-instrumented; the compiled ones are exercised without
coverage). A harness that stops on an input - an exception its parser must not raise, a broken invariant, a
crash - fails the test with the input saved in the test's temporary directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FUZZ = os.path.join(ROOT, "fuzz")
HARNESSES = sorted(f[5:-3] for f in os.listdir(FUZZ) if f.startswith("fuzz_") and f.endswith(".py"))
SECONDS = 1


def run_harness(script: str, corpus: str, tmp: str, seconds: int = SECONDS) -> subprocess.CompletedProcess:
    work = os.path.join(tmp, "work")
    os.makedirs(work, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env["TMPDIR"] = tmp  # (the config harness's files: nothing left behind)
    cmd = [
        sys.executable, script, f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048",
        "-max_len=4096", f"-artifact_prefix={tmp}/", work, corpus,
    ]  # fmt: skip
    return subprocess.run(
        cmd, capture_output=True, text=True, errors="replace", env=env, cwd=tmp, timeout=120
    )


def test_every_parser_has_a_harness_and_seeds() -> None:
    assert set(HARNESSES) >= {"wire", "engine", "pcap", "config", "dns", "http", "netlink", "proc"}
    for name in HARNESSES:
        seeds = os.listdir(os.path.join(FUZZ, "corpus", name))
        assert seeds, f"fuzz/corpus/{name} is empty"


@pytest.mark.parametrize("name", HARNESSES)
def test_harness_runs_clean(name: str, tmp_path) -> None:
    p = run_harness(os.path.join(FUZZ, f"fuzz_{name}.py"), os.path.join(FUZZ, "corpus", name), str(tmp_path))
    out = p.stdout + p.stderr
    found = [f for f in os.listdir(tmp_path) if f.startswith(("crash-", "timeout-", "oom-", "leak-"))]
    assert p.returncode == 0 and not found, (
        f"fuzz_{name} stopped (exit {p.returncode}) on {found}:\n{out[-4000:]}"
    )
    assert "INITED" in out and "Done " in out, out[-2000:]


def test_a_harness_that_finds_something_fails(tmp_path) -> None:
    """The check above can fail: a harness whose parser raises on one seed stops with a crash file."""
    script = tmp_path / "fuzz_boom.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {FUZZ!r})
            from _harness import main

            def one(data):
                if data.startswith(b"boom"):
                    raise ValueError("the parser raised")

            main(one)
            """
        )
    )
    corpus = tmp_path / "seeds"
    corpus.mkdir()
    (corpus / "seed").write_bytes(b"boom!")
    p = run_harness(str(script), str(corpus), str(tmp_path), seconds=1)
    assert p.returncode != 0
    assert "the parser raised" in p.stdout + p.stderr
    assert any(f.startswith("crash-") for f in os.listdir(tmp_path))
