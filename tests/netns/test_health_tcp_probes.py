"""The TCP check scheduler and its compiled prober against a real kernel, in a namespace the test creates:
every failure reason (refused, reset, timeout, unreachable at once and after a failed ARP, error), IPv4 and
IPv6, bind_ip, RST on close (no TIME_WAIT, no descriptor left), and CheckTracker's counters on top."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import struct

import pytest
import uvloop

from fastvrrp import _probe
from fastvrrp.health.checks import CheckTracker
from fastvrrp.health.spec import CheckSpec, TcpCheck
from fastvrrp.health.tcpfast import TcpProbe, TcpProbeGroup
from fastvrrp.io.nsexec import call_in_netns
from fastvrrp.lab.namespaces import wait_for_async

pytestmark = pytest.mark.netns

SRV, SRV2, SRV6 = "192.0.2.10", "192.0.2.11", "2001:db8::10"
SILENT = "192.0.2.99"  # a neighbour entry to a MAC nobody has: SYNs leave and nothing comes back
NO_ARP = "192.0.2.98"  # nobody answers ARP: the kernel gives up after one 100 ms solicitation
NO_ROUTE = "203.0.113.1"  # no route at all in the namespace
UNREACH_ROUTE = "198.51.100.1"  # an `unreachable` route


@pytest.fixture
def ns(lab):
    n = lab.ns("tcp")
    lab.sh(n, "ip link add name v0 type veth peer name v1")
    lab.sh(n, "ip link set v0 up")
    lab.sh(n, "ip link set v1 up")
    lab.addr(n, "v0", f"{SRV}/24")
    lab.addr(n, "v0", f"{SRV2}/24")
    lab.sh(n, f"ip -6 addr add {SRV6}/64 dev v0 nodad")
    lab.sh(n, f"ip neigh replace {SILENT} lladdr 02:00:00:00:00:99 dev v0 nud permanent")
    lab.sh(n, "ip route add unreachable 198.51.100.0/24")
    lab.sh(n, "sysctl -qw net.ipv4.neigh.v0.mcast_solicit=1 net.ipv4.neigh.v0.ucast_solicit=1")
    lab.sh(n, "sysctl -qw net.ipv4.neigh.v0.retrans_time_ms=100")
    return n


def in_ns(ns, coro_fn):
    """Run an event loop inside the namespace (in a thread that entered it) and return its result."""
    return call_in_netns(ns, lambda: uvloop.run(coro_fn()))


async def listen(host: str, port: int) -> asyncio.Server:
    return await asyncio.start_server(lambda r, w: w.close(), host, port, backlog=512)


async def one(ip, port, timeout_ms=1000, bind_ip=None) -> tuple[bool, str, float]:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    t0 = loop.time()
    p = TcpProbe(ip, port, bind_ip, None, timeout_ms, lambda ok, why: fut.set_result((ok, why)))
    TcpProbeGroup.for_loop(loop).probe_once(p)
    ok, why = await fut
    return ok, why, loop.time() - t0


def test_connected_refused_and_every_unreachable_v4_and_v6(ns):
    async def main():
        s4, s6 = await listen(SRV, 8080), await listen(SRV6, 8080)
        out = {
            "ok4": await one(SRV, 8080),
            "ok6": await one(SRV6, 8080),
            "refused4": await one(SRV, 8081),
            "refused6": await one(SRV6, 8081),
            "no_route": await one(NO_ROUTE, 80),
            "unreachable_route": await one(UNREACH_ROUTE, 80),
            "no_arp": await one(NO_ARP, 80, timeout_ms=5000),
        }
        s4.close()
        s6.close()
        return out

    r = in_ns(ns, main)
    assert r["ok4"][:2] == r["ok6"][:2] == (True, "connected")
    assert r["refused4"][:2] == r["refused6"][:2] == (False, "refused: " + os.strerror(errno.ECONNREFUSED))
    assert r["no_route"][:2] == (False, "unreachable: " + os.strerror(errno.ENETUNREACH))
    assert r["unreachable_route"][:2] == (False, "unreachable: " + os.strerror(errno.EHOSTUNREACH))
    # after the failed ARP (one solicitation, 100 ms), well before the 5 s deadline
    assert r["no_arp"][:2] == (False, "unreachable: " + os.strerror(errno.EHOSTUNREACH))
    assert r["no_arp"][2] < 2.0


def test_a_silent_target_times_out_at_its_deadline_within_a_tick(ns):
    r = in_ns(ns, lambda: one(SILENT, 80, timeout_ms=300))
    assert r[:2] == (False, "timeout")
    assert 0.29 <= r[2] < 0.3 + 0.1


def test_bind_ip_is_the_source_and_a_foreign_or_wrong_family_bind_ip_is_an_error(ns):
    async def main():
        peers = []

        async def handle(r, w):
            peers.append(w.get_extra_info("peername")[0])
            w.close()

        srv = await asyncio.start_server(handle, SRV, 8080)
        bound = await one(SRV, 8080, bind_ip=SRV2)
        foreign = await one(SRV, 8080, bind_ip="192.0.2.77")
        family = await one(SRV, 8080, bind_ip="2001:db8::10")
        await wait_for_async(lambda: peers, 1.0, 0.005, raise_on_timeout=False)
        srv.close()
        return bound, foreign, family, peers

    bound, foreign, family, peers = in_ns(ns, main)
    assert bound[:2] == (True, "connected") and peers == [SRV2]
    assert foreign[:2] == (False, "error: " + os.strerror(errno.EADDRNOTAVAIL))
    assert family[:2] == (False, "error: " + os.strerror(errno.EAFNOSUPPORT))


def test_an_established_connect_reset_before_it_is_polled_is_reset(ns):
    """The prober alone: the server accepts and aborts (SO_LINGER 0) before the client polls; SO_ERROR then
    says ECONNRESET, which the scheduler reports as "reset"."""

    def run():
        srv = socket.socket()
        srv.bind((SRV, 8080))
        srv.listen(8)
        srv.settimeout(5)
        p = _probe.Prober()
        dest = _probe.sockaddr_bytes(socket.AF_INET, ipaddress.ip_address(SRV).packed, 8080)
        assert p.start("me", socket.AF_INET, dest, None, 1e18) == -1  # in flight
        c, _ = srv.accept()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()  # an RST to the client
        got = p.collect(0.0)
        srv.close()
        return got, len(p)

    got, left = call_in_netns(ns, run)
    assert got == [("me", errno.ECONNRESET)] and left == 0


def test_many_probes_leave_no_time_wait_and_no_descriptor(ns, lab):
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def main():
        srv = await listen(SRV, 8080)
        before = fds()
        loop = asyncio.get_running_loop()
        g = TcpProbeGroup(loop)
        n = [0]

        def res(ok, why):
            assert ok, why
            n[0] += 1

        probes = [TcpProbe(SRV, 8080, None, 20, 1000, res) for _ in range(50)]
        for i, p in enumerate(probes):
            g.add(p, i / 50 * 0.02)
        await wait_for_async(lambda: n[0] >= 500, 5, 0.01, raise_on_timeout=False)
        for p in probes:
            g.remove(p)
        srv.close()
        await srv.wait_closed()
        return n[0], before, fds(), g.ticks, g.started

    runs, before, after, ticks, started = in_ns(ns, main)
    assert runs >= 500
    assert ticks < started  # batched: fewer wake-ups than probes
    assert after <= before  # every probe's socket closed (the listener's too)
    tw = lab.sh(ns, "ss -Htan state time-wait")
    assert tw.strip() == ""  # SO_LINGER 0: closed with an RST, never TIME_WAIT


def test_check_tracker_runs_tcp_on_the_group_with_rise_fall_and_reasons(ns):
    async def main():
        seen = []
        t = CheckTracker(
            CheckSpec(
                "db", TcpCheck(ipaddress.ip_address(SRV), 8080), interval_ms=20, timeout_ms=200, fall=2
            ),
            lambda n, s: seen.append(s),
        )
        silent = CheckTracker(
            CheckSpec("gone", TcpCheck(ipaddress.ip_address(SILENT), 80), interval_ms=50, timeout_ms=60),
            lambda n, s: seen.append(s),
        )
        srv = await listen(SRV, 8080)
        t.start(initial_delay_ms=0)
        silent.start(initial_delay_ms=0)
        assert t._task is None  # no task per TCP check: the loop's group runs it
        await wait_for_async(lambda: t.status.up is True, 5, 0.005)
        srv.close()
        await srv.wait_closed()
        await wait_for_async(lambda: t.status.up is False, 5, 0.005)
        refused_when_down = t.failures.get("refused")
        await wait_for_async(lambda: silent.failures.get("timeout", 0) >= 2, 5, 0.005)
        t.stop()
        silent.stop()
        runs = t.runs
        await asyncio.sleep(0.1)
        assert t.runs == runs  # stopped means stopped
        return t, silent, seen, refused_when_down

    t, silent, seen, refused_when_down = in_ns(ns, main)
    assert refused_when_down == 2 and t.successes >= 1  # fall 2: down at the second refused connect
    assert [s.up for s in seen if s.reason != "timeout"] == [True, False]
    assert set(t.failures) == {"refused"}
    assert t.status.reason.startswith("refused")
    assert set(silent.failures) == {"timeout"} and silent.successes == 0
