"""The advert thread's send_due() and the loop's engine calls never run inside each other.

send_due() is called from the daemon's advert thread (io/timer.py Watchdog) while the loop thread may be
about to call run(), flush() or receive(). If send_due() let go of the GIL while it sends, a loop call could
start in the middle of it: both would use the same send buffers and queues, and the loop call, saving and
restoring the busy flag it found set, could leave the engine marked busy for good, so that every later
rescue is refused (docs/costs.md#advert-precedence). The sockets are AF_UNIX datagram sockets: the engine
really calls sendmmsg (the kernel refuses the IPv4 destination, which the engine counts), nothing leaves the
machine.
"""

from __future__ import annotations

import socket
import sys
import threading

from fastvrrp._engine import Engine


def test_rescues_interleaved_with_loop_calls_leave_the_engine_usable():
    rx_sock, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    tx_sock, sink = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        rx_sock.setblocking(False)
        eng = Engine(capture=False, batch=8)
        rx = eng.add_rx_socket(rx_sock.fileno(), 4)
        tx = eng.add_tx_socket(tx_sock.fileno(), 4)
        for v in range(1, 201):
            s = eng.add_slot(rx, v, 3)
            eng.set_adverts(s, tx, [(b"\xe0\0\0\x12", 0, bytes([v]) * 12)])
            eng.master(s, 1_000, v)
        stop = threading.Event()
        refused = [0, 0]  # rescues refused, rescues run

        clock = [0]  # the loop's time: the rescuer fires what the loop is about to fire

        def rescuer() -> None:
            while not stop.is_set():
                if eng.send_due(clock[0] + 1_000) < 0:
                    refused[0] += 1
                else:
                    refused[1] += 1

        t = threading.Thread(target=rescuer)
        switch = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # hand the GIL over as often as the interpreter can
        t.start()
        try:
            for step in range(5_000):
                clock[0] = step * 1_000
                eng.run(clock[0])
                eng.flush()
        finally:
            stop.set()
            t.join()
            sys.setswitchinterval(switch)
        print(f"rescues refused {refused[0]}, run {refused[1]}")
        # Whatever interleaving happened, the engine is idle now: a rescue must run, not be refused.
        assert eng.send_due(10**12) >= 0, f"engine left busy (refused {refused[0]}, ran {refused[1]})"
        assert eng.tx_stats(tx)["errors"] > 0  # sendmmsg was really called (and refused the address)
    finally:
        for s in (rx_sock, peer, tx_sock, sink):
            s.close()
