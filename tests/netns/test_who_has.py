"""`fastvrrp who-has` on a bridged LAN in namespaces: routers send real adverts, hold (or not) the VIP."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fastvrrp.lab.namespaces import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A minimal advertiser: fastvrrp._wire.build_advert over a raw socket, every `interval` ms.
SENDER = r"""
import socket, struct, sys, time
from fastvrrp import _wire
fam, ifname, src, vip, vrid, prio, interval = sys.argv[1:8]
fam, vrid, prio, interval = int(fam), int(vrid), int(prio), int(interval)
idx = socket.if_nametoindex(ifname)
if fam == 4:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, struct.pack("4s4si", b"\0" * 4, b"\0" * 4, idx))
    s.bind((src, 0))
    dst, to = "224.0.0.18", ("224.0.0.18", 0)
    af = socket.AF_INET
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
    s.bind((src, 0, 0, idx))
    dst, to = "ff02::12", ("ff02::12", 0, 0, idx)
    af = socket.AF_INET6
msg = _wire.build_advert(version=3, family=fam, vrid=vrid, priority=prio, adver_int_ms=interval,
                         addresses=[socket.inet_pton(af, vip)], src=socket.inet_pton(af, src),
                         dst=socket.inet_pton(af, dst))
print("sending", flush=True)
while True:
    s.sendto(msg, to)
    time.sleep(interval / 1000)
"""


def _mac(lab, ns: str, ifname: str = "eth0") -> str:
    return json.loads(lab.sh(ns, f"ip -j link show {ifname}"))[0]["address"]


def _lan(lab, routers: int):
    sw = lab.ns("sw")
    lab.bridge(sw)
    q = lab.ns("q")
    lab.veth(q, "eth0", sw, "pq", bridge="br0")
    lab.addr(q, "eth0", "192.0.2.9/24")
    lab.addr(q, "eth0", "2001:db8::9/64")
    rs = []
    for k in range(1, routers + 1):
        r = lab.ns(f"r{k}")
        lab.veth(r, "eth0", sw, f"pr{k}", bridge="br0")
        lab.addr(r, "eth0", f"192.0.2.{k}/24")
        rs.append(r)
    return q, rs


def _advertise(
    lab, ns: str, fam: int, src: str, vip: str, vrid: int = 51, prio: int = 150, interval: int = 200
):
    argv = [sys.executable, "-c", SENDER, str(fam), "eth0", src, vip, str(vrid), str(prio), str(interval)]
    p = lab.spawn(ns, argv, f"sender-{ns}-{fam}")
    wait_for(lambda: "sending" in p.log() or not p.alive(), 10, what="the advert sender")
    assert p.alive(), p.log()
    return p


def _who_has(lab, ns: str, *args: str) -> tuple[int, dict]:
    r = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "fastvrrp", "who-has", *args, "--json"],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert r.stdout, r.stderr
    return r.returncode, json.loads(r.stdout)


def test_finds_the_master_and_its_arp_answer(lab):
    q, (r1, r2) = _lan(lab, 2)
    lab.addr(r1, "eth0", "192.0.2.100/24")  # r1 is master: it holds the VIP and advertises
    _advertise(lab, r1, 4, "192.0.2.1", "192.0.2.100")
    _advertise(lab, r2, 4, "192.0.2.2", "192.0.2.200", vrid=52)  # another VRID: not the one asked about
    lab.sh(q, "ping -c 1 -W 2 192.0.2.100")  # the kernel's own neighbour entry, which who-has reports too
    rc, res = _who_has(lab, q, "192.0.2.100", "-i", "eth0", "--timeout", "3")
    assert rc == 0, res
    assert len(res["advertisers"]) == 1
    a = res["advertisers"][0]
    assert (a["address"], a["mac"], a["vrid"], a["priority"], a["interval_ms"], a["version"]) == (
        "192.0.2.1", _mac(lab, r1), 51, 150, 200, 3,
    )  # fmt: skip
    assert a["adverts"] >= 1 and a["addresses"] == ["192.0.2.100"]
    assert res["resolved"] == [_mac(lab, r1)]
    assert res["neighbour"] and res["neighbour"].startswith(_mac(lab, r1))
    assert res["problems"] == []
    assert res["listened_s"] < 2.5  # stopped 1.5 intervals after the first advert, not at the timeout


def test_two_masters_and_two_holders_are_flagged(lab):
    q, (r1, r2) = _lan(lab, 2)
    for r, k in ((r1, 1), (r2, 2)):
        lab.addr(r, "eth0", "192.0.2.100/24")
        _advertise(lab, r, 4, f"192.0.2.{k}", "192.0.2.100", prio=100 + k)
    rc, res = _who_has(lab, q, "192.0.2.100", "-i", "eth0", "--timeout", "3")
    assert rc == 2
    assert {a["address"] for a in res["advertisers"]} == {"192.0.2.1", "192.0.2.2"}
    assert sorted(res["resolved"]) == sorted([_mac(lab, r1), _mac(lab, r2)])
    assert any("more than one master" in p for p in res["problems"])
    assert any("two holders" in p for p in res["problems"])


def test_arp_answer_from_a_box_that_does_not_advertise(lab):
    q, (r1, r2) = _lan(lab, 2)
    _advertise(lab, r1, 4, "192.0.2.1", "192.0.2.100")  # the master advertises ...
    lab.addr(r2, "eth0", "192.0.2.100/24")  # ... but another box holds the address
    rc, res = _who_has(lab, q, "192.0.2.100", "-i", "eth0", "--timeout", "3")
    assert rc == 2
    assert res["resolved"] == [_mac(lab, r2)]
    assert any(f"answered by {_mac(lab, r2)} but advertised by {_mac(lab, r1)}" in p for p in res["problems"])


def test_ipv6_vip(lab):
    q, (r1,) = _lan(lab, 1)
    lab.addr(r1, "eth0", "2001:db8::100/64")
    ll = wait_for(
        lambda: next((a.get("local") for i in json.loads(lab.sh(r1, "ip -j -6 addr show dev eth0 scope link"))
                      for a in i["addr_info"] if a.get("local")), None),
        10, what="a link-local address",
    )  # fmt: skip
    _advertise(lab, r1, 6, ll, "2001:db8::100", vrid=60, prio=200)
    rc, res = _who_has(lab, q, "2001:db8::100", "-i", "eth0", "--timeout", "3")
    assert rc == 0, res
    a = res["advertisers"][0]
    assert (a["address"], a["mac"], a["vrid"], a["priority"]) == (ll, _mac(lab, r1), 60, 200)
    assert res["resolved"] == [_mac(lab, r1)]


def test_nothing_heard(lab):
    q, _ = _lan(lab, 1)
    rc, res = _who_has(lab, q, "192.0.2.123", "-i", "eth0", "--timeout", "1")
    assert rc == 1
    assert res["advertisers"] == [] and res["resolved"] == [] and res["problems"] == []


def test_text_report_and_usage_errors(lab):
    q, (r1,) = _lan(lab, 1)
    lab.addr(r1, "eth0", "192.0.2.100/24")
    _advertise(lab, r1, 4, "192.0.2.1", "192.0.2.100")
    r = subprocess.run(["ip", "netns", "exec", q, sys.executable, "-m", "fastvrrp", "who-has", "192.0.2.100"],
                       capture_output=True, text=True, timeout=30, cwd=ROOT)  # fmt: skip
    assert r.returncode == 0, r.stderr  # the interface comes from the route to the VIP
    assert f"master 192.0.2.1 mac {_mac(lab, r1)} VRID 51 priority 150 interval 200 ms VRRPv3" in r.stdout
    assert f"ARP: 192.0.2.100 is-at {_mac(lab, r1)}" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "fastvrrp", "who-has", "not-an-ip"], capture_output=True,
                         text=True, cwd=ROOT)  # fmt: skip
    assert bad.returncode == 3 and "not an IP address" in bad.stderr


@pytest.mark.parametrize(
    "frame", [b"", b"\x00" * 13, b"\xff" * 14 + b"\x45", b"\x00" * 12 + b"\x86\xdd" + b"\0" * 10]
)
def test_short_or_odd_frames_are_ignored(frame):
    from fastvrrp.tools.who_has import parse_frame

    assert parse_frame(frame, False) is None
