"""Fuzz the engine's batch receive path (fastvrrp/_engine.pyx Engine.feed, the path recvmmsg batches take)
on a capture-mode engine with slots, the fast path on or off, slots idle, master and backup, deadlines
run between batches.

Input layout: byte 0: bit 0 IPv6 socket, bit 1 TTL rule, bits 2-3 checksum policy mod 3, bit 4 fast path
off; byte 1: the mode of the four slots, 2 bits each (0 timer, 1 master, 2 backup, 3 removed and added
again); then datagrams, each a 2-byte big-endian length and that many bytes (the last may be cut short): an
IPv4 packet, or for IPv6 16 bytes source, 16 bytes destination, 1 byte hop limit and the VRRP message. They
are fed four at a time, with run() 300 ms later after each batch.

The documented answer: feed() and run() return events and never raise for any bytes; every datagram is
either dropped and counted by reason, absorbed by the fast path (counted in rx_fast) or returned as one
EV_ADVERT event for the slot of its VRID with a valid Packet; the deadline heap stays consistent.
"""

from __future__ import annotations

import socket

from _harness import check, instrumented, main

with instrumented():
    from fastvrrp import _engine, _wire

V4 = {
    "own": socket.inet_pton(socket.AF_INET, "192.0.2.1"),
    "peer": socket.inet_pton(socket.AF_INET, "192.0.2.2"),
    "group": socket.inet_pton(socket.AF_INET, "224.0.0.18"),
    # (vrid, version, auth_type, auth_data, unicast peers)
    "slots": ((1, 3, 0, b"", None), (2, 3, 0, b"", "peer"), (3, 2, 1, b"secret", None), (4, 2, 0, b"", None)),
}
V6 = {
    "own": socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
    "peer": socket.inet_pton(socket.AF_INET6, "2001:db8::2"),
    "group": socket.inet_pton(socket.AF_INET6, "ff02::12"),
    "slots": ((1, 3, 0, b"", None), (2, 3, 0, b"", "peer"), (3, 3, 0, b"", None), (4, 3, 0, b"", None)),
}
BATCH = 4
STEP_US = 300_000


def _datagrams(data: bytes, v6: bool) -> list:
    out = []
    pos = 0
    while pos + 2 <= len(data) and len(out) < 64:
        n = int.from_bytes(data[pos : pos + 2], "big")
        item = data[pos + 2 : pos + 2 + n]
        pos += 2 + n
        if v6:
            if len(item) < 33:
                continue
            out.append((item[33:], item[:16], item[16:32], item[32]))
        else:
            out.append(item)
    return out


def _add(eng: _engine.Engine, rx: int, tx: int, fam: dict, i: int, mode: int, now: int) -> int:
    vrid, version, auth_type, auth_data, peers = fam["slots"][i]
    s = eng.add_slot(rx, vrid, version, auth_type, auth_data, [fam[peers]] if peers else None)
    if mode == 1:
        eng.set_adverts(s, tx, [(fam["group"], 0, b"advert %d" % vrid)])
        eng.master(s, 1_000_000, now + 1_000_000)
    elif mode == 2:
        eng.backup(s, fam["peer"], 100, 1000, 3_609_375, now + 3_609_375)
    else:
        eng.timer(s, now + 2_000_000 + i)
    return s


def one(data: bytes) -> None:
    if len(data) < 2:
        return
    v6 = bool(data[0] & 1)
    fam = V6 if v6 else V4
    eng = _engine.Engine(max_slots=8, batch=BATCH, fast_path=not data[0] & 16, capture=True, max_sockets=2)
    rx = eng.add_rx_socket(-1, 6 if v6 else 4, bool(data[0] & 2), ((data[0] >> 2) & 3) % 3, [fam["own"]])
    tx = eng.add_tx_socket(-1, 6 if v6 else 4)
    now = 1_000_000
    slots = {}
    for i in range(4):
        mode = (data[1] >> (2 * i)) & 3
        s = _add(eng, rx, tx, fam, i, mode, now)
        if mode == 3:
            eng.remove_slot(s)
            s = _add(eng, rx, tx, fam, i, 2, now)
        slots[s] = fam["slots"][i][0]
    dgrams = _datagrams(data[2:], v6)
    for b in range(0, len(dgrams), BATCH):
        batch = dgrams[b : b + BATCH]
        before = eng.rx_stats(rx)
        fast_before = sum(eng.slot_stats(s)["rx_fast"] for s in slots)
        events = eng.feed(rx, now, batch)
        after = eng.rx_stats(rx)
        fast = sum(eng.slot_stats(s)["rx_fast"] for s in slots) - fast_before
        check(after["datagrams"] - before["datagrams"] == len(batch), "datagrams not counted")
        dropped = after["dropped"] - before["dropped"]
        check(
            dropped + fast + len(events) == len(batch),
            f"{len(batch)} in, {dropped} dropped + {fast} fast + {len(events)} events out",
        )
        for kind, s, pkt in events:
            check(kind == _engine.EV_ADVERT and s in slots, f"bad event {kind} for slot {s}")
            check(pkt.valid and pkt.vrid == slots[s], f"slot {s} got {pkt!r}")
        eng._check_heap()
        now += STEP_US
        for kind, s, _d in eng.run(now):
            check(kind == _engine.EV_TIMER and s in slots, f"bad run() event {kind} for slot {s}")
        eng._check_heap()
        eng.flush()
        eng.take_sent()
    check(len(eng.drops(rx)) == _wire.R_COUNT, "drops() is not one counter per reason")


if __name__ == "__main__":
    main(one)
