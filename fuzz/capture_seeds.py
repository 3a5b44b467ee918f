"""Capture seed inputs from the real kernel (run as root from the repository root:
`python fuzz/capture_seeds.py`; the output under fuzz/corpus/ is committed).

  proc     process-event datagrams of the proc connector (fork, exec, exit of /bin/true children), read in
           the initial network namespace where the connector lives (a subscription, no traffic)
  netlink  in a private network namespace made for the purpose (unshare -n): the rtnetlink event datagrams
           of creating a veth pair, adding 192.0.2.1/24 and 2001:db8::1/64, setting it up and deleting
           it, the answers to link and address dumps, and ACKs (success and EEXIST)
  pcap     in the same namespace: tcpdump's captures (-i lo: Ethernet link type; -i any: SLL2) of a VRRPv3
           advert sent from a raw socket to 192.0.2.1
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "fuzz"), os.path.join(ROOT, "tests")]

OUT = os.path.join(ROOT, "fuzz", "corpus")


def write(kind: str, name: str, data: bytes) -> None:
    os.makedirs(os.path.join(OUT, kind), exist_ok=True)
    with open(os.path.join(OUT, kind, name), "wb") as f:
        f.write(data)


def drain(s: socket.socket, wait: float = 0.3) -> list[bytes]:
    out = []
    while select.select([s], [], [], wait)[0]:
        out.append(s.recv(65536))
        wait = 0.1
    return out


def proc() -> None:
    from fastvrrp.io import proc_connector

    s = proc_connector.open_socket()
    try:
        for _ in range(2):
            subprocess.run(["/bin/true"], check=True)
        got = drain(s, 1.0)
    finally:
        s.close()
    for i, d in enumerate(got[:8]):
        write("proc", f"kernel_{i}", d)


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True)


def netns_part() -> None:
    from fastvrrp.io import netlink as nl

    sh("ip", "link", "set", "lo", "up")
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, nl.NETLINK_ROUTE)
    s.bind((0, nl.RTMGRP_LINK | nl.RTMGRP_IPV4_IFADDR | nl.RTMGRP_IPV6_IFADDR))
    sh("ip", "link", "add", "fz0", "type", "veth", "peer", "name", "fz1")
    sh("ip", "addr", "add", "192.0.2.1/24", "dev", "fz0")
    sh("ip", "-6", "addr", "add", "2001:db8::1/64", "dev", "fz0", "nodad")
    sh("ip", "link", "set", "fz0", "up")
    sh("ip", "link", "set", "fz1", "up")
    events = drain(s)
    # dumps and ACKs on a second socket
    q = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, nl.NETLINK_ROUTE)
    q.bind((0, 0))
    hdr = nl._NLMSGHDR
    q.send(hdr.pack(hdr.size + 16, nl.RTM_GETLINK, nl.NLM_F_REQUEST | nl.NLM_F_DUMP, 1, 0) + bytes(16))
    dumps = drain(q)
    q.send(hdr.pack(hdr.size + 8, nl.RTM_GETADDR, nl.NLM_F_REQUEST | nl.NLM_F_DUMP, 2, 0) + bytes(8))
    dumps += drain(q)
    idx = socket.if_nametoindex("fz0")
    spec = nl.VipSpec(address="192.0.2.50", prefixlen=24, ifindex=idx)
    q.send(nl.encode_addr(spec, nl.RTM_NEWADDR, 7) + nl.encode_addr(spec, nl.RTM_NEWADDR, 8))
    acks = drain(q)
    sh("ip", "link", "del", "fz0")
    events += drain(s)
    for i, d in enumerate(events[:10]):
        write("netlink", f"kernel_event_{i}", d)
    for i, d in enumerate(dumps[:6]):
        write("netlink", f"kernel_dump_{i}", d[:4096])
    for i, d in enumerate(acks[:4]):
        write("netlink", f"kernel_ack_{i}", d)
    capture()


def capture() -> None:
    import refcodec
    from make_seeds import ip4, ipv4_packet

    sh("ip", "addr", "add", "192.0.2.1/24", "dev", "lo")
    src, dst = ip4("192.0.2.1"), ip4("192.0.2.1")
    msg = refcodec.build_advert(version=3, family=4, vrid=7, priority=100, adver_int_ms=1000,
                                addresses=[ip4("192.0.2.100")], src=src, dst=dst)  # fmt: skip
    tmp = "/tmp/fastvrrp-fuzz-capture"
    os.makedirs(tmp, exist_ok=True)
    for iface, name in (("lo", "tcpdump_lo.pcap"), ("any", "tcpdump_any.pcap")):
        path = os.path.join(tmp, name)
        td = subprocess.Popen(["tcpdump", "-i", iface, "-U", "-w", path, "-c", "2", "ip proto 112"],
                              stderr=subprocess.DEVNULL)  # fmt: skip
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        deadline = time.monotonic() + 10
        while td.poll() is None and time.monotonic() < deadline:
            raw.sendto(ipv4_packet(msg, src, dst), ("192.0.2.1", 0))
            time.sleep(0.2)
        raw.close()
        if td.poll() is None:
            td.terminate()
        td.wait()
        with open(path, "rb") as f:
            write("pcap", name, f.read())
        os.unlink(path)


if __name__ == "__main__":
    if sys.argv[1:] == ["--netns"]:
        netns_part()
    else:
        proc()
        sh("unshare", "-n", sys.executable, os.path.abspath(__file__), "--netns")
