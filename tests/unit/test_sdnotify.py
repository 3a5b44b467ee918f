"""systemd's notify protocol: NOTIFY_SOCKET parsing, the message format, the watchdog variables, the STATUS=
text, and the sender and its batching on a real AF_UNIX datagram socket and a real event loop."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from fastvrrp.daemon import sdnotify
from fastvrrp.daemon.sdnotify import (
    NotifySocket,
    ServiceNotifier,
    format_message,
    socket_address,
    status_text,
    watchdog_interval_us,
)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")  # as tests/conftest.py


def parse(data: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in data.decode().splitlines())


@pytest.fixture
def receiver(tmp_path):
    """A bound datagram socket standing in for systemd's notify socket."""
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(5)
    yield path, s
    s.close()


def drain(sock: socket.socket) -> list[dict[str, str]]:
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(parse(sock.recv(4096)))
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(5)
    return out


# --- NOTIFY_SOCKET ---------------------------------------------------------------------------------------


def test_socket_address_path_and_abstract():
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@/org/freedesktop/systemd1/notify/123") == "\0/org/freedesktop/systemd1/notify/123"
    assert socket_address(None) is None
    assert socket_address("") is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("relative/path", "neither an absolute path"),
        ("@", "names no abstract socket"),
        ("/" + "x" * 200, "longer than an AF_UNIX path"),
    ],
)
def test_socket_address_refuses_with_a_reason(value, reason):
    with pytest.raises(ValueError, match=reason):
        socket_address(value)


# --- messages --------------------------------------------------------------------------------------------


def test_format_message_lines():
    msg = format_message([("READY", 1), ("STATUS", "3 instances: 1 MASTER, 2 BACKUP"), ("MAINPID", 42)])
    assert msg == b"READY=1\nSTATUS=3 instances: 1 MASTER, 2 BACKUP\nMAINPID=42"


def test_format_message_keeps_a_value_on_one_line():
    assert format_message([("STATUS", "a\nREADY=1\r")]) == b"STATUS=a READY=1 "


@pytest.mark.parametrize("key", ["ready", "", "1READY", "READY=1", "STA TUS"])
def test_format_message_refuses_a_bad_key(key):
    with pytest.raises(ValueError, match="not a notify variable name"):
        format_message([(key, 1)])


def test_format_message_refuses_nothing():
    with pytest.raises(ValueError, match="empty"):
        format_message([])


@pytest.mark.parametrize(
    ("states", "text"),
    [
        (["BACKUP", "MASTER", "BACKUP"], "3 instances: 1 MASTER, 2 BACKUP"),
        (["FAULT"], "1 instance: 1 FAULT"),
        ([], "0 instances"),
        (["INIT", "MASTER", "FAULT", "BACKUP"], "4 instances: 1 MASTER, 1 BACKUP, 1 FAULT, 1 INIT"),
        (["MASTER"] * 1000, "1000 instances: 1000 MASTER"),
    ],
)
def test_status_text(states, text):
    assert status_text(states) == text


def test_monotonic_usec_is_clock_monotonic():
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    got = sdnotify.monotonic_usec()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert before <= got <= after


@pytest.fixture
def systemd_notify() -> str:
    found = shutil.which("systemd-notify")
    if found is None:
        if IN_CI:
            pytest.fail("systemd-notify (Debian package systemd) is required under CI=true; `make deps`")
        pytest.skip("systemd-notify is not installed")
    return found


@pytest.mark.parametrize("abstract", [False, True])
def test_same_datagram_as_systemd_notify(systemd_notify, tmp_path, abstract):
    """systemd's own sender is the oracle: for the same variables and the same NOTIFY_SOCKET value (a path,
    or an '@' abstract name) the receiver gets the same bytes from it and from us."""
    if abstract:
        value = "@fastvrrp-test-" + uuid.uuid4().hex
        bind_to = "\0" + value[1:]
    else:
        value = bind_to = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(bind_to)
    s.settimeout(5)
    try:
        text = "3 instances: 1 MASTER, 2 BACKUP"
        subprocess.run(
            [systemd_notify, "--no-block", "--ready", f"--status={text}", "RELOADING=1", "MONOTONIC_USEC=12"],
            env=dict(os.environ, NOTIFY_SOCKET=value),
            capture_output=True,
            timeout=30,
        )
        theirs = s.recv(4096)
        ours_sock = NotifySocket(socket_address(value))
        assert ours_sock.send(("READY", 1), ("STATUS", text), ("RELOADING", 1), ("MONOTONIC_USEC", 12))
        ours_sock.close()
        assert s.recv(4096) == theirs
    finally:
        s.close()


# --- the watchdog variables ------------------------------------------------------------------------------


def test_watchdog_interval():
    assert watchdog_interval_us({"WATCHDOG_USEC": "2000000"}, 7) == 2_000_000
    assert watchdog_interval_us({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "7"}, 7) == 2_000_000
    assert watchdog_interval_us({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "8"}, 7) is None  # not ours
    assert watchdog_interval_us({}, 7) is None


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"WATCHDOG_USEC": "0"}, "positive"),
        ({"WATCHDOG_USEC": "-5"}, "positive"),
        ({"WATCHDOG_USEC": "2s"}, "positive"),
        ({"WATCHDOG_USEC": "100", "WATCHDOG_PID": "me"}, "not a process id"),
    ],
)
def test_watchdog_interval_refuses_with_a_reason(env, reason):
    with pytest.raises(ValueError, match=reason):
        watchdog_interval_us(env, 7)


# --- the sender on real sockets --------------------------------------------------------------------------


def test_send_to_a_path(receiver):
    path, s = receiver
    ns = NotifySocket(socket_address(path))
    assert ns.send(("READY", 1), ("STATUS", "ok"))
    assert parse(s.recv(4096)) == {"READY": "1", "STATUS": "ok"}
    ns.close()


def test_send_to_an_abstract_name():
    name = "fastvrrp-test-" + uuid.uuid4().hex
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(5)
    try:
        ns = NotifySocket(socket_address("@" + name))
        assert ns.send(("WATCHDOG", 1))
        assert s.recv(4096) == b"WATCHDOG=1"
        ns.close()
    finally:
        s.close()


def test_disabled_without_an_address():
    ns = NotifySocket(None)
    assert not ns.enabled
    assert ns.send(("READY", 1)) is False
    assert ns.failures == 0


def test_failed_sends_are_logged_once_and_do_not_raise(tmp_path, caplog):
    ns = NotifySocket(str(tmp_path / "nobody-listens"))
    with caplog.at_level(logging.WARNING, logger="fastvrrp"):
        for _ in range(5):
            assert ns.send(("WATCHDOG", 1)) is False
    warnings = [r for r in caplog.records if "cannot notify the service manager" in r.getMessage()]
    assert len(warnings) == 1
    assert "nobody-listens" in warnings[0].getMessage()
    assert ns.failures == 5


def test_from_environ_takes_the_variables_out(receiver):
    path, _ = receiver
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid()), "X": "y"}
    loop = asyncio.new_event_loop()
    try:
        sn = ServiceNotifier.from_environ(loop, list, env)
    finally:
        loop.close()
    assert sn.enabled and sn.watchdog_us == 3_000_000
    assert env == {"X": "y"}  # scripts the daemon runs do not inherit them


def test_from_environ_bad_values_disable_with_a_warning(caplog):
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.WARNING, logger="fastvrrp"):
            sn = ServiceNotifier.from_environ(loop, list, {"NOTIFY_SOCKET": "notify", "WATCHDOG_USEC": "x"})
    finally:
        loop.close()
    assert not sn.enabled and sn.watchdog_us is None
    text = caplog.text
    assert "not notifying the service manager" in text and "not feeding the watchdog" in text


def test_no_watchdog_without_a_socket():
    loop = asyncio.new_event_loop()
    try:
        sn = ServiceNotifier.from_environ(loop, list, {"WATCHDOG_USEC": "1000000"})
    finally:
        loop.close()
    assert sn.watchdog_us is None


# --- the life cycle on a real loop -----------------------------------------------------------------------


def run(coro):
    return asyncio.run(coro)


def test_ready_reload_stop_sequence(receiver):
    path, s = receiver
    states = ["MASTER", "BACKUP", "BACKUP"]

    async def go():
        sn = ServiceNotifier(asyncio.get_running_loop(), NotifySocket(path), lambda: states)
        sn.reloading()  # before READY=1: part of starting, nothing sent
        sn.reloaded()
        sn.ready()
        sn.reloading()
        sn.reloaded(refused=True)
        sn.reloading()
        sn.reloaded()
        sn.stopping()
        sn.reloading()  # after STOPPING=1: nothing
        sn.close()

    run(go())
    msgs = drain(s)
    assert [m.keys() & {"READY", "RELOADING", "STOPPING"} for m in msgs] == [
        {"READY"},
        {"RELOADING"},
        {"READY"},
        {"RELOADING"},
        {"READY"},
        {"STOPPING"},
    ]
    assert msgs[0]["STATUS"] == "3 instances: 1 MASTER, 2 BACKUP"
    assert msgs[0]["MAINPID"] == str(os.getpid())
    assert "MAINPID" not in msgs[2]  # once is enough
    mono = int(msgs[1]["MONOTONIC_USEC"])
    assert abs(mono - sdnotify.monotonic_usec()) < 60_000_000
    assert msgs[2]["STATUS"] == "3 instances: 1 MASTER, 2 BACKUP" + sdnotify.REFUSED_NOTE
    assert msgs[4]["STATUS"] == "3 instances: 1 MASTER, 2 BACKUP"  # a good reload clears the note
    assert msgs[5]["STATUS"].startswith("stopping: 3 instances")


def test_a_burst_of_transitions_is_one_datagram_and_updates_are_spaced(receiver):
    path, s = receiver
    states = ["BACKUP"] * 1000

    async def go():
        loop = asyncio.get_running_loop()
        sn = ServiceNotifier(loop, NotifySocket(path), lambda: states)
        sn.ready()
        for i in range(1000):  # a mass transition: 1000 calls
            states[i] = "MASTER"
            sn.states_changed()
        await asyncio.sleep(0)
        while sn._status_timer is not None:
            await asyncio.sleep(0.01)
        first = loop.time()
        for i in range(1000):
            states[i] = "FAULT"
            sn.states_changed()
        while sn._status_timer is not None:
            await asyncio.sleep(0.01)
        second = loop.time()
        sn.states_changed()  # nothing changed since: no datagram
        while sn._status_timer is not None:
            await asyncio.sleep(0.01)
        sn.close()
        return first, second

    first, second = run(go())
    msgs = drain(s)
    assert [m["STATUS"] for m in msgs] == [
        "1000 instances: 1000 BACKUP",  # READY=1
        "1000 instances: 1000 MASTER",
        "1000 instances: 1000 FAULT",
    ]
    # The second update waited for the rate limit (a lower bound only: a loaded machine may be later).
    assert second - first >= sdnotify.STATUS_MIN_INTERVAL_S * 0.9


def test_watchdog_pings_from_the_loop(receiver):
    path, s = receiver

    async def go():
        sn = ServiceNotifier(asyncio.get_running_loop(), NotifySocket(path), list, watchdog_us=200_000)
        sn.start_watchdog()
        await asyncio.sleep(0.55)
        sn.close()

    t0 = time.monotonic()
    run(go())
    took = time.monotonic() - t0
    pings = [m for m in drain(s) if m == {"WATCHDOG": "1"}]
    # One at once, then one per 100 ms: never more than the elapsed time allows, at least the first two.
    assert 2 <= len(pings) <= int(took / 0.1) + 1, (len(pings), took)
