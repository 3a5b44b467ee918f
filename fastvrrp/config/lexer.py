"""Words and blocks of keepalived.conf: comments, quoting, escapes and `{ }` nesting.

The preprocessor (preprocess.py) hands us finished lines, each with the (file, line) it came from; here a
line becomes words and the words become a tree of `Node`s. keepalived's grammar is line based: the first
word of a line is a keyword and the rest are its arguments; a `{` opens a block that belongs to the
statement before it (the brace may be glued to a word or stand on its own line), and `}` closes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .model import Problem

# Escapes recognised inside quotes, as in the shell (keepalived.conf(5) "Quoted strings").
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_OCTAL = re.compile(r"[0-7]{1,3}")
_HEX = re.compile(r"[0-9A-Fa-f]+")


def strip_comment(text: str) -> str:
    """Cut `text` at the first `#` or `!` outside quotes (comments may follow tokens, even glued)."""
    if "#" not in text and "!" not in text:
        return text
    quote = ""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c == '"' or c == "'":
            quote = c
        elif c == "#" or c == "!":
            return text[:i]
        i += 1
    return text


def _escape(text: str, i: int) -> tuple[str, int]:
    """Decode the escape whose backslash is at text[i]; return (characters, index after it)."""
    if i + 1 >= len(text):
        return "\\", i + 1
    c = text[i + 1]
    if c in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[c], i + 2
    if c in "01234567":
        m = _OCTAL.match(text, i + 1)
        assert m is not None
        return chr(int(m.group(), 8) & 0xFF), m.end()
    if c == "x":
        m = _HEX.match(text, i + 2)
        if m:
            return chr(int(m.group(), 16) & 0xFF), m.end()
        return "x", i + 2
    if c == "c" and i + 2 < len(text):
        return chr(ord(text[i + 2].upper()) ^ 0x40), i + 3
    return c, i + 2


def split_words(text: str, file: str, line: int, problems: list[Problem]) -> list[str]:
    """Split one (comment-free) line into words; `{` and `}` outside quotes are words of their own.

    Quotes (" or ') may start or end inside a word; the quote characters are removed and what they
    enclose (spaces included) joins the word. `${NAME}` left undefined keeps its braces.
    """
    if '"' not in text and "'" not in text and "${" not in text:
        if "{" in text or "}" in text:
            text = text.replace("{", " { ").replace("}", " } ")
        return text.split()
    words: list[str] = []
    cur: list[str] = []
    have = False  # a word is open (possibly empty: "" is a word)
    quote = ""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
                i += 1
            elif c == "\\":
                s, i = _escape(text, i)
                cur.append(s)
            else:
                cur.append(c)
                i += 1
            continue
        if c == '"' or c == "'":
            quote = c
            have = True
            i += 1
        elif c.isspace():
            if have:
                words.append("".join(cur))
                cur, have = [], False
            i += 1
        elif c == "$" and text.startswith("${", i):
            j = text.find("}", i)
            j = n if j < 0 else j + 1
            cur.append(text[i:j])
            have = True
            i = j
        elif c == "{" or c == "}":
            if have:
                words.append("".join(cur))
                cur, have = [], False
            words.append(c)
            i += 1
        else:
            cur.append(c)
            have = True
            i += 1
    if quote:
        problems.append(Problem(file, line, f"unterminated {quote} quote"))
    if have:
        words.append("".join(cur))
    return words


class Node:
    """One statement: `keyword args...` and, if a `{ }` followed it, its child statements."""

    __slots__ = ("kw", "args", "file", "line", "children")

    def __init__(self, kw: str, args: list[str], file: str, line: int) -> None:
        self.kw = kw
        self.args = args
        self.file = file
        self.line = line
        self.children: list[Node] | None = None

    @property
    def where(self) -> tuple[str, int]:
        return self.file, self.line

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        kids = "" if self.children is None else f" {{{len(self.children)}}}"
        return f"Node({self.kw!r} {self.args!r} @{self.file}:{self.line}{kids})"


def build_tree(lines, problems: list[Problem]) -> list[Node]:
    """Turn (file, line, text) triples into the statement tree; brace errors become problems.

    The list of top-level statements of iter_tree(lines, problems).
    """
    return list(iter_tree(lines, problems))


def iter_tree(lines, problems: list[Problem]) -> Iterator[Node]:
    """The top-level statements of the tree build_tree makes, each yielded once it is complete (a later
    top-level statement has started: nothing can attach to an earlier one any more), so that a reader can
    take them while they are fresh and drop them early; brace errors become problems.

    A statement runs from its keyword to the end of its line, or to a `{` / `}` on that line. Words
    after a `{` on the same line start the first statement of the block; words after `}` start a new
    statement in the enclosing block. A text may hold several lines joined with "\n" (one parameter
    expansion, see Preprocessor.read_chunks); each is a line of its own at the same location. A text may
    also be an `Expansion` (a compiled template and its values, see preprocess.Template): its lines come
    already split into words.
    """
    root: list[Node] = []
    stack: list[tuple[list[Node], Node | None]] = []  # (enclosing list, owner of the open block)
    block = root
    last: Node | None = None  # the statement a following `{` attaches to
    for file, lineno, text in lines:
        if len(root) > 1:
            # Every top-level statement but the last is complete: a `{` can only attach to the last
            # statement, and an open block belongs to the last one too.
            yield from root[:-1]
            del root[:-1]
        if text.__class__ is not str:
            # A template expansion: per line (shape, shared node, words), shapes as below.
            tpl = text.template
            if tpl.build is not None:  # blocks balanced within the text: its statements made directly
                last = tpl.build(file, lineno, block, *text.values)
                continue
            for (shape, shared), words in zip(tpl.shapes, tpl.fill(*text.values), strict=True):
                if shape == 0:  # `keyword args...`
                    if shared is None:
                        last = Node(words[0], words[1], file, lineno)
                    else:
                        last = shared  # a constant line no later `{` can attach to: one node serves all
                    block.append(last)
                elif shape == 1:  # `keyword args... {`
                    opened = Node(words[0], words[1], file, lineno)
                    block.append(opened)
                    opened.children = []
                    stack.append((block, opened))
                    block = opened.children
                    last = None
                elif shape == 2 and stack:  # a lone `}`
                    block, _owner = stack.pop()
                    last = None
                else:
                    block, last = _words(words, file, lineno, block, stack, last, problems)
            continue
        # Fast path: no quotes and no ${...}, so a line's words are what str.split gives once the braces
        # stand apart (split_words does the same for such text).
        plain = '"' not in text and "'" not in text and "${" not in text
        for part in text.split("\n") if "\n" in text else (text,):
            if plain:
                if "{" not in part and "}" not in part:
                    # The common line: `keyword args...`, no block.
                    words = part.split()
                    if words:
                        last = Node(words[0], words[1:], file, lineno)
                        block.append(last)
                    continue
                words = part.replace("{", " { ").replace("}", " } ").split()
                if len(words) > 1 and words[-1] == "{" and part.count("{") == 1 and "}" not in part:
                    # `keyword args... {`: a statement opening its block.
                    opened = Node(words[0], words[1:-1], file, lineno)
                    block.append(opened)
                    opened.children = []
                    stack.append((block, opened))
                    block = opened.children
                    last = None
                    continue
                if len(words) == 1 and words[0] == "}" and stack:  # a lone `}` closing a block
                    block, _owner = stack.pop()
                    last = None
                    continue
            else:
                words = split_words(part, file, lineno, problems)
            block, last = _words(words, file, lineno, block, stack, last, problems)
            # A statement ends with its line; a `{` on the next line may still open its block.
    for _enclosing, unclosed in stack:
        assert unclosed is not None
        problems.append(
            Problem(unclosed.file, unclosed.line, f"'{unclosed.kw}' block is not closed (missing '}}')")
        )
    yield from root


def line_shape(words: list[str]) -> int:
    """How build_tree's fast paths see a line of words: 0 `keyword args...`, 1 `keyword args... {`,
    2 a lone `}`, 3 anything else (the general word loop)."""
    nopen = words.count("{")
    nclose = words.count("}")
    if not nopen and not nclose:
        return 0 if words else 3
    if len(words) > 1 and words[-1] == "{" and nopen == 1 and not nclose:
        return 1
    if len(words) == 1 and nclose == 1:
        return 2
    return 3


def _words(
    words: list[str],
    file: str,
    lineno: int,
    block: list[Node],
    stack: list[tuple[list[Node], Node | None]],
    last: Node | None,
    problems: list[Problem],
) -> tuple[list[Node], Node | None]:
    """The general case of one line's words: braces anywhere; returns the new (block, last)."""
    cur: Node | None = None
    for w in words:
        if w == "{":
            owner = cur or last
            if owner is None or owner.children is not None:
                problems.append(Problem(file, lineno, "'{' without a keyword before it"))
                owner = Node("{", [], file, lineno)
                block.append(owner)
            owner.children = []
            stack.append((block, owner))
            block = owner.children
            cur = last = None
        elif w == "}":
            if not stack:
                problems.append(Problem(file, lineno, "unmatched '}'"))
                cur = last = None
                continue
            block, _owner = stack.pop()
            cur = last = None
        elif cur is None:
            cur = Node(w, [], file, lineno)
            block.append(cur)
            last = cur
        else:
            cur.args.append(w)
    return block, last
