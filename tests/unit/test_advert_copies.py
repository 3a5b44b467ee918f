"""fastvrrp's advert_copies / advert_copy_delay (docs/rfc-checklist.md#advert-copies): the keywords as read
and checked, and the engine sending each advert N times without moving the interval schedule."""

from __future__ import annotations

import json

import pytest

from fastvrrp import _engine
from fastvrrp.config import check
from fastvrrp.daemon import dumps

MCAST = bytes([224, 0, 0, 18])


def conf(*lines: str, advert_int: str = "0.1") -> str:
    body = "".join(f"    {x}\n" for x in lines)
    return (
        "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    version 3\n"
        f"    advert_int {advert_int}\n{body}    virtual_ipaddress {{\n        192.0.2.100/24\n    }}\n}}\n"
    )


def read(tmp_path, text: str):
    p = tmp_path / "keepalived.conf"
    p.write_text(text)
    cfg, problems, _unsupported = check(str(p))
    return cfg, [str(x) for x in problems]


# --- configuration ----------------------------------------------------------------------------------------
def test_defaults_one_copy(tmp_path):
    cfg, problems = read(tmp_path, conf())
    assert not problems
    assert (cfg.instances[0].advert_copies, cfg.instances[0].advert_copy_delay_ms) == (1, 5)


@pytest.mark.parametrize(
    ("lines", "advert_int", "want"),
    [
        (("advert_copies 2",), "1", (2, 5)),  # the default delay: 5 ms
        (("advert_copies 3",), "0.01", (3, 3)),  # 5 ms would not fit three copies in 10 ms: 10 // 3
        (("advert_copies 2", "advert_copy_delay 0.02"), "0.1", (2, 20)),
        (("advert_copies 4", "advert_copy_delay 0.033"), "0.1", (4, 33)),  # 99 ms < 100 ms
    ],
)
def test_copies_read(tmp_path, lines, advert_int, want):
    cfg, problems = read(tmp_path, conf(*lines, advert_int=advert_int))
    assert not problems, problems
    i = cfg.instances[0]
    assert (i.advert_copies, i.advert_copy_delay_ms) == want
    assert json.loads(cfg.to_json())["instances"][0]["advert_copies"] == want[0]  # --dump-json and -d


def test_copies_that_do_not_fit_in_the_interval_are_refused_at_their_line(tmp_path):
    text = conf("advert_copies 3", "advert_copy_delay 0.05")  # the third copy at 100 ms: the next advert
    cfg, problems = read(tmp_path, text)
    assert cfg is None
    line = text.splitlines().index("    advert_copy_delay 0.05") + 1
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path}/keepalived.conf:{line}: "), problems
    assert "do not fit in the advert interval" in problems[0]


@pytest.mark.parametrize(
    ("line", "what"),
    [("advert_copies 0", "advert_copies"), ("advert_copies 11", "advert_copies"),
     ("advert_copy_delay 0", "advert_copy_delay"), ("advert_copy_delay soon", "advert_copy_delay")],
)  # fmt: skip
def test_bad_values_are_refused_at_their_line(tmp_path, line, what):
    text = conf(line)
    cfg, problems = read(tmp_path, text)
    n = text.splitlines().index(f"    {line}") + 1
    assert cfg is None and len(problems) == 1 and f":{n}: {what}" in problems[0], problems


def test_keepalived_layout_dumps_show_copies_only_when_set(tmp_path):
    """keepalived's JSON and data files keep keepalived's keys by default; copies appear when set."""
    for lines, shown in (((), False), (("advert_copies 2",), True)):
        cfg, _ = read(tmp_path, conf(*lines))
        row = dumps.InstanceDump(
            cfg=cfg.instances[0], state="MASTER", effective_priority=100, ifname="eth0", parent_ifname=None,
            src_ip="192.0.2.1", master_src=None, master_priority=0, master_adver_int_ms=100,
            last_transition=0.0, read_timeout=None, master_down_us=0, vipset=True, faults=0,
        )  # fmt: skip
        d = dumps.json_data(row, {})
        assert ("advert_copies" in d) is shown
        text = "\n".join(dumps._instance_timers(row))
        assert ("Advert copies = 2, 0.005 secs apart" in text) is shown


# --- engine -----------------------------------------------------------------------------------------------
def master_slot(fast_path: bool = True, copies: int = 3, delay_us: int = 5000):
    eng = _engine.Engine(capture=True, fast_path=fast_path)
    rx = eng.add_rx_socket(-1, 4)
    tx = eng.add_tx_socket(-1, 4)
    s = eng.add_slot(rx, 51, 3)
    eng.set_adverts(s, tx, [(MCAST, 0, b"advert")])
    eng.set_copies(s, copies, delay_us)
    return eng, s


def drive(eng, until_us: int) -> list[int]:
    """Run the engine from deadline to deadline; the times at which datagrams went out."""
    out = []
    while 0 <= (t := eng.next_deadline()) <= until_us:
        eng.run(t)
        eng.flush()
        out += [t] * len(eng.take_sent())
    return out


def test_master_fast_path_sends_copies_and_keeps_its_interval():
    eng, s = master_slot()
    eng.master(s, 100_000, 0)
    assert drive(eng, 250_000) == [0, 5000, 10000, 100_000, 105_000, 110_000, 200_000, 205_000, 210_000]
    st = eng.slot_stats(s)
    assert st["sent"] == 9 and st["copies"] == 6 and st["fires"] == 3
    assert eng.deadline(s) == 300_000  # the slot's own deadline never saw the copies
    eng._check_heap()


def test_the_advert_threads_send_due_sends_the_copies_too():
    """send_due (the daemon's advert thread, for a loop held in other work) fires a master and its copies
    exactly as run() does: the same datagrams at the same times."""
    eng, s = master_slot()
    eng.master(s, 100_000, 0)
    out = []
    while 0 <= (t := eng.next_deadline()) <= 250_000:
        eng.send_due(t)  # flushes itself
        out += [t] * len(eng.take_sent())
    assert out == [0, 5000, 10000, 100_000, 105_000, 110_000, 200_000, 205_000, 210_000]
    assert eng.slot_stats(s)["copies"] == 6


def test_send_now_with_a_time_sends_copies_without_one_none():
    eng, s = master_slot(fast_path=False)
    eng.send_now(s)
    eng.flush()
    assert len(eng.take_sent()) == 1 and eng.next_deadline() == -1
    eng.send_now(s, 1000)
    eng.flush()
    assert len(eng.take_sent()) == 1
    assert drive(eng, 50_000) == [6000, 11000]


def test_a_new_send_restarts_the_copies_and_cancel_drops_them():
    eng, s = master_slot()
    eng.send_now(s, 0)
    eng.send_now(s, 3000)  # e.g. an S9 reply: its copies replace those of the advert before
    eng.flush()
    eng.take_sent()
    assert drive(eng, 50_000) == [8000, 13000]
    eng.send_now(s, 100_000)
    eng.cancel_copies(s)
    assert eng.next_deadline() == -1 and drive(eng, 200_000) == []


def test_a_removed_slot_sends_no_copy_and_its_reuse_inherits_none():
    eng, s = master_slot()
    eng.send_now(s, 0)
    eng.flush()
    eng.take_sent()
    eng.remove_slot(s)
    s2 = eng.add_slot(0, 51, 3)
    assert s2 == s
    eng.set_adverts(s2, 0, [(MCAST, 0, b"other")])
    assert eng.next_deadline() == -1 and drive(eng, 100_000) == []


def test_many_slots_copies_in_time_order():
    eng = _engine.Engine(capture=True)
    rx = eng.add_rx_socket(-1, 4)
    tx = eng.add_tx_socket(-1, 4)
    slots = []
    for vrid in range(1, 41):
        s = eng.add_slot(rx, vrid, 3)
        eng.set_adverts(s, tx, [(MCAST, 0, bytes([vrid]))])
        eng.set_copies(s, 2, 1000 * (vrid % 7 + 1))
        eng.master(s, 100_000, vrid * 10)
        slots.append(s)
    times = drive(eng, 399_999)
    assert times == sorted(times) and len(times) == 40 * 4 * 2
    assert sum(eng.slot_stats(s)["copies"] for s in slots) == 160


def test_set_copies_checks_its_arguments():
    eng, s = master_slot()
    for copies, delay in ((0, 1000), (256, 1000), (2, 0)):
        with pytest.raises(ValueError):
            eng.set_copies(s, copies, delay)
    eng.set_copies(s, 1, 0)  # back to one: nothing pending
    eng.send_now(s, 0)
    assert eng.next_deadline() == -1
