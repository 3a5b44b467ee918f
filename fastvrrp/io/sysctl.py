"""Kernel settings the daemon changes, and puts back on exit (docs/kernel-notes.md#vmac-sysctls).

Paths are relative to /proc/sys in slash form (`net/ipv4/conf/eth0/arp_ignore`): the dotted form is ambiguous
for interface names containing dots (VMAC interfaces such as `vrrp4.51`). /proc/sys/net belongs to the network
namespace of the thread that opens it, so with `netns=` a short thread enters the namespace first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from fastvrrp.io.nsexec import call_in_netns

PROC_SYS = "/proc/sys"


def conf_path(family: int, ifname: str, knob: str) -> str:
    """net/ipv4/conf/<if>/<knob> (family 4) or net/ipv6/conf/<if>/<knob> (family 6)."""
    if family not in (4, 6) or "/" in ifname or ifname in ("", ".", ".."):
        raise ValueError(f"bad family {family} or interface name {ifname!r}")
    return f"net/ipv{family}/conf/{ifname}/{knob}"


def _full(path: str) -> str:
    rel = os.path.normpath(path.lstrip("/"))
    if rel.startswith("proc/sys/"):
        rel = rel[len("proc/sys/") :]
    if rel.startswith("..") or not rel.startswith("net/"):
        raise ValueError(f"not a network sysctl: {path!r}")
    return os.path.join(PROC_SYS, rel)


def _read(path: str) -> str:
    with open(_full(path)) as f:
        return f.read().strip()


def _write(path: str, value: str) -> None:
    with open(_full(path), "w") as f:
        f.write(value)


def get_sysctl(path: str, netns: str | None = None) -> str:
    return call_in_netns(netns, _read, path)


def set_sysctl(path: str, value: int | str, netns: str | None = None) -> str:
    """Write `value`; return the previous value (as the kernel printed it) so it can be restored."""

    def swap() -> str:
        old = _read(path)
        if old != str(value):
            _write(path, str(value))
        return old

    return call_in_netns(netns, swap)


def vmac_settings(parent: str, vmac: str) -> list[tuple[str, int]]:
    """What a VMAC interface and its parent need (keepalived's list, docs/kernel-notes.md#vmac-sysctls).

    Apply before bringing the VMAC up (addr_gen_mode only acts on the next up). rp_filter is effectively
    max(all, interface): a non-zero net/ipv4/conf/all/rp_filter still filters on the VMAC.
    """
    return [
        # The parent must not answer ARP for VIPs living on the macvlan with its own MAC (ARP flux).
        (conf_path(4, parent, "arp_ignore"), 1),
        (conf_path(4, parent, "arp_filter"), 1),
        (conf_path(4, vmac, "arp_ignore"), 1),
        (conf_path(4, vmac, "accept_local"), 1),
        (conf_path(4, vmac, "rp_filter"), 0),
        # RFC 5798 7.4: no EUI-64 link-local made from the VMAC.
        (conf_path(6, vmac, "addr_gen_mode"), 1),
    ]


def vip_settings(ifname: str) -> list[tuple[str, int]]:
    """For VIPs on a plain interface: a VIP in the primary's subnet is a secondary and would vanish with the
    primary unless promoted; IPv6 addresses survive a link flap only with keep_addr_on_down."""
    return [
        (conf_path(4, ifname, "promote_secondaries"), 1),
        (conf_path(6, ifname, "keep_addr_on_down"), 1),
    ]


@dataclass
class SysctlChanges:
    """Settings applied by this run, restored in reverse order by `restore()` (on shutdown)."""

    netns: str | None = None
    saved: list[tuple[str, str]] = field(default_factory=list)  # (path, value before our first change)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, message) of failed writes

    def apply(self, path: str, value: int | str) -> bool:
        """Set one value, remembering the original the first time; False (and an error entry) on failure."""
        try:
            old = set_sysctl(path, value, self.netns)
        except (OSError, ValueError) as exc:
            self.errors.append((path, str(exc)))
            return False
        if all(p != path for p, _ in self.saved):
            self.saved.append((path, old))
        return True

    def apply_all(self, settings: list[tuple[str, int]]) -> bool:
        return all([self.apply(p, v) for p, v in settings])

    def restore(self) -> None:
        """Put every changed value back; an interface that is gone by now is skipped."""
        while self.saved:
            path, old = self.saved.pop()
            try:
                set_sysctl(path, old, self.netns)
            except FileNotFoundError:
                pass
            except OSError as exc:
                self.errors.append((path, str(exc)))
