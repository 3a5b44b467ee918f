"""The daemon's receive sockets sit one-shot in an epoll set of their own (daemon/links.py): a socket that
became readable is reported once, stays silent until it is re-armed, and is reported again at once when data
was left in it. AF_UNIX datagram pairs stand in for the raw sockets (no privileges needed)."""

from __future__ import annotations

import asyncio
import socket
import time

from fastvrrp._engine import Engine
from fastvrrp.daemon.links import Link, Links
from fastvrrp.io.sockets import VrrpSockets


def _link(name: str, eng: Engine) -> tuple[Link, socket.socket]:
    rx, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.setblocking(False)
    socks = VrrpSockets(name, 1, socket.AF_INET, rx, peer)
    return Link(name, 1, 4, False, bytes(4), socks, eng.add_rx_socket(rx.fileno(), 4), 0), peer


def test_a_readable_socket_is_reported_once_until_rearmed():
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        woke: list[int] = []
        eng = Engine(capture=True)
        links = Links(loop, eng, None, lambda: woke.append(1))  # type: ignore[arg-type]
        a, peer_a = _link("a", eng)
        b, peer_b = _link("b", eng)
        links.watch(a)
        links.watch(b)
        seen = []
        try:
            peer_a.send(b"1")
            deadline = time.monotonic() + 10
            while not woke and time.monotonic() < deadline:
                await asyncio.sleep(0.001)  # the loop wakes for the epoll set's fd
            seen.append("woke" if woke else "no wake-up")
            seen.append(",".join(lk.ifname for lk in links.to_read()))
            peer_a.send(b"2")
            peer_b.send(b"3")
            # a is held (silent until re-armed), b is new: the next harvest reports b alone
            seen.append(",".join(sorted(lk.ifname for lk in links.to_read())))
            a.socks.rx.recv(16)  # read a partly: one datagram stays
            b.socks.rx.recv(16)
            links.rearm()
            seen.append(",".join(lk.ifname for lk in links.to_read()))  # a at once: data was left
            links.rearm()
            links.held.clear()
            links._close(a)  # a closed link is never reported again
            peer_b.send(b"4")
            seen.append(",".join(lk.ifname for lk in links.to_read()))
        finally:
            links.close()
            for lk, peer in ((a, peer_a), (b, peer_b)):
                lk.socks.close()
                peer.close()
        return seen

    assert asyncio.run(main()) == ["woke", "a", "a,b", "a", "b"]
