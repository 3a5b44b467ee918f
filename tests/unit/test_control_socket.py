"""The control API's pieces that need no daemon: the private socket's safety checks (real directories and
sockets in tmp_path), request checking, the operator state and the `fastvrrp ctl` client's exit codes.
The daemon side runs for real in tests/netns/test_control_api.py."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading

import pytest

from fastvrrp import cli
from fastvrrp.core.priority import Effective
from fastvrrp.daemon.control import Operator, RequestError, _parse
from fastvrrp.io.unix_socket import (
    PrivateSocketError,
    check_directories,
    open_private_socket,
    peer_credentials,
    remove_socket,
)
from fastvrrp.tools import ctl

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


def private_dir(tmp_path, mode: int = 0o755) -> str:
    d = tmp_path / "ctl"
    d.mkdir()
    os.chmod(d, mode)
    return str(d)


# --- the directory and the socket --------------------------------------------------------------------------


def test_world_writable_directory_without_sticky_bit_is_refused(tmp_path):
    d = private_dir(tmp_path, 0o777)
    with pytest.raises(PrivateSocketError, match="writable by others without the sticky bit"):
        check_directories(d)


def test_group_writable_directory_is_refused(tmp_path):
    with pytest.raises(PrivateSocketError, match="writable by its group"):
        check_directories(private_dir(tmp_path, 0o775))


def test_sticky_world_writable_directory_is_accepted(tmp_path):
    check_directories(private_dir(tmp_path, 0o1777))  # as /tmp: others cannot remove or rename our socket


def test_an_unsafe_parent_directory_is_refused(tmp_path):
    os.chmod(tmp_path, 0o777)
    try:
        inner = tmp_path / "inner"
        inner.mkdir(mode=0o755)
        with pytest.raises(PrivateSocketError, match=str(tmp_path)):
            check_directories(str(inner))
    finally:
        os.chmod(tmp_path, 0o700)


@root_only
def test_a_directory_owned_by_another_user_is_refused(tmp_path):
    d = private_dir(tmp_path)
    os.chown(d, 65534, 65534)
    with pytest.raises(PrivateSocketError, match="belongs to uid 65534"):
        check_directories(d)


def test_the_socket_is_0600_and_ours_from_the_start(tmp_path):
    path = os.path.join(private_dir(tmp_path), "c.sock")
    old = os.umask(0)  # a careless umask must not leak into the socket's mode
    try:
        sock, ino = open_private_socket(path)
    finally:
        os.umask(old)
    try:
        st = os.lstat(path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
        assert st.st_ino == ino
    finally:
        sock.close()
        remove_socket(path, ino)
    assert not os.path.exists(path)


def test_missing_directory_is_made_0755(tmp_path):
    path = os.path.join(private_dir(tmp_path), "run", "fastvrrp", "control.sock")
    sock, ino = open_private_socket(path)
    sock.close()
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) & 0o022 == 0
    remove_socket(path, ino)


def test_a_stale_socket_is_replaced(tmp_path):
    path = os.path.join(private_dir(tmp_path), "c.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()  # the file stays, nobody listens: a daemon that died
    sock, ino = open_private_socket(path)
    sock.close()
    remove_socket(path, ino)


def test_a_live_socket_is_not_taken_over(tmp_path):
    path = os.path.join(private_dir(tmp_path), "c.sock")
    sock, ino = open_private_socket(path)
    try:
        with pytest.raises(PrivateSocketError, match="answers on"):
            open_private_socket(path)
        assert os.lstat(path).st_ino == ino
    finally:
        sock.close()
        remove_socket(path, ino)


def test_a_file_that_is_not_a_socket_is_left_alone(tmp_path):
    path = os.path.join(private_dir(tmp_path), "c.sock")
    with open(path, "w") as f:
        f.write("precious\n")
    with pytest.raises(PrivateSocketError, match="not a socket"):
        open_private_socket(path)
    with open(path) as f:
        assert f.read() == "precious\n"


def test_remove_socket_leaves_a_successor_alone(tmp_path):
    path = os.path.join(private_dir(tmp_path), "c.sock")
    sock, ino = open_private_socket(path)
    sock.close()
    os.link(path, path + ".kept")  # keeps the inode in use, so the successor cannot get its number
    os.unlink(path)
    sock2, ino2 = open_private_socket(path)  # another daemon took the path meanwhile
    remove_socket(path, ino)
    assert os.path.exists(path)
    sock2.close()
    remove_socket(path, ino2)


def test_peer_credentials_name_the_connecting_process(tmp_path):
    path = os.path.join(private_dir(tmp_path), "c.sock")
    sock, ino = open_private_socket(path)
    sock.setblocking(True)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.connect(path)
            conn, _ = sock.accept()
            with conn:
                peer = peer_credentials(conn)
        with open(f"/proc/{os.getpid()}/comm") as f:
            comm = f.read().strip()
        assert (peer.pid, peer.uid, peer.comm) == (os.getpid(), os.geteuid(), comm)
        assert str(peer) == f"pid {os.getpid()} uid {os.geteuid()} ({comm})"
    finally:
        sock.close()
        remove_socket(path, ino)


# --- requests ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{", "not a JSON object"),
        (b"\xff\xfe", "not a JSON object"),
        (b"[1]", "a JSON object with an op"),
        (b'{"op": 3}', "unknown op 3"),
        (b'{"op": "drain"}', "drain needs names"),
        (b'{"op": "drain", "names": "VI_1"}', "non-empty list"),
        (b'{"op": "reset", "names": ["VI_1", ""]}', "non-empty list"),
        (b'{"op": "priority", "names": ["VI_1"]}', "integer from -253 to 253"),
        (b'{"op": "priority", "names": ["VI_1"], "delta": 254}', "integer from -253 to 253"),
        (b'{"op": "priority", "names": ["VI_1"], "delta": "5"}', "integer"),
        (b'{"op": "priority", "names": ["VI_1"], "delta": false}', "integer"),
    ],
)
def test_bad_requests_get_a_clear_answer(line, message):
    with pytest.raises(RequestError, match=message):
        _parse(line)


def test_good_requests_pass():
    assert _parse(b'{"op": "status"}') == {"op": "status"}
    assert _parse(b'{"op": "priority", "names": ["all"], "delta": -253}')["delta"] == -253


def test_operator_offsets_and_forgetting_removed_instances():
    op = Operator({"VI_1", "VI_2"}, {"VI_1": -20, "VI_3": 5})
    eff = Effective(priority=100, fault=False, waiting=False, total=100)
    assert op.adjust("VI_1", eff, owner=False).priority == 80
    assert op.adjust("VI_2", eff, owner=False) is eff
    assert op.adjust("VI_1", Effective(255, False, False, 255), owner=True).priority == 255
    op.keep_only(["VI_1", "VI_3"])
    assert op.drained == {"VI_1"} and op.offsets == {"VI_1": -20, "VI_3": 5}


# --- the client --------------------------------------------------------------------------------------------


def test_client_without_a_daemon_exits_2(tmp_path, capsys):
    assert ctl.main(["--control", str(tmp_path / "absent.sock"), "status"]) == ctl.EXIT_UNREACHABLE
    assert "no fastvrrp answers on" in capsys.readouterr().err


def test_client_usage_errors_exit_64(capsys):
    assert ctl.main(["priority", "VI_1"]) == ctl.EXIT_USAGE
    assert ctl.main(["drain"]) == ctl.EXIT_USAGE
    assert ctl.main(["explode"]) == ctl.EXIT_USAGE
    assert cli.main(["ctl", "undrain"]) == ctl.EXIT_USAGE


def test_help_documents_the_exit_codes(capsys):
    assert cli.main(["ctl", "--help"]) == 0
    out = capsys.readouterr().out
    assert "exit status: 0 done; 1 the daemon refused" in out and "3 permission denied" in out


def _one_reply_server(path: str, reply: bytes, seen: list) -> threading.Thread:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        with conn, srv:
            seen.append(conn.makefile("rb").readline())
            conn.sendall(reply)

    t = threading.Thread(target=serve)
    t.start()
    return t


def test_client_sends_one_json_line_and_prints_the_rows(tmp_path, capsys):
    path = str(tmp_path / "c.sock")
    row = {"name": "VI_1", "state": "BACKUP", "priority": 1, "tracked_priority": 170, "base_priority": 200,
           "offset": -30, "drained": True, "owner": False, "master": "192.0.2.2"}  # fmt: skip
    seen: list = []
    t = _one_reply_server(path, json.dumps({"ok": True, "instances": [row]}).encode() + b"\n", seen)
    assert ctl.main(["--control", path, "priority", "VI_1", "-30"]) == 0
    t.join()
    assert json.loads(seen[0]) == {"op": "priority", "names": ["VI_1"], "delta": -30}
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "INSTANCE",
        "STATE",
        "PRIO",
        "TRACKED",
        "BASE",
        "OFFSET",
        "DRAINED",
        "GROUP",
        "MASTER",
    ]
    assert out[1].split() == ["VI_1", "BACKUP", "1", "170", "200", "-30", "yes", "-", "192.0.2.2"]


@pytest.mark.parametrize(
    ("reply", "code", "message"),
    [
        (b'{"ok": false, "error": "unknown instance or sync group: X"}\n', 1, "unknown instance"),
        (b'{"ok": false, "error": "permission denied: uid 5 is not root"}\n', 3, "permission denied"),
        (b"garbage\n", 2, "Expecting value"),
        (b'{"no": 1}\n', 2, "not a control reply"),
        (b"", 2, "without a reply"),
    ],
)
def test_client_exit_codes_follow_the_reply(tmp_path, capsys, reply, code, message):
    path = str(tmp_path / "c.sock")
    t = _one_reply_server(path, reply, [])
    assert ctl.main(["--control", path, "drain", "X"]) == code
    t.join()
    assert message in capsys.readouterr().err
