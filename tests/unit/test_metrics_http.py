"""The metrics endpoint's own HTTP server and process families, without a client library.

The request handler is driven over a socketpair (no network); the listening server is exercised in a
network namespace by tests/netns/test_metrics_http_server.py. The process_* families are compared with
prometheus_client's ProcessCollector (a test dependency only) for this same process."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
import threading

import pytest

from fastvrrp.daemon import metrics, metrics_http, process_metrics

BODY = [b"a_metric 1\n" * 500, b"b_metric 2\n" * 500]


def _respond(method: str, path: str, headers: dict[str, str]) -> tuple[int, str, list[bytes]]:
    if path not in ("/", "/metrics"):
        return 404, "text/plain", [b"not found\n"]
    if method not in ("GET", "HEAD"):
        return 405, "text/plain", [b"no\n"]
    return 200, metrics.CONTENT_TYPE, BODY


def _exchange(request: bytes, respond=_respond) -> tuple[int, dict[str, str], bytes, int]:
    """(status, headers, body, status handle() returned) of one request sent over a socketpair."""
    client, server = socket.socketpair()
    got: list[int] = []
    t = threading.Thread(target=lambda: got.append(metrics_http.handle(server, respond)))
    t.start()
    try:
        client.settimeout(10)
        client.sendall(request)
        data = b""
        while chunk := client.recv(65536):
            data += chunk
    finally:
        client.close()
        t.join(10)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body, got[0]


def test_get_metrics_plain_and_gzip():
    status, h, body, _ = _exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200 and body == b"".join(BODY)
    assert h["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert int(h["content-length"]) == len(body) and h["connection"] == "close"
    assert "content-encoding" not in h
    req = b"GET /metrics?x=1 HTTP/1.1\r\nAccept-Encoding: gzip, deflate\r\n\r\n"
    status, h, body, _ = _exchange(req)
    assert status == 200 and h["content-encoding"] == "gzip" and int(h["content-length"]) == len(body)
    assert gzip.decompress(body) == b"".join(BODY) and len(body) < len(b"".join(BODY)) / 10
    status, h, body, _ = _exchange(b"GET / HTTP/1.0\r\nAccept-Encoding: gzip;q=0\r\n\r\n")
    assert status == 200 and "content-encoding" not in h and body == b"".join(BODY)


def test_head_has_the_length_and_no_body():
    status, h, body, _ = _exchange(b"HEAD /metrics HTTP/1.1\r\n\r\n")
    assert status == 200 and body == b"" and int(h["content-length"]) == len(b"".join(BODY))


def test_a_packed_body_is_sent_as_it_is_or_unpacked_in_pieces():
    """A body held gzip-encoded (Packed) goes as it is to a gzip client; a plain client gets the text,
    decompressed in pieces smaller than the whole, with the plain length."""
    text = b"".join(f'x{{iname="VI_{i}"}} {i}\n'.encode() for i in range(60000))  # ~1.3 MB
    packed = metrics_http.Packed(iter([text[:5000], text[5000:]]))
    assert packed.size == len(text) and len(packed.gz) < len(text) / 4
    pieces = list(packed.plain())
    assert b"".join(pieces) == text and len(pieces) > 1
    assert max(map(len, pieces)) <= metrics_http.UNPACK_PIECE

    def respond(method, path, headers):
        return 200, metrics.CONTENT_TYPE, packed

    status, h, body, _ = _exchange(b"GET /metrics HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n", respond)
    assert status == 200 and h["content-encoding"] == "gzip" and body == packed.gz
    status, h, body, _ = _exchange(b"GET /metrics HTTP/1.1\r\n\r\n", respond)
    assert status == 200 and "content-encoding" not in h and body == text
    assert int(h["content-length"]) == len(text)
    status, h, body, _ = _exchange(b"HEAD /metrics HTTP/1.1\r\n\r\n", respond)
    assert status == 200 and body == b"" and int(h["content-length"]) == len(text)


@pytest.mark.parametrize(
    "request_bytes, expected",
    [
        (b"GET /nope HTTP/1.1\r\n\r\n", 404),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /metrics SMTP/2\r\n\r\n", 400),
        (b"GET metrics HTTP/1.1\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),  # a TLS ClientHello
        (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431),
        (b"GET /metrics HTTP/1.1\r\nX: y", 400),  # closed (below) before the end of the headers
    ],
)
def test_bad_requests_are_answered_and_closed(request_bytes, expected):
    client, server = socket.socketpair()
    got: list[int] = []
    t = threading.Thread(target=lambda: got.append(metrics_http.handle(server, _respond)))
    t.start()
    client.settimeout(10)
    try:
        client.sendall(request_bytes)
    except OSError:
        pass  # the server may close after reading MAX_REQUEST bytes of an oversized request
    client.shutdown(socket.SHUT_WR)
    data = b""
    try:
        while chunk := client.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    client.close()
    t.join(10)
    assert not t.is_alive() and got == [expected]
    assert data.startswith(f"HTTP/1.1 {expected} ".encode())
    if expected == 405:
        assert b"\r\nAllow: GET, HEAD\r\n" in data


def test_a_slow_client_is_dropped_after_the_read_timeout(monkeypatch):
    monkeypatch.setattr(metrics_http, "READ_TIMEOUT_S", 0.3)
    client, server = socket.socketpair()
    got: list[int] = []
    t = threading.Thread(target=lambda: got.append(metrics_http.handle(server, _respond)))
    t.start()
    client.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the end of the headers
    t.join(10)
    assert not t.is_alive() and got == [408]
    client.settimeout(5)
    assert client.recv(100).startswith(b"HTTP/1.1 408 ")
    client.close()


def test_an_application_error_is_a_500_and_the_handler_survives_a_vanished_client():
    srv = metrics.MetricsServer(lambda: (_ for _ in ()).throw(RuntimeError("boom")), process=False)
    status, _, body, _ = _exchange(b"GET /metrics HTTP/1.1\r\n\r\n", srv.respond)
    assert status == 500 and b"boom" in body
    client, server = socket.socketpair()
    client.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    client.close()  # gone before the answer: handle() returns, it does not raise
    assert metrics_http.handle(server, _respond) in (0, 200)


def test_accept_encoding_parsing():
    assert metrics_http.accepts_gzip({"accept-encoding": "gzip"})
    assert metrics_http.accepts_gzip({"accept-encoding": "identity, GZIP;q=0.5"})
    assert metrics_http.accepts_gzip({"accept-encoding": "*"})
    assert not metrics_http.accepts_gzip({"accept-encoding": "gzip;q=0"})
    assert not metrics_http.accepts_gzip({"accept-encoding": "gzip; q=0.000"})
    assert not metrics_http.accepts_gzip({"accept-encoding": "deflate"})
    assert not metrics_http.accepts_gzip({})


def _families(text: str) -> dict[str, tuple[str, str, float]]:
    """name -> (help, type, value) of an exposition without labels."""
    helps, types, values = {}, {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, doc = line[7:].partition(" ")
            helps[name] = doc
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            types[name] = kind
        elif line:
            name, _, value = line.partition(" ")
            values[name] = float(value)
    assert set(helps) == set(types) == set(values)
    return {n: (helps[n], types[n], values[n]) for n in helps}


def test_process_families_match_prometheus_client():
    from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    theirs = _families(generate_latest(registry).decode())
    ours = _families(process_metrics.process_text())
    assert (
        list(ours)
        == list(theirs)
        == [
            "process_virtual_memory_bytes",
            "process_resident_memory_bytes",
            "process_start_time_seconds",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
        ]
    )
    for name, (doc, kind, value) in ours.items():
        assert (doc, kind) == theirs[name][:2], name
        tolerance = {
            "process_virtual_memory_bytes": 16 << 20,
            "process_resident_memory_bytes": 4 << 20,
            "process_start_time_seconds": 0.02,
            "process_cpu_seconds_total": 0.5,
            "process_open_fds": 2,
            "process_max_fds": 0,
        }[name]
        assert abs(value - theirs[name][2]) <= tolerance, (name, value, theirs[name][2])
    assert ours["process_resident_memory_bytes"][2] > 1 << 20 and ours["process_open_fds"][2] >= 3
    assert ours["process_start_time_seconds"][2] > 1.6e9


def test_process_families_of_a_process_that_is_gone_are_empty():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_metrics.process_text(f"/proc/{child.pid}") == ""


def test_serving_metrics_imports_no_client_library_and_no_stdlib_http_server():
    """A MetricsServer answering a scrape (with the process families) in a fresh interpreter: neither
    prometheus_client nor wsgiref / http.server / email is imported (docs/costs.md#imports)."""
    code = """
import socket, sys
from fastvrrp.daemon import metrics, metrics_http
srv = metrics.MetricsServer(lambda: metrics.Snapshot(), process=True)
a, b = socket.socketpair()
a.sendall(b"GET /metrics HTTP/1.1\\r\\nAccept-Encoding: gzip\\r\\n\\r\\n")
assert metrics_http.handle(b, srv.respond) == 200
print(sorted(m for m in sys.modules if m.split(".")[0] in ("prometheus_client", "wsgiref", "http", "email")))
"""
    here = os.path.dirname(os.path.dirname(os.path.abspath(metrics_http.__file__)))  # the fastvrrp under test
    env = {**os.environ, "PYTHONPATH": os.path.dirname(here)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_malloc_tuning_on_glibc():
    """The endpoint holds glibc's thresholds fixed and trims the heap after a rendering (docs/costs.md);
    on glibc (the supported systems) both calls take."""
    assert process_metrics.fix_malloc_thresholds()
    big = [bytes(64 * 1024) for _ in range(200)]  # 12.5 MiB below the mmap threshold: brk heap
    del big[:-1]  # the last one stays: the heap cannot shrink from its top
    assert process_metrics.trim_heap()  # the pages freed below it go back
