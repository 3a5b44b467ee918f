"""Print the state diagram of the core from its transition table: `python -m fastvrrp.core.diagram [dot]`.

Mermaid by default (renders on GitHub), Graphviz dot with the argument `dot`.
"""

from __future__ import annotations

import sys

from .instance import TRANSITIONS


def mermaid() -> str:
    lines = ["stateDiagram-v2", "    [*] --> INIT"]
    for t in TRANSITIONS:
        label = f"{t.trigger}: {t.guard} [{t.rule}]" if t.guard else f"{t.trigger} [{t.rule}]"
        lines.append(f"    {t.src.name} --> {t.dst.name}: {label.replace(':', ' -', 1).replace(':', '')}")
    return "\n".join(lines) + "\n"


def dot() -> str:
    lines = ["digraph vrrp {", "    rankdir=LR;"]
    for t in TRANSITIONS:
        label = f"{t.trigger}\\n{t.guard}\\n{t.rule}".replace('"', "'")
        lines.append(f'    {t.src.name} -> {t.dst.name} [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    sys.stdout.write(dot() if argv[1:2] == ["dot"] else mermaid())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
