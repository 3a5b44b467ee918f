"""`fastvrrp who-has VIP [-i IFACE] [--timeout S]`: which router holds a virtual address, seen from the wire.

It listens on the interface (AF_PACKET, so the sender's MAC comes with each frame) for VRRP adverts, IPv4
and IPv6, that carry the VIP in their address list (RFC 5798 5.2.9). Only a master sends adverts (RFC 5798
6.4.3), so each distinct sender heard is a router claiming the VIP; two of them is a split brain. For an
IPv4 VIP it also sends one ARP request for that VIP (an IPv6 VIP: one neighbour solicitation) and reports the
MAC(s) that answered, and what the local neighbour table says, flagging answers that do not come from the
advertising router (two holders of one address).

The default timeout, 3.5 s, covers a 1 s advert interval three times over plus slack; once an advert is
heard, listening goes on for 1.5 of its intervals so a second master can show itself, then stops early.
Exit status: 0 one consistent holder, 1 nothing heard, 2 a conflict, 3 a usage or system error.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fastvrrp import _wire

ETH_P_ALL = 0x0003
ETH_P_IP, ETH_P_ARP, ETH_P_IPV6, ETH_P_8021Q = 0x0800, 0x0806, 0x86DD, 0x8100
PACKET_OUTGOING = 4
IPPROTO_VRRP = 112
EXIT_FOUND, EXIT_NONE, EXIT_CONFLICT, EXIT_ERROR = 0, 1, 2, 3
DEFAULT_TIMEOUT_S = 3.5


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


@dataclass
class Advertiser:
    """One router heard advertising (source address, MAC, VRID); the last advert's values."""

    address: str
    mac: str
    vrid: int
    priority: int
    interval_ms: int
    version: int
    addresses: list[str]
    adverts: int = 0
    first_s: float = 0.0  # seconds after listening started


@dataclass
class Result:
    vip: str | None
    iface: str
    listened_s: float = 0.0
    advertisers: list[Advertiser] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)  # MACs that answered our ARP/NS for the VIP
    neighbour: str | None = None  # the local neighbour table's entry: "MAC STATE"
    invalid: int = 0  # VRRP packets heard that failed validation (RFC 5798 7.1)
    problems: list[str] = field(default_factory=list)

    def exit_code(self) -> int:
        if self.problems:
            return EXIT_CONFLICT
        return EXIT_FOUND if self.advertisers or self.resolved else EXIT_NONE


# --- frames -----------------------------------------------------------------------------------------------


def arp_request(src_mac: bytes, src_ip: bytes, target_ip: bytes) -> bytes:
    """One broadcast ARP who-has (RFC 826); src_ip 0.0.0.0 makes it a probe (RFC 5227) if we have none."""
    eth = b"\xff" * 6 + src_mac + struct.pack("!H", ETH_P_ARP)
    return eth + struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 1, src_mac, src_ip, b"\0" * 6, target_ip)


def _solicited_node(target: bytes) -> bytes:
    return bytes.fromhex("ff02" + "00" * 9 + "01ff") + target[13:]


def neighbour_solicitation(src_mac: bytes, target: bytes) -> bytes:
    """ICMPv6 NS body (RFC 4861 4.3) with our link-layer address option; the kernel fills the checksum."""
    return struct.pack("!BBHI16s", 135, 0, 0, 0, target) + bytes([1, 1]) + src_mac


def parse_frame(frame: bytes, outgoing: bool) -> tuple[str, Any] | None:
    """('vrrp', (mac, Packet)) | ('arp', (mac, sender_ip)) | ('na', (mac, target)) | None."""
    if len(frame) < 14 or outgoing:
        return None
    src_mac = frame[6:12]
    etype = int.from_bytes(frame[12:14], "big")
    off = 14
    if etype == ETH_P_8021Q and len(frame) >= 18:
        etype = int.from_bytes(frame[16:18], "big")
        off = 18
    body = frame[off:]
    if etype == ETH_P_IP and len(body) >= 20 and body[9] == IPPROTO_VRRP:
        total = int.from_bytes(body[2:4], "big")
        return "vrrp", (src_mac, _wire.decode_ipv4(body[: total or len(body)]))
    if etype == ETH_P_IPV6 and len(body) >= 40:
        plen = int.from_bytes(body[4:6], "big")
        payload = body[40 : 40 + plen]
        if body[6] == IPPROTO_VRRP:  # no extension headers on adverts (RFC 5798 5.1.2)
            return "vrrp", (src_mac, _wire.decode_ipv6(payload, body[8:24], body[24:40], body[7]))
        if body[6] == 58 and len(payload) >= 24 and payload[0] == 136:  # neighbour advertisement
            mac = src_mac
            opts = payload[24:]
            while len(opts) >= 8 and opts[1]:
                if opts[0] == 2:  # target link-layer address (RFC 4861 4.6.1)
                    mac = opts[2:8]
                opts = opts[opts[1] * 8 :]
            return "na", (mac, payload[8:24])
    if etype == ETH_P_ARP and len(body) >= 28 and body[6:8] == b"\x00\x02":  # ARP reply
        return "arp", (body[8:14], body[14:18])
    return None


# --- the local system -------------------------------------------------------------------------------------


def _route_iface(vip: str) -> str | None:
    try:
        out = subprocess.run(["ip", "-j", "route", "get", vip], capture_output=True, text=True, timeout=5)
        routes = json.loads(out.stdout or "[]")
        return routes[0].get("dev") if routes else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def _iface_info(ifname: str) -> tuple[int, bytes, bytes | None]:
    """(ifindex, MAC, a primary IPv4 address or None)."""
    ifindex = socket.if_nametoindex(ifname)
    with open(f"/sys/class/net/{ifname}/address") as f:
        mac = bytes.fromhex(f.read().strip().replace(":", ""))
    v4 = None
    try:
        out = subprocess.run(
            ["ip", "-j", "-4", "addr", "show", "dev", ifname], capture_output=True, text=True
        )
        for link in json.loads(out.stdout or "[]"):
            for a in link.get("addr_info", []):
                if a.get("family") == "inet" and v4 is None:
                    v4 = socket.inet_aton(a["local"])
    except (OSError, ValueError, KeyError):
        pass
    return ifindex, mac, v4


def _neighbour(vip: str, ifname: str) -> str | None:
    try:
        out = subprocess.run(
            ["ip", "-j", "neigh", "show", "to", vip, "dev", ifname], capture_output=True, text=True, timeout=5
        )
        for n in json.loads(out.stdout or "[]"):
            if n.get("lladdr"):
                return f"{n['lladdr']} {','.join(n.get('state', []))}".strip()
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass
    return None


# --- listening --------------------------------------------------------------------------------------------


def listen(
    vip: str | None, ifname: str, timeout_s: float = DEFAULT_TIMEOUT_S, resolve: bool = True
) -> Result:
    """Listen on `ifname` for up to timeout_s; send one ARP/NS for the VIP; return what was seen."""
    res = Result(vip, ifname)
    target = ipaddress.ip_address(vip) if vip else None
    packed = target.packed if target is not None else None
    ifindex, mac, v4 = _iface_info(ifname)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # nothing until bound to ifname below
    seen: dict[tuple[str, str, int], Advertiser] = {}
    resolved: list[str] = []
    try:
        sock.bind((ifname, ETH_P_ALL))
        sock.setblocking(False)
        start = time.monotonic()
        deadline = start + timeout_s
        if resolve and target is not None:
            _solicit(sock, ifname, ifindex, mac, v4, target)
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            r, _, _ = select.select([sock], [], [], deadline - now)
            if not r:
                continue
            while True:
                try:
                    frame, addr = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                parsed = parse_frame(frame, addr[2] == PACKET_OUTGOING)
                if parsed is None:
                    continue
                kind, (src_mac, val) = parsed
                if kind == "vrrp":
                    pkt = val
                    if not pkt.valid:
                        res.invalid += 1
                        continue
                    if packed is not None and packed not in pkt.addresses:
                        continue
                    key = (pkt.src_text, mac_text(src_mac), pkt.vrid)
                    adv = seen.get(key)
                    if adv is None:
                        adv = seen[key] = Advertiser(
                            address=pkt.src_text,
                            mac=mac_text(src_mac),
                            vrid=pkt.vrid,
                            priority=pkt.priority,
                            interval_ms=pkt.adver_int_ms,
                            version=pkt.version,
                            addresses=list(pkt.address_texts),
                            first_s=round(time.monotonic() - start, 3),
                        )
                        if vip is not None:
                            # Give a second master 1.5 intervals to show itself, then stop early.
                            deadline = min(
                                deadline, time.monotonic() + max(0.3, 1.5 * pkt.adver_int_ms / 1000)
                            )
                    adv.adverts += 1
                    adv.priority, adv.interval_ms = pkt.priority, pkt.adver_int_ms
                elif packed is not None and val == packed:  # ARP reply or NA for the VIP
                    m = mac_text(src_mac)
                    if m not in resolved:
                        resolved.append(m)
        res.listened_s = round(time.monotonic() - start, 3)
    finally:
        sock.close()
    res.advertisers = sorted(seen.values(), key=lambda a: (a.vrid, a.address))
    res.resolved = resolved
    if vip is not None:
        res.neighbour = _neighbour(vip, ifname)
    _judge(res)
    return res


def _solicit(
    sock: socket.socket, ifname: str, ifindex: int, mac: bytes, v4: bytes | None, target: Any
) -> None:
    try:
        if target.version == 4:
            sock.send(arp_request(mac, v4 or b"\0\0\0\0", target.packed))
            return
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        try:
            # RFC 4861 7.1.1: hop limit 255 or the receiver drops it.
            s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
            dst = socket.inet_ntop(socket.AF_INET6, _solicited_node(target.packed))
            s6.sendto(neighbour_solicitation(mac, target.packed), (dst, 0, 0, ifindex))
        finally:
            s6.close()
    except OSError as exc:  # no address to send from, interface down ...: listening still works
        print(f"fastvrrp who-has: could not send a request on {ifname}: {exc}", file=sys.stderr)


def _judge(res: Result) -> None:
    holders = [a for a in res.advertisers if a.priority > 0]
    if len({(a.address, a.mac) for a in holders}) > 1:
        who = ", ".join(f"{a.address} ({a.mac}) VRID {a.vrid}" for a in holders)
        res.problems.append(f"{len(holders)} routers advertise it: {who} (more than one master)")
    if len(res.resolved) > 1:
        res.problems.append(
            f"{len(res.resolved)} MACs answer for it: {', '.join(res.resolved)} (two holders)"
        )
    if res.resolved and holders:
        ok: set[str] = set()
        for a in holders:
            ok.add(a.mac)
            fam = 6 if ":" in a.address else 4
            ok.add(mac_text(_wire.vmac(a.vrid, fam)))  # use_vmac: the address answers from the VMAC
        stray = [m for m in res.resolved if m not in ok]
        if stray:
            macs = ", ".join(sorted({a.mac for a in holders}))
            res.problems.append(f"answered by {', '.join(stray)} but advertised by {macs}")


def report(res: Result) -> str:
    lines = [f"who-has {res.vip or '(any address)'} on {res.iface}: listened {res.listened_s:.1f} s"]
    if not res.advertisers:
        lines.append("  no VRRP advert carrying it was heard")
    for a in res.advertisers:
        what = "resigning (priority 0)" if a.priority == 0 else "master"
        lines.append(
            f"  {what} {a.address} mac {a.mac} VRID {a.vrid} priority {a.priority} "
            f"interval {a.interval_ms} ms VRRPv{a.version} ({a.adverts} advert(s))"
        )
        if res.vip is None:
            lines.append(f"    addresses {' '.join(a.addresses)}")
    if res.vip is not None:
        proto = "ARP" if ":" not in res.vip else "neighbour solicitation"
        if res.resolved:
            lines.append(f"  {proto}: {res.vip} is-at {', '.join(res.resolved)}")
        else:
            lines.append(f"  {proto}: no answer for {res.vip}")
        lines.append(f"  neighbour table: {res.neighbour or 'no entry'}")
    if res.invalid:
        lines.append(f"  {res.invalid} invalid VRRP packet(s) ignored")
    for p in res.problems:
        lines.append(f"  CONFLICT: {p}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="fastvrrp who-has",
        description="Find the VRRP router holding an address by listening for its adverts.",
    )
    p.add_argument(
        "vip", nargs="?", help="the virtual address (IPv4 or IPv6); omitted: list every advertiser"
    )
    p.add_argument("-i", "--interface", help="where to listen (default: the interface the route to VIP uses)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to listen (default 3.5)")
    p.add_argument("--no-resolve", action="store_true", help="send no ARP request / neighbour solicitation")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(list(argv or []))
    vip = None
    if args.vip:
        try:
            vip = str(ipaddress.ip_address(args.vip))
        except ValueError:
            print(f"fastvrrp who-has: {args.vip!r} is not an IP address", file=sys.stderr)
            return EXIT_ERROR
    ifname = args.interface or (_route_iface(vip) if vip else None)
    if not ifname:
        print("fastvrrp who-has: say which interface to listen on (-i IFACE)", file=sys.stderr)
        return EXIT_ERROR
    if not os.path.exists(f"/sys/class/net/{ifname}"):
        print(f"fastvrrp who-has: no interface {ifname}", file=sys.stderr)
        return EXIT_ERROR
    try:
        res = listen(vip, ifname, args.timeout, resolve=not args.no_resolve)
    except PermissionError:
        print("fastvrrp who-has: listening needs CAP_NET_RAW (run as root)", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        doc = asdict(res)
        doc["exit"] = res.exit_code()
        print(json.dumps(doc, indent=1))
    else:
        print(report(res), end="")
    return res.exit_code()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
