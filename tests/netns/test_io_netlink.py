"""Netlink from a uvloop loop: VIPs (per call and pre-encoded batches), link and address events."""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import time

import pytest
import uvloop

from fastvrrp.io import netlink
from fastvrrp.io.nsexec import call_in_netns
from fastvrrp.lab.namespaces import wait_for_async

pytestmark = pytest.mark.netns


def run(coro):
    return uvloop.run(coro)


def ip_addrs(lab, ns: str, ifname: str) -> dict[str, dict]:
    data = json.loads(lab.sh(ns, f"ip -j addr show dev {ifname}"))
    return {f"{a['local']}/{a['prefixlen']}": a for ent in data for a in ent.get("addr_info", [])}


@pytest.fixture
def one(lab):
    a = lab.ns("a")
    b = lab.ns("b")
    lab.veth(a, "ethA", b, "ethB")
    lab.addr(a, "ethA", "192.0.2.1/24")
    lab.addr(a, "ethA", "192.0.2.11/24")  # secondary: must not be taken for the primary
    lab.addr(a, "ethA", "2001:db8::1/64")
    # The lab turns DAD off; turn it on here so that the VIPs' IFA_F_NODAD is what keeps them usable.
    lab.sh(a, "sysctl -qw net.ipv6.conf.ethA.accept_dad=1")
    lab.sh(
        a, "ip addr add 2001:db8::200/64 dev ethA"
    )  # control: without nodad it stays tentative for a while
    idx = int(json.loads(lab.sh(a, "ip -j link show dev ethA"))[0]["ifindex"])
    return lab, a, b, idx


def test_vip_add_remove_reconcile_per_call(one):
    lab, a, _b, idx = one
    v4 = netlink.VipSpec("192.0.2.100", 32, idx, label="ethA:vip1", broadcast="192.0.2.100")
    v6 = netlink.VipSpec("2001:db8::100", 64, idx)
    host = netlink.VipSpec("203.0.113.5", 32, idx, scope=netlink.SCOPES["host"])

    async def main():
        w = netlink.NetlinkWorker(netns=a)
        try:
            await w.start()
            assert await w.link_index("ethA") == idx
            assert await w.link_index("nope0") is None
            assert await w.primary_address("ethA", socket.AF_INET) == "192.0.2.1"
            assert (await w.primary_address("ethA", socket.AF_INET6)).startswith("fe80:")

            r = await w.add_addresses([v4, v6, host])
            assert r.ok and r.done == [v4, v6, host] and r.already == []
            have = ip_addrs(lab, a, "ethA")
            assert have["2001:db8::200/64"].get("tentative") is True
            assert have["192.0.2.100/32"]["label"] == "ethA:vip1"
            assert have["192.0.2.100/32"].get("broadcast") == "192.0.2.100"
            assert have["203.0.113.5/32"]["scope"] == "host"
            assert have["2001:db8::100/64"].get("tentative") is None  # IFA_F_NODAD: usable at once

            r = await w.add_addresses([v4, v6])  # EEXIST counts as success
            assert r.ok and r.done == [] and r.already == [v4, v6]

            listed = {(x.address, x.prefixlen) for x in await w.list_addresses(idx)}
            assert {("192.0.2.100", 32), ("2001:db8::100", 64), ("203.0.113.5", 32)} <= listed
            assert all(x.family == socket.AF_INET6 for x in await w.list_addresses(idx, socket.AF_INET6))

            r = await w.remove_addresses([v4, v6, host])
            assert r.ok and len(r.done) == 3
            r = await w.remove_addresses([v4, v6])  # EADDRNOTAVAIL counts as success
            assert r.ok and r.already == [v4, v6]
            have = ip_addrs(lab, a, "ethA")
            assert "192.0.2.100/32" not in have and "2001:db8::100/64" not in have

            bad = netlink.VipSpec("192.0.2.101", 32, 9999)  # no such interface: a real failure, reported
            r = await w.add_addresses([bad])
            assert r.failed == [(bad, errno.ENODEV)]
        finally:
            w.close()

    run(main())


def test_vip_spec_validation():
    with pytest.raises(ValueError):
        netlink.VipSpec("192.0.2.1", 32, 1, label="a-label-of-16-ch")  # kernel would answer ERANGE
    with pytest.raises(ValueError):
        netlink.VipSpec("192.0.2.1", 33, 1)
    with pytest.raises(ValueError):
        netlink.VipSpec("2001:db8::1", 64, 1, broadcast="192.0.2.255")


def _many(idx: int, n4: int, n6: int) -> list[netlink.VipSpec]:
    specs = [netlink.VipSpec(f"198.51.100.{i % 250 + 1}", 32, idx) for i in range(min(n4, 250))]
    specs += [
        netlink.VipSpec(f"203.0.113.{i % 250 + 1}", 32, idx, label=f"ethA:{i}")
        for i in range(max(0, n4 - 250))
    ]
    specs += [netlink.VipSpec(f"2001:db8:1::{i + 1:x}", 128, idx) for i in range(n6)]
    return specs


def test_fast_batch_failover_and_stale_cleanup(one):
    lab, a, _b, idx = one
    specs = _many(idx, 300, 100)

    async def main():
        w = netlink.NetlinkWorker(netns=a)
        try:
            await w.start()
            batch = netlink.AddrBatch(specs)
            r = await w.fast_add(batch)
            assert r.ok and len(r.done) == 400
            have = ip_addrs(lab, a, "ethA")
            assert all(s.text() in have for s in specs)
            assert have["203.0.113.1/32"]["label"] == "ethA:0"
            assert have["2001:db8:1::1/128"].get("tentative") is None

            r = await w.fast_add(batch)
            assert r.ok and len(r.already) == 400 and r.done == []

            r = await w.fast_remove(netlink.AddrBatch(specs[:200]))
            assert r.ok and len(r.done) == 200
            # A crashed run left specs[200:] behind; cleanup removes exactly those.
            removed = await w.remove_stale(specs)
            assert removed == specs[200:]
            assert await w.remove_stale(specs) == []
            have = ip_addrs(lab, a, "ethA")
            assert not any(s.text() in have for s in specs)
            assert "192.0.2.1/24" in have  # nothing else touched

            bad = netlink.VipSpec("192.0.2.200", 32, 9999)
            r = await w.fast_add(netlink.AddrBatch([specs[0], bad]))
            assert r.done == [specs[0]] and r.failed == [(bad, errno.ENODEV)]
        finally:
            w.close()

    run(main())


def test_fast_batch_vs_pyroute2_speed_1000_vips(one):
    """Prints the numbers; the batch must beat per-call pyroute2 by a wide margin
    (docs/costs.md#netlink-encoding)."""
    lab, a, _b, idx = one
    specs = [netlink.VipSpec(f"198.51.{100 + i // 250}.{i % 250 + 1}", 32, idx) for i in range(1000)]

    def per_call(ipr, op, specs):  # one pyroute2 request per address, in the worker's thread
        for s in specs:
            ipr.addr(op, index=s.ifindex, address=s.address, prefixlen=s.prefixlen)

    async def main():
        w = netlink.NetlinkWorker(netns=a)
        try:
            await w.start()
            t0 = time.perf_counter()
            batch = netlink.AddrBatch(specs)
            t_enc = time.perf_counter() - t0
            t0 = time.perf_counter()
            await w.call(per_call, "add", specs)
            t_add_call = time.perf_counter() - t0
            t0 = time.perf_counter()
            await w.call(per_call, "del", specs)
            t_del_call = time.perf_counter() - t0
            t0 = time.perf_counter()
            r = await w.fast_add(batch)
            t_add_fast = time.perf_counter() - t0
            assert r.ok and len(r.done) == 1000
            t0 = time.perf_counter()
            r = await w.fast_remove(batch)
            t_del_fast = time.perf_counter() - t0
            assert r.ok and len(r.done) == 1000
        finally:
            w.close()
        print(
            f"\n1000 IPv4 VIPs: encode once {t_enc * 1e3:.1f} ms;"
            f" per-call pyroute2 add {t_add_call * 1e3:.1f} ms del {t_del_call * 1e3:.1f} ms;"
            f" pre-encoded batch add {t_add_fast * 1e3:.1f} ms del {t_del_fast * 1e3:.1f} ms;"
            f" speed-up add x{t_add_call / t_add_fast:.1f} del x{t_del_call / t_del_fast:.1f}"
        )
        assert t_add_fast * 2 < t_add_call and t_del_fast * 2 < t_del_call

    run(main())


def test_link_monitor_link_and_address_events(one):
    lab, a, b, idx = one
    events: list[tuple] = []

    def last_link():
        links = [e for e in events if e[0] == "link"]
        return links[-1] if links else None

    async def main():
        loop = asyncio.get_running_loop()
        mon = netlink.LinkMonitor(
            loop,
            on_link=lambda i, name, up: events.append(("link", i, name, up)),
            on_addr=lambda i, fam, addr, plen, added: events.append(("addr", i, addr, plen, added)),
            netns=a,
        )
        mon.start()
        try:
            await wait_for_async(lambda: ("link", idx, "ethA", True) in events, what="initial link state")
            assert mon.links[idx] == ("ethA", True)

            events.clear()
            await asyncio.to_thread(lab.sh, b, "ip link set ethB down")  # carrier lost: IFF_RUNNING clears
            await wait_for_async(lambda: ("link", idx, "ethA", False) in events, what="carrier down")
            await asyncio.to_thread(lab.sh, b, "ip link set ethB up")
            await wait_for_async(lambda: ("link", idx, "ethA", True) in events, what="carrier up")
            await asyncio.to_thread(lab.sh, a, "ip link set ethA down")
            await wait_for_async(lambda: last_link() == ("link", idx, "ethA", False), what="admin down")
            await asyncio.to_thread(lab.sh, a, "ip link set ethA up")
            await wait_for_async(lambda: last_link() == ("link", idx, "ethA", True), what="admin up")
            # Only changes are reported: an MTU change says nothing.
            n = len([e for e in events if e[0] == "link"])
            await asyncio.to_thread(lab.sh, a, "ip link set ethA mtu 1400")
            await asyncio.to_thread(lab.sh, a, "ip addr add 192.0.2.100/32 dev ethA")
            await wait_for_async(
                lambda: ("addr", idx, "192.0.2.100", 32, True) in events, what="address added"
            )
            assert len([e for e in events if e[0] == "link"]) == n

            await asyncio.to_thread(lab.sh, a, "ip addr del 192.0.2.100/32 dev ethA")
            await wait_for_async(
                lambda: ("addr", idx, "192.0.2.100", 32, False) in events, what="v4 address removed"
            )
            await asyncio.to_thread(lab.sh, a, "ip addr add 2001:db8::100/64 dev ethA nodad")
            await asyncio.to_thread(lab.sh, a, "ip addr del 2001:db8::100/64 dev ethA")
            await wait_for_async(
                lambda: ("addr", idx, "2001:db8::100", 64, False) in events,
                5,
                0.01,
                what="v6 address removed",
            )
            assert mon.malformed == 0 and mon.callback_errors == 0
        finally:
            mon.close()

    run(main())


def test_link_monitor_recovers_from_enobufs(one):
    lab, a, _b, idx = one
    resyncs: list[int] = []
    links: list[tuple] = []
    specs = _many(idx, 400, 0)

    async def main():
        loop = asyncio.get_running_loop()
        mon = netlink.LinkMonitor(
            loop,
            on_link=lambda i, name, up: links.append((i, name, up)),
            on_addr=lambda *args: None,
            on_resync=lambda: resyncs.append(1),
            netns=a,
            rcvbuf=4096,  # tiny on purpose: 400 address events overflow it
        )
        mon.start()
        try:
            await wait_for_async(lambda: (idx, "ethA", True) in links, what="initial link state")
            # Blocking the loop thread while the kernel emits 400 events: nobody reads, the buffer overflows.
            b = call_in_netns(a, netlink.NetlinkBatcher)
            try:
                assert b.add(netlink.AddrBatch(specs)).ok
            finally:
                b.close()
            await wait_for_async(lambda: resyncs, what="resync after ENOBUFS")
            assert mon.resyncs >= 1
            # The new socket works: a later change is still seen.
            links.clear()
            await asyncio.to_thread(lab.sh, a, "ip link set ethA down")
            await wait_for_async(lambda: (idx, "ethA", False) in links, what="link down after resync")
        finally:
            mon.close()

    run(main())
