"""The metrics endpoint's own HTTP server listening for real, in a namespace: IPv4 and IPv6 listeners
scraped from another namespace (plain, gzip, HEAD, a wrong path, a wrong method, malformed and oversized
requests), a flood of idle connections answered 503 beyond MAX_CONNECTIONS while a scrape still gets
through once they are dropped, and a clean close (the port can be bound again at once)."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import Lan

pytestmark = pytest.mark.netns

SERVER = """
import signal, socket, sys, threading
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
from fastvrrp.daemon import metrics, metrics_http
metrics_http.READ_TIMEOUT_S = 2.0
snap = metrics.Snapshot(instances=[metrics.InstanceRow("VI_1", "eth0", 4, 51, 2, 100, 100, adverts_tx=7)])
servers = [metrics.MetricsServer(lambda: snap, addr, port, cache_s=0) for addr, port in
           (("192.0.2.1", 9650), ("2001:db8::1", 9651))]
for s in servers:
    s.start()
print("listening", flush=True)
signal.sigwait([signal.SIGTERM])
for s in servers:
    s.close()
left = [t.name for t in threading.enumerate() if t.name == "fastvrrp-metrics"]
for addr, port, fam in (("192.0.2.1", 9650, socket.AF_INET), ("2001:db8::1", 9651, socket.AF_INET6)):
    socket.create_server((addr, port), family=fam, reuse_port=False).close()  # SO_REUSEADDR: free at once
mods = sorted(m for m in sys.modules if m.split(".")[0] in ("prometheus_client", "wsgiref", "email"))
print("closed", left, "modules", mods, flush=True)
"""

CLIENT = r"""
import gzip, socket, sys, urllib.error, urllib.request
def get(url, method="GET", **headers):
    req = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
def raw(addr, data):
    fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    with socket.create_connection(addr, timeout=10) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass
    return out.split(b"\r\n", 1)[0].decode()
for base, addr in (
    ("http://192.0.2.1:9650", ("192.0.2.1", 9650)),
    ("http://[2001:db8::1]:9651", ("2001:db8::1", 9651)),
):
    st, h, body = get(base + "/metrics")
    assert st == 200 and h["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8", (st, h)
    assert b'fastvrrp_adverts_sent_total{iname="VI_1",intf="eth0",vrid="51",family="4"} 7' in body
    assert b"\nprocess_resident_memory_bytes " in body and int(h["Content-Length"]) == len(body)
    st, h, gz = get(base + "/metrics", **{"Accept-Encoding": "gzip"})
    assert st == 200 and h["Content-Encoding"] == "gzip" and len(gz) < len(body), h
    assert b"fastvrrp_build_info" in gzip.decompress(gz)
    assert get(base + "/")[0] == 200
    st, h, b = get(base + "/metrics", "HEAD")
    assert st == 200 and b == b"" and int(h["Content-Length"]) > 1000
    assert get(base + "/other")[0] == 404
    st, h, _ = get(base + "/metrics", "POST")
    assert st == 405 and h["Allow"] == "GET, HEAD"
    assert raw(addr, b"NONSENSE\r\n\r\n").startswith("HTTP/1.1 400 "), raw(addr, b"NONSENSE\r\n\r\n")
    big = b"GET /metrics HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 100000 + b"\r\n\r\n"
    assert raw(addr, big).startswith("HTTP/1.1 431 ")
# Idle connections that never send a request: beyond MAX_CONNECTIONS the server answers 503 at once, and
# after the read timeout (2 s here) it has dropped the idle ones and serves again.
idle = [socket.create_connection(("192.0.2.1", 9650), timeout=10) for _ in range(16)]
extra = socket.create_connection(("192.0.2.1", 9650), timeout=10)
assert extra.recv(100).startswith(b"HTTP/1.1 503 "), "no 503 beyond MAX_CONNECTIONS"
for s in idle:
    assert s.recv(100).startswith(b"HTTP/1.1 408 ")
    s.close()
assert get("http://192.0.2.1:9650/metrics")[0] == 200
print("client ok", flush=True)
"""


def test_metrics_http_server_in_a_namespace(lab):
    lan = Lan(lab, routers=1, client=True)
    server_py = os.path.join(lab.workdir, "metrics_server.py")
    client_py = os.path.join(lab.workdir, "metrics_client.py")
    with open(server_py, "w") as f:
        f.write(SERVER)
    with open(client_py, "w") as f:
        f.write(CLIENT)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    argv = [sys.executable, server_py]
    proc = lab.spawn(lan.router_ns[0], argv, "metrics-server", env={"PYTHONPATH": repo})
    wait_for(lambda: "listening" in proc.log() or not proc.alive(), 30, 0.05, what="the server listening")
    assert proc.alive(), proc.log()
    out = lab.sh(lan.client, f"{sys.executable} {client_py}", timeout=120)
    assert "client ok" in out, out
    assert proc.stop(signal.SIGTERM, timeout=15) == 0, proc.log()
    assert "closed [] modules []" in proc.log(), proc.log()
