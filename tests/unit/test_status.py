"""`fastvrrp status`: the file the daemon writes (atomically) and what the command makes of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from fastvrrp.daemon import status
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.tools.status import EXIT_BAD, EXIT_MISSING, EXIT_OK, EXIT_STALE, main


def _inst(**kw):
    base = dict(
        name="VI_1",
        state="MASTER",
        since=time.time() - 125,
        reason="master down timer expired",
        priority=100,
        base_priority=100,
        master="192.0.2.1",
        vips=["192.0.2.100/24", "192.0.2.101/24"],
        interface="eth0",
        family=4,
        vrid=51,
        vrrp_version=3,
        adverts_rx=0,
        adverts_tx=42,
    )
    base.update(kw)
    return status.InstanceStatus(**base)


def _write(path, insts, **kw):
    status.write_status(str(path), status.snapshot(insts, version="0.1", **kw))


def test_written_schema_round_trips(tmp_path):
    path = tmp_path / "run" / "status.json"  # the directory is created
    _write(path, [_inst()])
    doc = json.loads(path.read_text())
    assert doc["schema"] == 1 and doc["pid"] == os.getpid() and doc["version"] == "0.1"
    i = doc["instances"][0]
    assert (
        i["name"] == "VI_1" and i["state"] == "MASTER" and i["vips"] == ["192.0.2.100/24", "192.0.2.101/24"]
    )
    assert i["master"] == "192.0.2.1" and i["reason"] == "master down timer expired" and i["adverts_tx"] == 42
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]  # no temporary left behind


def test_streamed_text_is_the_one_json_document(tmp_path):
    # The file is written a few rows at a time (docs/costs.md#memory): the text must be exactly what one
    # json.dumps of the whole document gives, whatever the number of rows against the piece size.
    n_piece = status.ROWS_PER_PIECE
    for n in (0, 1, n_piece - 1, n_piece, n_piece + 1, 3 * n_piece + 5):
        insts = [
            _inst(name=f"VI_{k}", master=None if k % 2 else "192.0.2.1", vips=[], reason='r\u00e9"')
            for k in range(n)
        ]
        path = tmp_path / f"status-{n}.json"
        _write(path, insts, now=12.5)
        whole = status.snapshot(insts, version="0.1", now=12.5)
        whole["instances"] = list(whole["instances"])
        assert path.read_text() == json.dumps(whole, separators=(",", ":")) + "\n"
        assert [i["name"] for i in json.loads(path.read_text())["instances"]] == [i.name for i in insts]


def test_rows_are_made_while_the_file_is_written():
    made = []

    def rows():
        for k in range(5 * status.ROWS_PER_PIECE):
            made.append(k)
            yield _inst(name=f"VI_{k}")

    pieces = status._text(status.snapshot(rows()))
    next(pieces)  # the head
    assert made == []
    next(pieces)
    assert len(made) == status.ROWS_PER_PIECE  # one piece of rows at a time, not the whole list


def test_writes_are_atomic_for_a_concurrent_reader(tmp_path):
    path = tmp_path / "status.json"
    _write(path, [_inst()])
    stop = threading.Event()
    bad = []

    def reader():
        while not stop.is_set():
            try:
                json.loads(path.read_text())
            except ValueError as exc:
                bad.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for n in range(300):
            _write(path, [_inst(name=f"VI_{k}", adverts_tx=n) for k in range(50)])
    finally:
        stop.set()
        t.join()
    assert bad == []


def test_table_shows_who_holds_what_and_why(tmp_path, capsys):
    path = tmp_path / "status.json"
    _write(
        path,
        [
            _inst(),
            _inst(name="VI_2", state="BACKUP", priority=90, base_priority=100, master="192.0.2.2",
                  reason="higher priority advert", vips=["2001:db8::100/64"], since=time.time() - 3700),
        ],
    )  # fmt: skip
    assert main(["-f", str(path)]) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("fastvrrp 0.1 on ") and f"pid {os.getpid()}" in out[0]
    assert out[1].split() == ["INSTANCE", "STATE", "PRIO", "VIPS", "MASTER", "SINCE", "WHY"]
    assert out[2].split() == ["VI_1", "MASTER", "100", "192.0.2.100/24,192.0.2.101/24", "192.0.2.1", "2m05s",
                              "master", "down", "timer", "expired"]  # fmt: skip
    assert out[3].split()[:6] == ["VI_2", "BACKUP", "90/100", "2001:db8::100/64", "192.0.2.2", "1h01m"]
    assert out[3].endswith("higher priority advert")
    assert out[1].index("STATE") == out[2].index("MASTER")  # columns line up


def test_table_shows_drain_and_offset(tmp_path, capsys):
    """`fastvrrp ctl drain` / `priority`: the PRIO column says so (effective/base, offset, drained)."""
    path = tmp_path / "status.json"
    _write(path, [_inst(priority=1, drained=True), _inst(name="VI_2", priority=130, offset=30)])
    assert main(["-f", str(path)]) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out[2].split()[:4] == ["VI_1", "MASTER", "1/100", "drained"]
    assert out[3].split()[:4] == ["VI_2", "MASTER", "130/100", "+30"]
    assert out[1].index("VIPS") == out[2].index("192.0.2.100/24")  # columns still line up


def test_json_output(tmp_path, capsys):
    path = tmp_path / "status.json"
    _write(path, [_inst()])
    assert main(["--file", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["stale"] is False and doc["instances"][0]["name"] == "VI_1"


def test_missing_file_says_so(tmp_path, capsys):
    assert main(["-f", str(tmp_path / "absent.json")]) == EXIT_MISSING
    assert "does not exist: is fastvrrp running" in capsys.readouterr().err


def test_dead_daemon_is_reported(tmp_path, capsys):
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()  # a pid that just exited (and was reaped): nobody has it now
    path = tmp_path / "status.json"
    _write(path, [_inst()], pid=p.pid)
    assert main(["-f", str(path)]) == EXIT_STALE
    captured = capsys.readouterr()
    assert f"fastvrrp (pid {p.pid}) is not running" in captured.err
    assert "VI_1" in captured.out  # still shows what it last knew


def test_old_file_of_a_live_pid_is_stale(tmp_path, capsys):
    path = tmp_path / "status.json"
    _write(path, [_inst()], now=time.time() - 60, interval_s=5)
    assert main(["-f", str(path)]) == EXIT_STALE
    assert "stale: written 1m00s ago" in capsys.readouterr().err
    assert main(["-f", str(path), "--max-age", "120"]) == EXIT_OK


def test_not_a_status_file(tmp_path, capsys):
    path = tmp_path / "status.json"
    path.write_text('{"hello": 1}')
    assert main(["-f", str(path)]) == EXIT_BAD
    path.write_text("{half")
    assert main(["-f", str(path)]) == EXIT_BAD


def test_status_book_writes_on_transition_and_periodically(tmp_path):
    book = status.StatusBook(str(tmp_path / "s.json"), interval_s=0.2)
    assert book.due()
    book.transition("VI_1", "preempted by higher priority", wall=1000.0)
    assert book.write([_inst(since=book.since["VI_1"][0], reason=book.since["VI_1"][1])])
    assert not book.due()
    wait_for(book.due, 5, 0.02, what="the periodic write")
    i = json.loads((tmp_path / "s.json").read_text())["instances"][0]
    assert (i["since"], i["reason"]) == (1000.0, "preempted by higher priority")


def test_cli_dispatch(tmp_path):
    path = tmp_path / "status.json"
    _write(path, [_inst()])
    r = subprocess.run(
        [sys.executable, "-m", "fastvrrp", "status", "-f", str(path)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert "VI_1" in r.stdout and "192.0.2.100/24" in r.stdout
