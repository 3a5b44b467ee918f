"""A fastvrrp daemon with one fault put in on purpose, to show that a chaos test's verdict fails when the
property it checks is broken: `python -m fastvrrp.lab.faulty FAULT [fastvrrp arguments ...]` (Router.main).

Faults:
  no-rx-drain  a backup's Master_Down deadline fires without the engine first reading what waits in the
               receive sockets (Engine.run(drain=False)): an advert that arrived while the loop was busy
               elsewhere does not count before the timer does (tests/chaos/test_starvation.py). The kernel
               fast path is off (--no-kernel-fast-path): its adverts never wait in a socket.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from fastvrrp import _engine
from fastvrrp.cli import main


class NoDrainEngine(_engine.Engine):
    def run(self, now_us: int, drain: bool = True) -> list:
        return super().run(now_us, False)


FAULTS = {"no-rx-drain": NoDrainEngine}
EXTRA_ARGS = {"no-rx-drain": ["--no-kernel-fast-path"]}


def run(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in FAULTS:
        raise SystemExit(f"usage: python -m fastvrrp.lab.faulty {{{','.join(FAULTS)}}} [fastvrrp arguments]")
    _engine.Engine = FAULTS[argv[0]]  # type: ignore[misc]  # the daemon builds its engine from the module
    return main([*argv[1:], *EXTRA_ARGS.get(argv[0], [])])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
