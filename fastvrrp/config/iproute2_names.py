"""The names iproute2 (and keepalived, which reads the same files) gives to routing numbers: tables,
protocols, scopes, realms and DS fields. Each file under /etc/iproute2 (and its .d/*.conf directory) holds
`NUMBER NAME` lines; the kernel's own names are built in, so a machine without the files still knows them."""

from __future__ import annotations

import os
from functools import cache

IPROUTE2_DIR = "/etc/iproute2"

_BUILT_IN: dict[str, dict[str, int]] = {
    "rt_tables": {"unspec": 0, "default": 253, "main": 254, "local": 255},
    # linux/rtnetlink.h RTPROT_*
    "rt_protos": {
        "unspec": 0,
        "redirect": 1,
        "kernel": 2,
        "boot": 3,
        "static": 4,
        "gated": 8,
        "ra": 9,
        "mrt": 10,
        "zebra": 11,
        "bird": 12,
        "dnrouted": 13,
        "xorp": 14,
        "ntk": 15,
        "dhcp": 16,
        "mrouted": 17,
        "keepalived": 18,
        "babel": 42,
        "openr": 99,
        "bgp": 186,
        "isis": 187,
        "ospf": 188,
        "rip": 189,
        "eigrp": 192,
    },
    "rt_scopes": {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255},
    "rt_realms": {"cosmos": 0},
    "rt_dsfield": {},
}


def _read_pairs(path: str, into: dict[str, int]) -> None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    for line in lines:
        words = line.split("#", 1)[0].split()
        if len(words) >= 2:
            try:
                into[words[1]] = int(words[0], 0)
            except ValueError:
                continue


@cache
def names(kind: str) -> dict[str, int]:
    """NAME -> number for one of rt_tables, rt_protos, rt_scopes, rt_realms, rt_dsfield."""
    out = dict(_BUILT_IN[kind])
    _read_pairs(os.path.join(IPROUTE2_DIR, kind), out)
    d = os.path.join(IPROUTE2_DIR, kind + ".d")
    try:
        extra = sorted(x for x in os.listdir(d) if x.endswith(".conf"))
    except OSError:
        extra = []
    for x in extra:
        _read_pairs(os.path.join(d, x), out)
    return out


def number(kind: str, word: str, hi: int) -> int | None:
    """A name from the file, or a number 0..hi (decimal or 0x hex); None if it is neither."""
    v = names(kind).get(word)
    if v is not None:
        return v
    try:
        v = int(word, 0)
    except ValueError:
        return None
    return v if 0 <= v <= hi else None
