"""fastvrrp.daemon.logs on real sockets and files: the syslog datagram form, priorities, a missing, full or
restarted syslog socket, and the -g file's buffering."""

from __future__ import annotations

import logging
import os
import re
import socket
import syslog
import time
from types import SimpleNamespace

import pytest

from fastvrrp.daemon import logs

_FORM = re.compile(r"^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d (\S+)\[(\d+)\]: (.*)$", re.S)


def record(level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord("fastvrrp", level, __file__, 1, msg, None, None)


@pytest.fixture
def server(tmp_path):
    path = str(tmp_path / "log.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(2)
    yield path, s
    s.close()


def handler_for(path: str, facility: int = syslog.LOG_DAEMON, ident: str = "fastvrrp") -> logs.SyslogHandler:
    h = logs.SyslogHandler(path, facility, ident)
    h.setFormatter(logging.Formatter("%(message)s"))
    return h


@pytest.mark.parametrize(
    "level,severity",
    [
        (logging.CRITICAL, syslog.LOG_CRIT),
        (logging.ERROR, syslog.LOG_ERR),
        (logging.WARNING, syslog.LOG_WARNING),
        (logging.INFO, syslog.LOG_INFO),
        (logging.DEBUG, syslog.LOG_DEBUG),
    ],
)
def test_datagram_has_syslog3_form_and_priority(server, level, severity):
    path, s = server
    h = handler_for(path, syslog.LOG_LOCAL5, "Keepalived_vrrp")
    h.emit(record(level, "(VI_1) Entering MASTER STATE"))
    m = _FORM.match(s.recv(4096).decode())
    assert m, "not in syslog(3)'s form"
    assert int(m[1]) == syslog.LOG_LOCAL5 | severity == (21 << 3) + severity
    assert (m[2], int(m[3]), m[4]) == ("Keepalived_vrrp", os.getpid(), "(VI_1) Entering MASTER STATE")
    h.close()


def test_missing_socket_is_quiet_and_found_when_it_appears(tmp_path, capsys):
    path = str(tmp_path / "later.sock")
    h = handler_for(path)
    h.emit(record(logging.ERROR, "nobody listens"))
    assert h.dropped == 1 and capsys.readouterr().err == "", "no traceback, no noise"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(2)
    h.emit(record(logging.INFO, "too soon"))  # the next connect attempt waits a second
    assert h.dropped == 2
    h._next_connect = 0.0  # the second has passed
    h.emit(record(logging.INFO, "now"))
    assert s.recv(4096).decode().endswith("]: now")
    note = s.recv(4096).decode()
    assert note.startswith("<28>") and "2 log message(s) were dropped" in note
    assert h.dropped == 0
    s.close()
    h.close()


def test_full_socket_drops_without_blocking_and_counts(server):
    path, s = server
    h = handler_for(path)
    t = time.monotonic()
    for i in range(200):  # far past the queue (net.unix.max_dgram_qlen, 10 by default)
        h.emit(record(logging.INFO, f"line {i}"))
    assert time.monotonic() - t < 1.0, "emit must never wait for the reader"
    assert h.dropped > 0
    lost = h.dropped
    got = []
    s.settimeout(0)
    while True:
        try:
            got.append(s.recv(4096).decode())
        except BlockingIOError:
            break
    assert len(got) + lost == 200
    h.emit(record(logging.INFO, "after"))
    s.settimeout(2)
    assert s.recv(4096).decode().endswith("]: after")
    assert f"{lost} log message(s) were dropped" in s.recv(4096).decode()
    h.close()


def test_restarted_syslog_is_reconnected(server, tmp_path):
    path, s = server
    h = handler_for(path)
    h.emit(record(logging.INFO, "one"))
    assert s.recv(4096).decode().endswith("]: one")
    s.close()
    os.unlink(path)
    h.emit(record(logging.INFO, "lost"))  # ECONNREFUSED: the socket is dropped, no exception
    s2 = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s2.bind(path)
    s2.settimeout(2)
    h._next_connect = 0.0
    h.emit(record(logging.INFO, "two"))
    assert s2.recv(4096).decode().endswith("]: two")
    s2.close()
    h.close()


def test_log_file_is_buffered_unless_flush_each(tmp_path):
    path = tmp_path / "k.log"
    h = logs.LogFileHandler(str(path), flush_each=False)
    h.setFormatter(logging.Formatter("%(message)s"))
    h.emit(record(logging.INFO, "held in the buffer"))
    assert path.read_text() == ""
    h.emit(record(logging.WARNING, "a warning flushes"))
    assert path.read_text() == "held in the buffer\na warning flushes\n"
    h.emit(record(logging.INFO, "at exit"))
    h.close()
    assert path.read_text().endswith("at exit\n")
    flushed = logs.LogFileHandler(str(tmp_path / "f.log"), flush_each=True)
    flushed.setFormatter(logging.Formatter("%(message)s"))
    flushed.emit(record(logging.INFO, "at once"))
    assert (tmp_path / "f.log").read_text() == "at once\n"
    flushed.close()


def test_setup_follows_the_options(tmp_path, monkeypatch):
    monkeypatch.setenv(logs.SYSLOG_SOCKET_ENV, str(tmp_path / "s.sock"))
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("fastvrrp").level
    try:
        args = SimpleNamespace(log_facility="local3", log_console=False, log_file=None, log_detail=False)
        hs = logs.setup(args, netns="blue")
        (sh,) = hs
        assert isinstance(sh, logs.SyslogHandler)
        assert (sh.path, sh.facility, sh.ident) == (
            str(tmp_path / "s.sock"),
            syslog.LOG_LOCAL3,
            "fastvrrp_blue",
        )
        assert logging.getLogger("fastvrrp").level == logging.INFO
        args = SimpleNamespace(
            no_syslog=True, log_console=True, log_file=str(tmp_path / "x.log"), log_detail=True
        )
        hs = logs.setup(args)
        assert [type(h) for h in hs] == [logging.StreamHandler, logs.LogFileHandler]
        assert logs.has_console(hs) and logging.getLogger("fastvrrp").level == logging.DEBUG
        for h in hs:
            h.close()
    finally:
        for h in root.handlers[:]:
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
        logging.getLogger("fastvrrp").setLevel(saved[2])
