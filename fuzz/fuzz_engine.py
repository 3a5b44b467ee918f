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
EV_ADVERT event for the slot of its VRID with a valid Packet; the deadline heap stays consistent. And which
of the three, for each datagram, is what a model written here from the codec's verdict (_wire.decode_*) and
the receive rules of RFC 5798 7.1 / RFC 3768 7.1 (own address, VRID, version, password, unicast peer) and
the fast path (the backup's master, unchanged) predicts.
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


def _expect(eng: _engine.Engine, fam: dict, slots: dict, by_vrid: dict, item, flags: int) -> tuple:
    """("drop", reason) | ("fast",) | ("event", slot) for one datagram, from the model."""
    check_ttl, policy = bool(flags & 2), ((flags >> 2) & 3) % 3
    if flags & 1:
        msg, src, dst, hop = item
        p = _wire.decode_ipv6(msg, src, dst, hop, check_ttl=check_ttl)
    else:
        p = _wire.decode_ipv4(item, check_ttl=check_ttl, policy=policy)
    if not p.valid:
        return ("drop", p.reason_code)
    if p.src == fam["own"]:
        return ("drop", _wire.R_OWN)
    s = by_vrid.get(p.vrid)
    if s is None:
        return ("drop", _wire.R_NO_INSTANCE)
    _vrid, version, auth_type, auth_data, peers = slots[s]
    if p.version != version:
        return ("drop", _wire.R_VERSION_MISMATCH)
    password = auth_data.ljust(8, b"\0")
    if version == 2 and (p.auth_type != auth_type or (auth_type == 1 and p.auth_data != password)):
        return ("drop", _wire.R_AUTH_MISMATCH)
    if peers and p.src != fam[peers]:
        return ("drop", _wire.R_PEER)
    if eng.mode(s) == "backup" and p.priority == 100 and p.adver_int_ms == 1000 and p.src == fam["peer"]:
        return ("fast",)
    return ("event", s)


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
        slots[s] = fam["slots"][i]
    by_vrid = {spec[0]: s for s, spec in slots.items()}
    dgrams = _datagrams(data[2:], v6)
    for b in range(0, len(dgrams), BATCH):
        batch = dgrams[b : b + BATCH]
        want = [_expect(eng, fam, slots, by_vrid, item, data[0]) for item in batch]
        drops_before = eng.drops(rx)
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
            check(pkt.valid and pkt.vrid == slots[s][0], f"slot {s} got {pkt!r}")
        got_drops = [a - b for a, b in zip(eng.drops(rx), drops_before, strict=True)]
        want_drops = [0] * len(_engine.DROP_REASONS)
        for w in want:
            if w[0] == "drop":
                want_drops[w[1]] += 1
        check(got_drops == want_drops, f"drops by reason {got_drops}, the model says {want_drops}")
        check(fast == sum(w[0] == "fast" for w in want), f"{fast} absorbed by the fast path, model: {want}")
        check(
            [s for _k, s, _p in events] == [w[1] for w in want if w[0] == "event"], f"events {events}: {want}"
        )
        eng._check_heap()
        now += STEP_US
        for kind, s, _d in eng.run(now):
            check(kind == _engine.EV_TIMER and s in slots, f"bad run() event {kind} for slot {s}")
        eng._check_heap()
        eng.flush()
        eng.take_sent()
    check(len(eng.drops(rx)) == len(_engine.DROP_REASONS), "drops() is not one counter per reason")


if __name__ == "__main__":
    main(one)
