"""no_accept (RFC 5798 6.1 Accept_Mode False): a master that does not own the addresses drops packets to them.

RFC 5798 6.4.3: a master "MUST NOT accept packets addressed to the IPvX address(es) associated with the
virtual router if it is not the IPvX address owner", unless Accept_Mode is True; and even then it "MUST NOT
drop" Neighbor Solicitations and Advertisements (docs/rfc-checklist.md#accept-mode). keepalived does it with
nftables or iptables; fastvrrp uses one nftables table, `inet fastvrrp`, with two address sets filled while
such an instance holds its addresses (IPv4 VIPs: ARP is not IP, so it is untouched; IPv6 VIPs: every ICMPv6
type but NS/NA is dropped).

The `nft` command runs synchronously: call these from the netlink worker thread (`NetlinkWorker.call`), never
on the event loop. The element is added *before* the address and removed *after* it, so there is no moment
in which the VIP exists and answers.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from collections.abc import Iterable

TABLE = "fastvrrp"

_SETUP = f"""
table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
    set vips4 {{ type ipv4_addr; }}
    set vips6 {{ type ipv6_addr; }}
    chain input {{
        type filter hook input priority filter; policy accept;
        ip daddr @vips4 counter drop
        ip6 daddr @vips6 icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert }} accept
        ip6 daddr @vips6 counter drop
    }}
}}
"""


class NoAcceptError(RuntimeError):
    pass


def available() -> str | None:
    """None if `nft` can be used, else why not."""
    if shutil.which("nft") is None:
        return "the nft command (Debian package nftables) is not installed"
    return None


def _nft(script: str) -> None:
    p = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True, timeout=10)
    if p.returncode != 0:
        raise NoAcceptError(p.stderr.strip() or f"nft exited with {p.returncode}")


def setup() -> None:
    """Create (or recreate, empty) the table; a table left by a crashed run is replaced."""
    _nft(_SETUP)


def teardown() -> None:
    _nft(f"table inet {TABLE}\ndelete table inet {TABLE}\n")


def _elements(addresses: Iterable[str]) -> tuple[list[str], list[str]]:
    v4: list[str] = []
    v6: list[str] = []
    for a in addresses:
        ip = ipaddress.ip_address(a)
        (v4 if ip.version == 4 else v6).append(str(ip))
    return v4, v6


def _change(verb: str, addresses: Iterable[str]) -> None:
    v4, v6 = _elements(addresses)
    lines = []
    for name, items in (("vips4", v4), ("vips6", v6)):
        if items:
            lines.append(f"{verb} element inet {TABLE} {name} {{ {', '.join(items)} }}")
    if lines:
        if verb == "delete":
            # Deleting an absent element is an error in nft; adding it first makes "make it so" repeatable.
            lines = [ln.replace("delete element", "add element") for ln in lines] + lines
        _nft("\n".join(lines) + "\n")


def drop(addresses: Iterable[str]) -> None:
    """Start dropping traffic to these addresses (before they are added to an interface)."""
    _change("add", addresses)


def undrop(addresses: Iterable[str]) -> None:
    """Stop dropping (after the addresses were removed)."""
    _change("delete", addresses)
