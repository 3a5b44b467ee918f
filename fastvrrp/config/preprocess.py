"""The line-level language of keepalived.conf, before any keyword is looked at.

For every line read, in this order (keepalived.conf(5) "ADVANCED CONFIGURATION"):

1. comments (`#`, `!` outside quotes) are cut, blank lines dropped;
2. `@ID` / `@^ID` conditional lines: kept (without the prefix) only if the config id matches / differs;
3. `$NAME=value` defines a parameter (a trailing `\\` continues the value on the next line, so a value may
   be a whole block);
4. `~SEQ(var, [start,] [step,] end)`, `~SEQx(...)` (hex) and `~LST(var, v1, v2 ...)` /
   `~LST({a, b}, {1, 2}, ...)` repeat the rest of the line once per value, nested left to right;
5. `$NAME` (followed by whitespace or the end) and `${NAME}` are replaced, recursively, at use time; a
   multi-line value becomes several lines, each going through steps 2-5 again. Undefined names stay as
   written. Built-ins: `${_PWD}`, `${_INSTANCE}`, `${_RANDOM [MIN [MAX]]}`, `${_HASH}`, `${_BANG}`,
   `${_ENV NAME}`;
6. `include PATTERN` (and the includer/includem/includew/includeb/includea variants) splices files in:
   globs and csh brace expansion, relative to the including file's directory, loops detected.

Every produced line keeps the (file, line) of the file text that produced it: a line made by expanding a
parameter or a generator carries the location of the line that used it.
"""

from __future__ import annotations

import glob
import os
import random
import re
import socket
from collections.abc import Iterable, Iterator
from typing import Any

from .lexer import Node, line_shape, split_words, strip_comment
from .model import Problem

_DEF = re.compile(r"\s*\$([A-Za-z_][A-Za-z0-9_]*)=(.*)\Z", re.S)
_VAR = re.compile(r"\$\{([^{}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=\s|\Z)")
_DEF_START = re.compile(r"\s*(?:@\^?\S+\s+)?\$[A-Za-z_][A-Za-z0-9_]*=")
_SPECIAL = re.compile(r"(?m)^\s*(?:[@~]|\$[A-Za-z_][A-Za-z0-9_]*=|include)")
_GEN = re.compile(r"\s*~(SEQx|SEQ|LST)\(")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INCLUDES = frozenset({"include", "includer", "includem", "includew", "includeb", "includea"})
_MAX_DEPTH = 64  # nested substitutions/generators/includes: deeper means a definition refers to itself
# Bounds on what a few lines can make the preprocessor produce (a definition that uses itself, definitions
# that multiply, a ~SEQ with a typo in its end): without them such a file takes the machine's memory. Far
# above what real files need (65,024 generated instances are 65,024 rows and lines of a few KiB).
_MAX_EXPANDED = 1 << 18  # characters in one text after parameter expansion
_MAX_ROWS = 1 << 19  # ~SEQ / ~LST rows in one file tree

Line = tuple[str, int, str]
Chunk = tuple[str, int, "str | Expansion"]  # read_chunks: a text, or a template expansion
# (the internal methods append Lines, or Chunks in chunk mode, to `out: list[Any]`)


def default_instance_id() -> str:
    """keepalived's default config id: the first label of the node name."""
    return socket.gethostname().split(".", 1)[0]


def brace_expand(pattern: str) -> list[str]:
    """csh-style brace expansion: `a{b,c{d,e}}f` -> abf acdf acef (a lone `{x}` is kept literally)."""
    depth = 0
    start = -1
    for i, c in enumerate(pattern):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                body = pattern[start + 1 : i]
                parts, d, last = [], 0, 0
                for j, ch in enumerate(body):
                    if ch == "{":
                        d += 1
                    elif ch == "}":
                        d -= 1
                    elif ch == "," and d == 0:
                        parts.append(body[last:j])
                        last = j + 1
                parts.append(body[last:])
                head, tail = pattern[:start], pattern[i + 1 :]
                if len(parts) == 1:
                    return [head + "{" + x + "}" + t for x in brace_expand(body) for t in brace_expand(tail)]
                out: list[str] = []
                for p in parts:
                    for x in brace_expand(p + tail):
                        out.append(head + x)
                return out
    return [pattern]


def _lines(raw: str) -> list[str]:
    """The lines of a file's text. Only "\n" ends a line (as for keepalived, grep -n and editors): a lone
    "\r" must not shift every later line number; the "\r" of a CRLF line end is dropped."""
    lines = raw.split("\n")
    return [ln.removesuffix("\r") for ln in lines] if "\r" in raw else lines


def _bounded(text: str, problems: list[Problem], file: str, lineno: int) -> str:
    """`text`, or "" (the line is dropped) with a problem when it is longer than _MAX_EXPANDED."""
    if len(text) <= _MAX_EXPANDED:
        return text
    why = f"parameter expansion makes more than {_MAX_EXPANDED} characters (a definition that uses itself?)"
    problems.append(Problem(file, lineno, why))
    return ""


def _capped(rows: Iterable[tuple], pre: Preprocessor, file: str, lineno: int, kind: str) -> Iterator[tuple]:
    """The rows of a generator until the file tree has had _MAX_ROWS of them; then a problem."""
    for row in rows:
        pre.rows += 1
        if pre.rows > _MAX_ROWS:
            pre.problems.append(Problem(file, lineno, f"~{kind}: more than {_MAX_ROWS} rows generated"))
            return
        yield row


def _parse_refs(s: str) -> tuple | None:
    """The references of `s`: ([(literal before, braced, name or inner text, whole match)], tail), or None."""
    refs = []
    pos = 0
    for m in _VAR.finditer(s):
        if m.group(2) is not None:
            refs.append((s[pos : m.start()], False, m.group(2), m.group(0)))
        else:
            refs.append((s[pos : m.start()], True, m.group(1).strip(), m.group(0)))
        pos = m.end()
    if not refs:
        return None
    return refs, s[pos:]


# A value that means the same characters wherever it is inserted: no whitespace, quotes, braces, escapes,
# comment or parameter characters, so the words of an expanded line are its template's words with the
# values filled in.
_PLAIN_VALUE = re.compile(r"[\w.:/+%,=-]+\Z")
_SENTINEL = "\x00"  # marks a reference in a template's text while it is split into words


class Template:
    """A line text whose parameter references all take plain values, split into words once.

    Large generated configs expand the same text tens of thousands of times (`~SEQ ... $BLOCK`); joining
    each expansion into lines and splitting them again is most of the cost of reading them. A Template
    holds the text's lines as build_tree would see them, each word a constant or an f-string over the
    values, compiled into one function; an `Expansion` (template + values) stands in for the text.
    """

    __slots__ = ("keys", "fill", "shapes", "build")

    def __init__(self, keys: tuple[tuple[str, bool], ...], fill, shapes: tuple, build=None) -> None:
        self.keys = keys  # (name, braced) of each distinct reference, in order of first use
        self.fill = fill  # f(*values) -> per line: (keyword, [args]) for shapes 0/1, the word list for 3
        self.shapes = shapes  # per line: (shape, shared Node or None)
        # For a text whose blocks all close within it (see _builder): f(file, line, block, *values) appends
        # its statements to `block` and returns the statement a following `{` would attach to.
        self.build = build

    @staticmethod
    def compile(text: str, refs: tuple, file: str, lineno: int) -> Template | None:
        """The template of `text` (whose references are `refs`, from _parse_refs), or None when its words
        could depend on the values in ways other than filling them in."""
        pieces: list[str] = []
        keys: list[tuple[str, bool]] = []
        slot: dict[tuple[str, bool], int] = {}
        for literal, braced, key, _whole in refs[0]:
            pieces.append(literal)
            # A reference used several times is looked up once per expansion: within one use of the text
            # every occurrence of it has the same value.
            i = slot.get((key, braced))
            if i is None:
                i = slot[key, braced] = len(keys)
                keys.append((key, braced))
            pieces.append(_SENTINEL + chr(0xE000 + i))
        pieces.append(refs[1])
        literal_text = "".join(p for p in pieces if not p.startswith(_SENTINEL))
        if (
            len(keys) > 0x1000
            or any(c in literal_text for c in "\\$@~\x00")
            or any(0xE000 <= ord(c) < 0xF000 for c in literal_text)
            or "random_seed" in literal_text
        ):
            return None
        marked = "".join(pieces)
        if _SPECIAL.search(marked):
            return None
        problems: list[Problem] = []
        lines = [w for w in (split_words(part, file, lineno, problems) for part in marked.split("\n")) if w]
        if problems:
            return None

        def expr(w: str) -> str:
            if _SENTINEL not in w:
                return repr(w)
            out = []
            for j, chunk in enumerate(w.split(_SENTINEL)):
                if j:
                    out.append(f"{{v{ord(chunk[0]) - 0xE000}}}")
                    chunk = chunk[1:]
                out.append(chunk.replace("{", "{{").replace("}", "}}"))
            return "f" + repr("".join(out))

        shapes = []
        exprs = []
        node_exprs: list[tuple[str, str] | None] = []  # shapes 0 and 1: (keyword, [args]) as expressions
        for i, words in enumerate(lines):
            head = words[0].split(_SENTINEL, 1)[0]
            if head != words[0] and ("include".startswith(head) or "random_seed".startswith(head)):
                # A value completing a line's first word could make it an include (or a random_seed the
                # preprocessor acts on); values never hold @, ~ or $, the other special starts.
                return None
            shape = line_shape(words)
            shared = None
            if (
                shape == 0
                and i + 1 < len(lines)
                and lines[i + 1][0] != "{"
                and not any(_SENTINEL in w for w in words)
            ):
                # A constant statement can be one Node for every expansion, unless a `{` could still attach
                # to it (the next line starts with one, or it is the last line of the text).
                shared = Node(words[0], words[1:], file, lineno)
            if shape in (0, 1):
                kw_args = (
                    expr(words[0]),
                    f"[{', '.join(map(expr, words[1:] if shape == 0 else words[1:-1]))}]",
                )
                node_exprs.append(kw_args)
            else:
                node_exprs.append(None)
            if shape == 0:
                exprs.append("None" if shared else "({}, {})".format(*kw_args))
            elif shape == 1:
                exprs.append("({}, {})".format(*kw_args))
            elif shape == 2:
                exprs.append("['}']")
            else:
                exprs.append(f"[{', '.join(map(expr, words))}]")
            shapes.append((shape, shared))
        args = ", ".join(f"v{i}" for i in range(len(keys)))
        src = f"def fill({args}):\n    return ({', '.join(exprs)}{',' if len(exprs) == 1 else ''})\n"
        ns: dict = {}
        exec(src, ns)  # noqa: S102 - literals through repr(), names generated here
        return Template(tuple(keys), ns["fill"], tuple(shapes), _builder(shapes, node_exprs, args))


def _builder(shapes: list, node_exprs: list, args: str):
    """The statements of a template's lines as one generated function, or None.

    Only for texts made of `keyword args...`, `keyword args... {` and `}` lines whose blocks all open and
    close within the text: then what lexer.build_tree does line by line (a stack of open blocks, the
    statement a `{` may attach to) is known in advance, and the function creates the same Nodes in the same
    blocks directly. Anything else (a `{` or `}` elsewhere, a block left open or closing one opened
    before the text) goes through build_tree's general loop.
    """
    depth = 0
    for shape, _shared in shapes:
        if shape == 3:
            return None
        depth += 1 if shape == 1 else (-1 if shape == 2 else 0)
        if depth < 0:
            return None
    if depth:
        return None
    body = []
    blocks = ["block"]  # the variable holding each open block's list
    consts: dict[str, object] = {}
    last = "None"
    for i, ((shape, shared), ex) in enumerate(zip(shapes, node_exprs, strict=True)):
        cur = blocks[-1]
        if shape == 2:
            blocks.pop()
            last = "None"
        elif shared is not None:
            consts[f"s{i}"] = shared
            body.append(f"{cur}.append(s{i})")
            last = f"s{i}"
        else:
            if _NODE_BY_SLOTS:
                # Node(kw, args, file, line) without the call: the same five stores its __init__ makes.
                body.append(f"n{i} = _new(_Node)")
                body.append(f"n{i}.kw = {ex[0]}")
                body.append(f"n{i}.args = {ex[1]}")
                body.append(f"n{i}.file = file")
                body.append(f"n{i}.line = lineno")
                if shape == 0:
                    body.append(f"n{i}.children = None")
            else:
                body.append(f"n{i} = _Node({ex[0]}, {ex[1]}, file, lineno)")
            body.append(f"{cur}.append(n{i})")
            if shape == 1:
                body.append(f"b{i} = n{i}.children = []")
                blocks.append(f"b{i}")
                last = "None"
            else:
                last = f"n{i}"
    src = f"def build(file, lineno, block{', ' if args else ''}{args}):\n"
    src += "".join(f"    {line}\n" for line in body) + f"    return {last}\n"
    ns: dict = {"_Node": Node, "_new": object.__new__, **consts}
    exec(src, ns)  # noqa: S102 - as in Template.compile
    return ns["build"]


def _node_by_slots() -> bool:
    """Whether a Node is exactly the five slots its __init__ stores (so _builder may store them itself)."""
    if Node.__slots__ != ("kw", "args", "file", "line", "children"):
        return False
    args: list[str] = []
    a = Node("k", args, "f", 1)
    b = object.__new__(Node)
    b.kw, b.args, b.file, b.line, b.children = "k", args, "f", 1, None
    return all(getattr(a, n) is getattr(b, n) for n in Node.__slots__)


_NODE_BY_SLOTS = _node_by_slots()


class Expansion:
    """One use of a Template: what build_tree reads in place of the expanded text."""

    __slots__ = ("template", "values")

    def __init__(self, template: Template, values: list[str]) -> None:
        self.template = template
        self.values = values


def _seed(rng: random.Random, text: str) -> None:
    """`random_seed N` (global_defs) seeds the generator behind ${_RANDOM} from here on, as in keepalived,
    where it takes effect when read; a bad value is reported by the reader (schema: int 0..2^32-1)."""
    words = text.split()
    if len(words) == 2 and words[0] == "random_seed":
        try:
            seed = int(words[1], 10)
        except ValueError:
            return
        if 0 <= seed <= 2**32 - 1:
            rng.seed(seed)


class Preprocessor:
    """Reads a file tree and yields finished (file, line, text) lines; problems are collected."""

    def __init__(self, instance_id: str | None = None, env: dict[str, str] | None = None) -> None:
        self.instance_id = default_instance_id() if instance_id is None else instance_id
        self.env = os.environ if env is None else env
        # name -> value, its lines joined with "\n" (one line for ordinary definitions): stored joined because
        # that is how every use inserts it.
        self.defs: dict[str, str] = {}
        self.problems: list[Problem] = []
        self.files: list[str] = []  # every file read, in order
        self._stack: list[str] = []  # real paths of the files being read (include loop detection)
        self._dir = "."
        self.random = random.Random()
        # text -> its parameter references, parsed once (generated configs substitute the same text many
        # times with different values); None when the text has none.
        self._refs: dict[str, tuple | None] = {}
        self._chunks = False  # hand fast-path expansions over as one multi-line chunk (see read_chunks)
        self._templates: dict[tuple[str, str, int], Template | None] = {}  # see _expansion
        self._seen_once: set[tuple[str, str, int]] = set()
        self._plain: dict[str, bool] = {}  # value -> matches _PLAIN_VALUE
        self._last: dict[str, tuple[list[str | None], str]] = {}  # see _substitute
        # Definitions whose value is being read line by line (slow path): using one of them again inside its
        # own value can never end (`$I` whose value holds `~SEQ(N, 1, 3) $I` would fan out 3^depth lines).
        self._expanding: list[str] = []
        self.rows = 0  # generator rows so far (_MAX_ROWS)

    # --- files ------------------------------------------------------------------------------------------
    def read(self, path: str) -> list[Line]:
        """Every finished line as (file, line, text), text stripped and never empty."""
        out: list[Line] = []
        self._chunks = False
        self._read_file(path, None, out)
        return out

    def read_chunks(self, path: str) -> list[Chunk]:
        """As read(), but the lines one parameter expansion made may come as one text joined with "\n"
        (all from the same file line), neither stripped nor free of blank lines: lexer.build_tree takes
        them as they are and saves a tuple per line on large generated configs."""
        out: list[Chunk] = []
        self._chunks = True
        try:
            self._read_file(path, None, out)
        finally:
            self._chunks = False
        return out

    def _read_file(self, path: str, origin: tuple[str, int] | None, out: list[Any]) -> None:
        real = os.path.realpath(path)
        if real in self._stack:
            chain = " -> ".join([*self._stack[self._stack.index(real) :], real])
            f, ln = origin or (path, 0)
            self.problems.append(Problem(f, ln, f"include loop: {chain}"))
            return
        try:
            with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:  # see _lines
                raw = fh.read()
        except OSError as e:
            f, ln = origin or (path, 0)
            self.problems.append(Problem(f, ln, f"cannot read {path}: {e.strerror}"))
            return
        self.files.append(path)
        self._stack.append(real)
        saved_dir = self._dir
        self._dir = os.path.dirname(os.path.abspath(path))
        try:
            lines = _lines(raw)
            i, n = 0, len(lines)
            while i < n:
                lineno = i + 1
                text = strip_comment(lines[i])
                i += 1
                if not text or text.isspace():
                    continue
                # A definition continues while its lines end in a backslash.
                if text.rstrip().endswith("\\") and _DEF_START.match(text):
                    parts = [text.rstrip()[:-1]]
                    while i < n:
                        nxt = strip_comment(lines[i]).rstrip()
                        i += 1
                        if not nxt:
                            continue  # blank lines inside a continued definition are skipped
                        if nxt.endswith("\\"):
                            parts.append(nxt[:-1])
                        else:
                            parts.append(nxt)
                            break
                    self._line("\n".join(parts), path, lineno, 0, out)
                else:
                    self._line(text, path, lineno, 0, out)
        finally:
            self._stack.pop()
            self._dir = saved_dir

    # --- one line -----------------------------------------------------------------------------------------
    def _line(self, text: str, file: str, lineno: int, depth: int, out: list[Any]) -> None:
        if depth > _MAX_DEPTH:
            self.problems.append(
                Problem(file, lineno, "parameter expansion too deep (a definition uses itself?)")
            )
            return
        s = text.lstrip()
        if not s:
            return
        c = s[0]
        if c == "@":
            m = re.match(r"@(\^?)(\S*)\s*", s)
            assert m is not None
            neg, ident = m.group(1) == "^", m.group(2)
            if not ident:
                self.problems.append(Problem(file, lineno, "'@' must be followed by a config id"))
                return
            if (ident == self.instance_id) == neg:
                return
            s = s[m.end() :]
            if not s:
                return
            c = s[0]
        if c == "$":
            m = _DEF.match(s)
            if m:
                value = m.group(2)
                vlines = value.split("\n")
                if len(vlines) > 1 and not vlines[0].strip():
                    vlines = vlines[1:]
                self.defs[m.group(1)] = (
                    "\n".join(v.strip() for v in vlines) if len(vlines) > 1 else value.strip()
                )
                return
        elif c == "~" and _GEN.match(s):
            self._generator(s, file, lineno, depth, out)
            return
        if "$" in s:
            if self._chunks:
                exp = self._expansion(s, file, lineno)
                if exp is not None:
                    out.append((file, lineno, exp))
                    return
            new = self._substitute(s, file, lineno)
            if new != s:
                if self._chunks:
                    exp = self._expansion(new, file, lineno)
                    if exp is not None:
                        out.append((file, lineno, exp))
                        return
                # Fast path (large generated configs): substitute to a fixed point, and if no resulting
                # line needs the line-level language again, hand the lines over directly.
                full = new
                for _ in range(_MAX_DEPTH):
                    if "$" not in full:
                        break
                    nxt = self._substitute(full, file, lineno)
                    if nxt == full:
                        break
                    full = nxt
                else:
                    full = ""
                # (_SPECIAL needs one of these characters; testing for them first is much cheaper.)
                if full and not (
                    ("@" in full or "~" in full or "$" in full or "include" in full) and _SPECIAL.search(full)
                ):
                    if "random_seed" in full:
                        for part in full.split("\n"):
                            _seed(self.random, part)
                    if self._chunks and "\n" in full:
                        out.append((file, lineno, full))
                        return
                    for part in full.split("\n"):
                        part = part.strip()
                        if part:
                            out.append((file, lineno, part))
                    return
                # Slow path: line by line, in order (a value may define parameters or be conditional).
                refs = self._refs[s] if s in self._refs else _parse_refs(s)
                # (each name once: a line may use one name thousands of times, see _MAX_EXPANDED)
                names = list(dict.fromkeys(r[2] for r in refs[0] if r[2] in self.defs)) if refs else []
                looping = [n for n in names if n in self._expanding]
                if looping:
                    why = f"parameter ${looping[0]} is used inside its own value"
                    self.problems.append(Problem(file, lineno, why))
                    return
                self._expanding.extend(names)
                try:
                    for part in new.split("\n"):
                        self._line(part, file, lineno, depth + 1, out)
                finally:
                    del self._expanding[len(self._expanding) - len(names) :]
                return
        if s.startswith("include") and s.split(None, 1)[0] in _INCLUDES:
            self._include(s, file, lineno, depth, out)
            return
        if s.startswith("random_seed"):
            _seed(self.random, s)
        out.append((file, lineno, s))

    def _expansion(self, text: str, file: str, lineno: int) -> Expansion | None:
        """`text` with its references replaced, as an Expansion, when every reference has a plain value and
        the text's template is usable (see Template); else None and the caller takes the ordinary path.

        Equivalent to that path: plain values contain no `$`, so one pass of substitution is the fixed
        point, and the template's lines hold nothing the line-level language would act on.
        """
        key = (text, file, lineno)
        tpl = self._templates.get(key)
        if tpl is None and key not in self._templates:
            # Compile a text the second time it is seen: most texts are expanded once.
            if key not in self._seen_once:
                if len(self._seen_once) < 4096:
                    self._seen_once.add(key)
                return None
            tpl = None
            if len(self._templates) < 4096:
                refs = self._refs[text] if text in self._refs else _parse_refs(text)
                if refs is not None:
                    tpl = Template.compile(text, refs, file, lineno)
                self._templates[key] = tpl
        if tpl is None:
            return None
        defs = self.defs
        plain = self._plain
        values = []
        for name, braced in tpl.keys:
            v = defs.get(name)
            if v is None:
                if not braced:
                    return None
                if name == "_PWD":
                    v = self._dir
                elif name == "_INSTANCE":
                    v = self.instance_id
                else:
                    return None
            ok = plain.get(v)
            if ok is None:
                ok = _PLAIN_VALUE.match(v) is not None
                if len(plain) < 100_000:
                    plain[v] = ok
            if not ok:
                return None
            values.append(v)
        return Expansion(tpl, values)

    def _substitute(self, s: str, file: str, lineno: int) -> str:
        """One pass of parameter replacement; the caller re-runs the line until nothing changes.

        A single left-to-right pass over the references in `s` as written (values inserted are not
        rescanned in this pass), built-ins evaluated in that order.
        """
        if s in self._refs:
            refs = self._refs[s]
        else:
            refs = _parse_refs(s)
            if len(self._refs) < 4096:
                self._refs[s] = refs
        if refs is None:
            return s
        defs = self.defs
        memo = self._last.get(s)
        if memo is not None:
            # The same text with the same definitions as last time: the same result, as the same string
            # object (a `~SEQ ... $BLOCK` row inserts one long value; its hash is then computed once).
            for (_literal, _braced, key, _whole), v in zip(refs[0], memo[0], strict=True):
                if defs.get(key) is not v:
                    break
            else:
                return memo[1]
        out: list[str] = []
        values: list[str | None] = []
        for literal, braced, key, whole in refs[0]:
            out.append(literal)
            d = defs.get(key)
            values.append(d)
            out.append(d if d is not None else self._builtin(key, whole, file, lineno) if braced else whole)
        out.append(refs[1])
        result = _bounded("".join(out), self.problems, file, lineno)
        if None not in values and len(self._last) < 4096:
            # (Only when every reference is a definition: a built-in may differ from one use to the next.)
            self._last[s] = (values, result)
        return result

    def _builtin(self, inner: str, whole: str, file: str, lineno: int) -> str:
        name, _, rest = inner.partition(" ")
        args = rest.split()
        if name == "_PWD":
            return self._dir
        if name == "_INSTANCE":
            return self.instance_id
        if name == "_HASH":
            return "#"
        if name == "_BANG":
            return "!"
        if name == "_ENV":
            if len(args) != 1:
                self.problems.append(Problem(file, lineno, "${_ENV NAME} needs exactly one variable name"))
                return ""
            return self.env.get(args[0], "")
        if name == "_RANDOM":
            lo, hi = 0, 32767
            try:
                if len(args) >= 1:
                    lo = int(args[0])
                if len(args) >= 2:
                    hi = int(args[1])
                if len(args) > 2 or lo < 0 or hi < lo:
                    raise ValueError
            except ValueError:
                self.problems.append(
                    Problem(
                        file,
                        lineno,
                        f"invalid {whole}: expected ${{_RANDOM [MIN [MAX]]}} with 0 <= MIN <= MAX",
                    )
                )
                return "0"
            return str(self.random.randint(lo, hi))
        return whole  # undefined: left as written (keepalived.conf(5))

    # --- ~SEQ / ~LST ----------------------------------------------------------------------------------------
    def _generator(self, s: str, file: str, lineno: int, depth: int, out: list[Any]) -> None:
        m = _GEN.match(s)
        assert m is not None
        kind = m.group(1)
        # Find the closing parenthesis (LST values may hold braces but not parentheses).
        close = s.find(")", m.end())
        if close < 0:
            self.problems.append(Problem(file, lineno, f"~{kind}( is missing its closing ')'"))
            return
        spec = s[m.end() : close]
        rest = s[close + 1 :]
        if kind == "LST":
            parsed = self._parse_lst(spec, file, lineno)
        else:
            parsed = self._parse_seq(kind, spec, file, lineno)
        if parsed is None:
            return
        names, rows = parsed
        saved = {n: self.defs.get(n) for n in names}
        try:
            for row in _capped(rows, self, file, lineno, kind):
                for n, v in zip(names, row, strict=True):
                    self.defs[n] = v
                self._line(rest, file, lineno, depth + 1, out)
        finally:
            # keepalived.conf(5): do not rely on a ~SEQ variable after its line; we restore the old value.
            for n, old in saved.items():
                if old is None:
                    self.defs.pop(n, None)
                else:
                    self.defs[n] = old

    def _parse_seq(self, kind: str, spec: str, file: str, lineno: int):
        parts = [p.strip() for p in spec.split(",")]
        usage = f"~{kind}(var, [start,] [step,] end)"
        if len(parts) < 2 or len(parts) > 4:
            self.problems.append(Problem(file, lineno, f"~{kind}({spec}): expected {usage}"))
            return None
        var = parts[0]
        if not _NAME.match(var):
            self.problems.append(Problem(file, lineno, f"~{kind}: invalid variable name '{var}'"))
            return None
        try:
            nums = [int(p, 0) for p in parts[1:]]
        except ValueError:
            self.problems.append(
                Problem(file, lineno, f"~{kind}({spec}): start, step and end must be integers")
            )
            return None
        if len(nums) == 1:
            end = nums[0]
            start = 1 if end > 0 else -1
            step = 1 if end >= start else -1
        elif len(nums) == 2:
            start, end = nums
            step = 1 if end >= start else -1
        else:
            start, step, end = nums
        if step == 0 or (step > 0 and start > end) or (step < 0 and start < end):
            self.problems.append(Problem(file, lineno, f"~{kind}({spec}): the step never reaches the end"))
            return None
        fmt = "{:x}" if kind == "SEQx" else "{:d}"
        stop = end + (1 if step > 0 else -1)
        return [var], ((fmt.format(v),) for v in range(start, stop, step))  # (lazy: see _MAX_ROWS)

    def _parse_lst(self, spec: str, file: str, lineno: int):
        spec = spec.strip()
        groups: list[list[str]] = []
        i, n = 0, len(spec)
        while i < n:
            if spec[i] in ", \t":
                i += 1
                continue
            if spec[i] == "{":
                j = spec.find("}", i)
                if j < 0:
                    self.problems.append(Problem(file, lineno, f"~LST({spec}): unbalanced '{{'"))
                    return None
                groups.append([p.strip() for p in spec[i + 1 : j].split(",")])
                i = j + 1
            else:
                j = spec.find(",", i)
                j = n if j < 0 else j
                groups.append([spec[i:j].strip()])
                i = j
        if len(groups) < 2:
            self.problems.append(Problem(file, lineno, "~LST needs a variable and at least one value"))
            return None
        names = groups[0]
        for v in names:
            if not _NAME.match(v):
                self.problems.append(Problem(file, lineno, f"~LST: invalid variable name '{v}'"))
                return None
        for g in groups[1:]:
            if len(g) != len(names):
                self.problems.append(
                    Problem(
                        file,
                        lineno,
                        f"~LST: value {{{', '.join(g)}}} does not match {len(names)} variable(s)",
                    )
                )
                return None
        return names, [tuple(g) for g in groups[1:]]

    # --- include ------------------------------------------------------------------------------------------
    def _include(self, s: str, file: str, lineno: int, depth: int, out: list[Any]) -> None:
        words = s.split()
        if len(words) != 2:
            self.problems.append(
                Problem(file, lineno, f"{words[0]} expects exactly one file name or pattern")
            )
            return
        pattern = words[1].strip("\"'")
        paths: list[str] = []
        for p in brace_expand(pattern):
            full = p if os.path.isabs(p) else os.path.join(self._dir, p)
            if glob.has_magic(full):
                paths.extend(sorted(glob.glob(full)))
            elif os.path.exists(full):
                paths.append(full)
            else:
                # keepalived only logs "Config files missing" here; a file that is not there cannot be meant.
                self.problems.append(Problem(file, lineno, f"include: no such file {full}"))
        if len(self._stack) > _MAX_DEPTH:
            self.problems.append(Problem(file, lineno, "includes nested too deeply"))
            return
        for p in paths:
            if os.path.isdir(p):
                continue
            self._read_file(p, (file, lineno), out)
