"""The line-level language: comments, quotes, braces, include, @id, $VAR, ~SEQ/~LST (exact results)."""

from __future__ import annotations

import signal

import pytest

from fastvrrp.config import ConfigError, Problem, check, load
from fastvrrp.config.lexer import build_tree, split_words, strip_comment
from fastvrrp.config.preprocess import Preprocessor, brace_expand


def lines_of(tmp_path, text, instance_id="main", env=None, name="k.conf"):
    p = tmp_path / name
    p.write_text(text)
    pre = Preprocessor(instance_id, env)
    return [(ln, t) for _f, ln, t in pre.read(str(p))], pre.problems, str(p)


def test_comments_hash_and_bang_anywhere_but_not_in_quotes():
    assert strip_comment("priority 100 # x") == "priority 100 "
    assert strip_comment("priority 100!x") == "priority 100"
    assert strip_comment('script "/bin/a # b" ! c') == 'script "/bin/a # b" '


def test_quotes_join_words_and_escapes():
    probs: list[Problem] = []
    assert split_words('abcd" efg h jkl "mnop', "f", 1, probs) == ["abcd efg h jkl mnop"]
    assert split_words("abcd 'efg h' mnop", "f", 1, probs) == ["abcd", "efg h", "mnop"]
    assert split_words(r'"a\tb\x41\101\\\""', "f", 1, probs) == ['a\tbAA\\"']
    assert probs == []
    split_words('"open', "f", 7, probs)
    assert probs == [Problem("f", 7, 'unterminated " quote')]


def test_braces_glued_or_on_their_own_line():
    probs: list[Problem] = []
    tree = build_tree(
        [("f", 1, "a x{"), ("f", 2, "b { c }"), ("f", 3, "d"), ("f", 4, "{"), ("f", 5, "}"), ("f", 6, "}")],
        probs,
    )
    assert probs == []
    (a,) = tree
    assert (a.kw, a.args) == ("a", ["x"])
    assert [(n.kw, n.line) for n in a.children] == [("b", 2), ("d", 3)]
    assert [n.kw for n in a.children[0].children] == ["c"]
    assert a.children[1].children == []


def test_unbalanced_braces_are_located():
    probs: list[Problem] = []
    build_tree([("f", 1, "a {"), ("f", 2, "}"), ("f", 3, "}"), ("f", 4, "b {")], probs)
    assert probs == [
        Problem("f", 3, "unmatched '}'"),
        Problem("f", 4, "'b' block is not closed (missing '}')"),
    ]


def test_conditional_lines(tmp_path):
    text = "@main a 1\n@^main b 2\n@other c 3\n@^other d 4\n"
    got, probs, _ = lines_of(tmp_path, text, "main")
    assert got == [(1, "a 1"), (4, "d 4")] and probs == []
    got, _, _ = lines_of(tmp_path, text, "other")
    assert got == [(2, "b 2"), (3, "c 3")]


def test_definitions_are_expanded_at_use_time_and_recursively(tmp_path):
    text = (
        "$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}\n$ADDRESS_BASE_SUB=0\n${ADDRESS_BASE}.100/32\n"
        "$ADDRESS_BASE_SUB=10\n${ADDRESS_BASE}.100/32\n$X=1\nv $X ${X}y $Xz ${UNDEF}\n"
    )
    got, probs, _ = lines_of(tmp_path, text)
    assert got == [(3, "10.2.0.100/32"), (5, "10.2.10.100/32"), (7, "v 1 1y $Xz ${UNDEF}")]
    assert probs == []


def test_definition_with_conditional_and_conditional_from_definition(tmp_path):
    text = "@main $P=240\n@backup $P=200\n$IF_MAIN=@main\npriority $P\n$IF_MAIN state MASTER\n"
    assert lines_of(tmp_path, text, "main")[0] == [(4, "priority 240"), (5, "state MASTER")]
    assert lines_of(tmp_path, text, "backup")[0] == [(4, "priority 200")]


def test_multiline_definition_is_a_block_with_nested_definitions(tmp_path):
    text = (
        "$RS= \\\n  real ${N} \\\n\n  end\n"  # a blank line inside a continued definition is skipped
        "$VS= \\\n  vs { \\\n  $N=1 \\\n  $RS \\\n  $N=2 \\\n  $RS \\\n  @low prio 1 \\\n  }\n"
        "$VS\n"
    )
    got, probs, _ = lines_of(tmp_path, text, "high")
    assert [t for _ln, t in got] == ["vs {", "real 1", "end", "real 2", "end", "}"]
    assert {ln for ln, _t in got} == {13} and probs == []


def test_builtins(tmp_path):
    text = "a ${_PWD}\nb ${_INSTANCE}\nc ${_HASH}${_BANG}\nd ${_ENV FV_TEST_VAR}\ne ${_RANDOM 5 5}\n"
    got, probs, path = lines_of(tmp_path, text, "node7", env={"FV_TEST_VAR": "xyz"})
    assert got == [(1, f"a {tmp_path}"), (2, "b node7"), (3, "c #!"), (4, "d xyz"), (5, "e 5")]
    r = [int(t.split()[1]) for _l, t in lines_of(tmp_path, "r ${_RANDOM}\n" * 20)[0]]
    assert all(0 <= v <= 32767 for v in r)
    _, probs, path = lines_of(tmp_path, "x ${_RANDOM 9 3}\n")
    assert probs == [
        Problem(path, 1, "invalid ${_RANDOM 9 3}: expected ${_RANDOM [MIN [MAX]]} with 0 <= MIN <= MAX")
    ]


def test_seq_forms(tmp_path):
    def run(spec):
        return [t for _l, t in lines_of(tmp_path, spec + " v ${I}\n")[0]]

    assert run("~SEQ(I, 0, 3)") == ["v 0", "v 1", "v 2", "v 3"]
    assert run("~SEQ(I, 3)") == ["v 1", "v 2", "v 3"]
    assert run("~SEQ(I, -2)") == ["v -1", "v -2"]
    assert run("~SEQ(I, 10, -4, 1)") == ["v 10", "v 6", "v 2"]
    assert run("~SEQx(I, 0x90, 0x10, 0xc0)") == ["v 90", "v a0", "v b0", "v c0"]
    assert run("~SEQx(I, 144, 16, 192)") == ["v 90", "v a0", "v b0", "v c0"]


def test_seq_nested_and_lst(tmp_path):
    got = [t for _l, t in lines_of(tmp_path, "~SEQ(A, 1, 2) ~SEQ(B, 3, 4) x ${A}.${B}\n")[0]]
    assert got == ["x 1.3", "x 1.4", "x 2.3", "x 2.4"]
    got = [
        t
        for _l, t in lines_of(
            tmp_path, "~LST({IP, IP1}, {10,1},{20,4}) ~SEQ(IP2,168,2,170) 192.${IP2}.${IP}.${IP1}\n"
        )[0]
    ]
    assert got == ["192.168.10.1", "192.170.10.1", "192.168.20.4", "192.170.20.4"]
    got = [t for _l, t in lines_of(tmp_path, "~LST(IP, 1, 2) ~LST(IP1, 5,6) 192.169.${IP}.${IP1}\n")[0]]
    assert got == ["192.169.1.5", "192.169.1.6", "192.169.2.5", "192.169.2.6"]


def test_generator_errors(tmp_path):
    _, probs, p = lines_of(tmp_path, "~SEQ(I, 1, 0, 3) x\n~SEQ(1I, 3) x\n~LST({A, B}, {1}) x\n~SEQ(I, 1 x\n")
    assert probs == [
        Problem(p, 1, "~SEQ(I, 1, 0, 3): the step never reaches the end"),
        Problem(p, 2, "~SEQ: invalid variable name '1I'"),
        Problem(p, 3, "~LST: value {1} does not match 2 variable(s)"),
        Problem(p, 4, "~SEQ( is missing its closing ')'"),
    ]


def test_self_referencing_definition_is_an_error(tmp_path):
    _, probs, p = lines_of(tmp_path, "$A=x $A\n$A\n")
    assert probs == [Problem(p, 2, "parameter $A is used inside its own value")]


def test_definition_that_generates_itself_is_an_error_not_a_hang(tmp_path):
    # Each use of $I would run a ~SEQ of three uses of $I: 3^depth lines before any depth limit is reached.
    # (A multi-line value whose closing brace was lost reads the ~SEQ line into the value itself.)
    text = "$I= \\\nvrrp_instance V${N} { \\\n~SEQ(N, 1, 3) $I\n}\n~SEQ(N, 1, 3) $I\n"
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("the preprocessor did not finish within 10 s"))
    signal.alarm(10)
    try:
        _, probs, p = lines_of(tmp_path, text)
    finally:
        signal.alarm(0)
    assert Problem(p, 5, "parameter $I is used inside its own value") in probs


def test_brace_expand():
    assert brace_expand("{foo/{,cat,dog},bar}") == ["foo/", "foo/cat", "foo/dog", "bar"]
    assert brace_expand("a{b,c}d{e,f}") == ["abde", "abdf", "acde", "acdf"]
    assert brace_expand("x{y}") == ["x{y}"]


def test_include_relative_glob_brace_and_nested(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "sub").mkdir()
    (tmp_path / "d" / "one.conf").write_text("one ${_PWD}\ninclude sub/two.conf\n")
    (tmp_path / "d" / "sub" / "two.conf").write_text("two\n")
    (tmp_path / "d" / "three.conf").write_text("three\n")
    pre = Preprocessor("x")
    (tmp_path / "main.conf").write_text("include d/{one,three}.conf\ninclude d/*.none\nlast ${_PWD}\n")
    got = [(f.replace(str(tmp_path), ""), ln, t) for f, ln, t in pre.read(str(tmp_path / "main.conf"))]
    assert got == [
        ("/d/one.conf", 1, f"one {tmp_path}/d"),
        ("/d/sub/two.conf", 1, "two"),
        ("/d/three.conf", 1, "three"),
        ("/main.conf", 3, f"last {tmp_path}"),
    ]
    assert pre.problems == []


def test_include_loop_and_missing_file(tmp_path):
    (tmp_path / "a.conf").write_text("include b.conf\n")
    (tmp_path / "b.conf").write_text("x\ninclude a.conf\ninclude nope.conf\n")
    pre = Preprocessor("x")
    pre.read(str(tmp_path / "a.conf"))
    a, b = str(tmp_path / "a.conf"), str(tmp_path / "b.conf")
    assert pre.problems == [
        Problem(b, 2, f"include loop: {a} -> {b} -> {a}"),
        Problem(b, 3, f"include: no such file {tmp_path}/nope.conf"),
    ]


def test_error_in_included_file_names_that_file(tmp_path):
    (tmp_path / "inc.conf").write_text("vrrp_instance V {\n interface eth0\n virtual_router_id 999\n}\n")
    (tmp_path / "main.conf").write_text("global_defs {\n}\ninclude inc.conf\n")
    with pytest.raises(ConfigError) as ei:
        load(str(tmp_path / "main.conf"), "x")
    assert ei.value.problems == [
        Problem(str(tmp_path / "inc.conf"), 3, "virtual_router_id 999 out of range [1, 255]")
    ]
    assert str(ei.value) == f"{tmp_path}/inc.conf:3: virtual_router_id 999 out of range [1, 255]"


def test_expanded_lines_are_located_at_the_use_site(tmp_path):
    p = tmp_path / "k.conf"
    p.write_text(
        "$I= \\\nvrrp_instance V${N} { \\\n interface eth0 \\\n virtual_router_id ${N} \\\n}\n"
        "~SEQ(N, 254, 256) $I\n"
    )
    cfg, probs, _ = check(str(p), "x")
    assert cfg is None
    assert probs == [Problem(str(p), 6, "virtual_router_id 256 out of range [1, 255]")]


# --- random_seed seeds ${_RANDOM} ---------------------------------------------------------------------------
def _randoms(tmp_path, head):
    p = tmp_path / "r.conf"
    p.write_text(head + "".join(f"r{i} ${{_RANDOM 0 1000000}}\n" for i in range(5)))
    return [t for _f, _ln, t in Preprocessor("x").read(str(p)) if t.startswith("r")]


def test_random_seed_seeds_the_random_builtin(tmp_path):
    seeded = "global_defs {\n random_seed 42\n}\n"
    a, b = _randoms(tmp_path, seeded), _randoms(tmp_path, seeded)
    assert a == b and len(set(a)) > 1
    assert _randoms(tmp_path, seeded.replace("42", "43")) != a
    # unseeded reads differ from each other (5 draws from a million values)
    assert _randoms(tmp_path, "") != _randoms(tmp_path, "")


def test_random_seed_through_check_still_valid(tmp_path):
    inst = "vrrp_instance V {\n interface eth0\n virtual_router_id 7\n priority ${_RANDOM 1 254}\n}\n"
    text = "global_defs {\n    random_seed 7\n}\n" + inst
    p = tmp_path / "k.conf"
    p.write_text(text)
    cfg1, problems, _ = check(str(p), instance_id="main", env={})
    cfg2, _, _ = check(str(p), instance_id="main", env={})
    assert problems == [] and cfg1 is not None and cfg2 is not None
    assert cfg1.instances[0].priority == cfg2.instances[0].priority
    assert cfg1.global_defs.other["random_seed"] == 7
