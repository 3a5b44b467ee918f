"""Random loss of VRRP packets in a namespace, and what the RFC makes of it
(docs/rfc-checklist.md#advert-copies).

`RandomLoss` drops a share of the VRRP packets a namespace receives with nftables (`numgen random mod 100 <
P`, before any socket sees them) and counts what it dropped and let through. `takeover_rate` is the RFC's
expectation: a backup takes over when Master_Down_Interval (3 x Advertisement_Interval + Skew_Time) passes
without an advert, i.e. after 3 adverts in a row are lost; with N copies of each advert sent, an advert is
lost only when all N copies are. `isolated_lans` gives each pair of routers its own segment, so that
side-by-side runs do not hear each other.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from .namespaces import Lab
from .testbed import _STATE_RE, Lan, Router

TABLE = "fastvrrp_loss"


@dataclass
class RandomLoss:
    """`percent` % of the VRRP packets (IP protocol 112, IPv4 and IPv6) arriving in namespace `ns` dropped."""

    lab: Lab
    ns: str
    percent: int

    def __post_init__(self) -> None:
        if not 0 <= self.percent <= 100:
            raise ValueError("percent must be 0..100")
        self.lab.sh(self.ns, f"nft add table inet {TABLE}")
        self.lab.sh(self.ns, f"nft add chain inet {TABLE} input {{ type filter hook input priority -300 ; }}")
        self.lab.sh(
            self.ns,
            f"nft add rule inet {TABLE} input meta l4proto 112 numgen random mod 100 < {self.percent} "
            "counter drop",
        )
        self.lab.sh(self.ns, f"nft add rule inet {TABLE} input meta l4proto 112 counter accept")

    def counters(self) -> tuple[int, int]:
        """(dropped, passed) VRRP packets so far."""
        text = self.lab.sh(self.ns, f"nft list chain inet {TABLE} input")
        counts = [int(m) for m in re.findall(r"counter packets (\d+)", text)]
        if len(counts) != 2:
            raise RuntimeError(f"unexpected nft output:\n{text}")
        return counts[0], counts[1]

    def remove(self) -> None:
        self.lab.sh(self.ns, f"nft delete table inet {TABLE}", check=False)


def takeover_rate(loss: float, copies: int = 1, adverts_missed: int = 3) -> float:
    """Expected takeovers per advert the master sends, on independent random loss of each packet: a takeover
    starts at an advert that arrives followed by `adverts_missed` adverts that do not (all their copies
    lost). The skew is shorter than an interval, so the copies of the last missed advert (sent a few ms
    after it) also fall inside Master_Down_Interval: an advert counts as lost only when every copy is."""
    q = loss**copies
    return (1 - q) * q**adverts_missed


def poisson_upper(mean: float, tail: float = 1e-4) -> int:
    """The least k with P(X > k) < tail for X ~ Poisson(mean): a bound a correct run exceeds rarely."""
    k, term = 0, math.exp(-mean)
    cdf = term
    while 1 - cdf >= tail:
        k += 1
        term *= mean / k
        cdf += term
    return k


def takeovers(router: Router, since: int = 0) -> int:
    """`Entering MASTER STATE` lines (any instance) in the router's log after character `since`."""
    return sum(1 for m in _STATE_RE.finditer(router.log()[since:]) if m["state"] == "MASTER")


@contextlib.contextmanager
def isolated_lans(lab: Lab, count: int, routers: int = 2) -> Iterator[list[Lan]]:
    """`count` Lans, each on a bridge of its own in namespaces of its own (a Lab under `lab`'s prefix, removed
    on exit with every process started in it)."""
    subs = [Lab(prefix=f"{lab.prefix}s{i}-", workdir=f"{lab.workdir}/s{i}") for i in range(count)]
    try:
        yield [Lan(sub, routers=routers, client=False) for sub in subs]
    finally:
        for sub in subs:
            sub.close()
