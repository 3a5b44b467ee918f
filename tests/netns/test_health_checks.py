"""In-process TCP / HTTP / DNS checks against real servers in a lab namespace. The check loop runs in a
thread that entered the namespace (its sockets are created there), the servers in the same namespace."""

from __future__ import annotations

import asyncio
import hashlib
import ssl

import pytest
import uvloop

from fastvrrp.health import dnswire
from fastvrrp.health.checks import CheckTracker
from fastvrrp.health.spec import CheckSpec, DnsCheck, HttpCheck, TcpCheck, UrlSpec
from fastvrrp.io.nsexec import call_in_netns
from fastvrrp.lab.namespaces import wait_for_async

pytestmark = pytest.mark.netns

SRV = "192.0.2.10"
BODY = b"all good\n"


def in_ns(ns, coro_fn):
    """Run an event loop inside the namespace (in a thread that entered it) and return its result."""
    return call_in_netns(ns, lambda: uvloop.run(coro_fn()))


@pytest.fixture
def ns(lab):
    n = lab.ns("chk")
    lab.sh(n, "ip link add name v0 type veth peer name v1")
    lab.sh(n, "ip link set v0 up")
    lab.sh(n, "ip link set v1 up")
    lab.addr(n, "v0", f"{SRV}/24")
    return n


async def http_server(port, status=200, body=BODY, hang=False):
    async def handle(r, w):
        try:
            await r.readuntil(b"\r\n\r\n")
            if hang:
                await asyncio.sleep(30)
            w.write(
                b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (status, len(body))
                + body
            )
            await w.drain()
        finally:
            w.close()

    return await asyncio.start_server(handle, SRV, port)


async def probe(spec):
    t = CheckTracker(spec, lambda n, s: None)
    return await t.probe_once()


def test_tcp_ok_refused_and_timeout(ns, lab):
    async def main():
        srv = await asyncio.start_server(lambda r, w: w.close(), SRV, 8080)
        ok = await probe(CheckSpec("t", TcpCheck(SRV, 8080), timeout_ms=1000))
        refused = await probe(CheckSpec("t", TcpCheck(SRV, 8081), timeout_ms=1000))
        # an address nobody answers on the link: SYN goes nowhere -> timeout
        silent = await probe(CheckSpec("t", TcpCheck("192.0.2.99", 80), timeout_ms=300))
        srv.close()
        return ok, refused, silent

    ok, refused, silent = in_ns(ns, main)
    assert ok == (True, "connected")
    assert refused[0] is False and refused[1].startswith("refused")
    assert silent[0] is False and silent[1].split(":")[0] in ("timeout", "unreachable")


def test_http_status_digest_regex_and_hang(ns):
    digest = hashlib.md5(BODY).hexdigest()

    async def main():
        s1 = await http_server(8000)
        s2 = await http_server(8001, status=503)
        s3 = await http_server(8002, hang=True)
        out = {
            "ok": await probe(CheckSpec("h", HttpCheck(SRV, 8000, (UrlSpec("/health", (200,), digest),)))),
            "regex": await probe(CheckSpec("h", HttpCheck(SRV, 8000, (UrlSpec("/", regex="good"),)))),
            "regex_bad": await probe(CheckSpec("h", HttpCheck(SRV, 8000, (UrlSpec("/", regex="^bad"),)))),
            "digest_bad": await probe(CheckSpec("h", HttpCheck(SRV, 8000, (UrlSpec("/", digest="0" * 32),)))),
            "status": await probe(CheckSpec("h", HttpCheck(SRV, 8001))),
            "hang": await probe(CheckSpec("h", HttpCheck(SRV, 8002), timeout_ms=300)),
            "refused": await probe(CheckSpec("h", HttpCheck(SRV, 8009))),
        }
        for s in (s1, s2, s3):
            s.close()
        return out

    r = in_ns(ns, main)
    assert r["ok"] == (True, "/health 200")
    assert r["regex"][0] is True
    assert r["regex_bad"][1].startswith("regex_mismatch")
    assert r["digest_bad"][1].startswith("digest_mismatch")
    assert r["status"][1] == "bad_status: /: status 503"
    assert r["hang"] == (False, "timeout")
    assert r["refused"][1].startswith("refused")


def test_https_ok_unverified_and_tls_error_when_verifying(ns, lab):
    key, crt = f"{lab.workdir}/k.pem", f"{lab.workdir}/c.pem"
    lab.sh(
        ns,
        f"openssl req -x509 -newkey rsa:2048 -nodes -keyout {key} -out {crt} -days 1"
        " -subj /CN=web.example.test -addext subjectAltName=DNS:web.example.test",
    )
    sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    sctx.load_cert_chain(crt, key)

    async def main():
        async def handle(r, w):
            try:
                await r.readuntil(b"\r\n\r\n")
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await w.drain()
            except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
                pass
            finally:
                w.close()

        s = await asyncio.start_server(handle, SRV, 8443, ssl=sctx)
        lax = await probe(CheckSpec("h", HttpCheck(SRV, 8443, tls=True, virtualhost="web.example.test")))
        strict = await probe(
            CheckSpec("h", HttpCheck(SRV, 8443, tls=True, tls_verify=True, virtualhost="web.example.test"))
        )
        pinned = await probe(
            CheckSpec(
                "h",
                HttpCheck(SRV, 8443, tls=True, tls_verify=True, ca_file=crt, virtualhost="web.example.test"),
            )
        )
        s.close()
        return lax, strict, pinned

    lax, strict, pinned = in_ns(ns, main)
    assert lax == (True, "/ 200")
    assert strict[0] is False and strict[1].startswith("tls")
    assert pinned == (True, "/ 200")


class Dns(asyncio.DatagramProtocol):
    def __init__(self, answers, rcode=0, garbage=False):
        self.answers, self.rcode, self.garbage = answers, rcode, garbage

    def connection_made(self, t):
        self.t = t

    def datagram_received(self, data, addr):
        if self.garbage:
            self.t.sendto(data[:2] + b"\x80", addr)
            return
        self.t.sendto(dnswire.build_response(data, self.answers, self.rcode), addr)


def test_dns_answer_expected_mismatch_rcode_and_garbage(ns):
    a = (dnswire.TYPE_A, bytes([198, 51, 100, 5]))

    async def main():
        loop = asyncio.get_running_loop()
        servers = []
        for port, proto in ((5300, Dns([a])), (5301, Dns([], rcode=3)), (5302, Dns([], garbage=True))):
            tr, _ = await loop.create_datagram_endpoint(lambda p=proto: p, local_addr=(SRV, port))
            servers.append(tr)
        out = {
            "ok": await probe(
                CheckSpec("d", DnsCheck(SRV, "svc.example.test", port=5300, expect=("198.51.100.5",)))
            ),
            "mismatch": await probe(
                CheckSpec("d", DnsCheck(SRV, "svc.example.test", port=5300, expect=("198.51.100.6",)))
            ),
            "nx": await probe(CheckSpec("d", DnsCheck(SRV, "svc.example.test", port=5301))),
            "garbage": await probe(CheckSpec("d", DnsCheck(SRV, "svc.example.test", port=5302))),
            "refused": await probe(
                CheckSpec("d", DnsCheck(SRV, "svc.example.test", port=5309), timeout_ms=500)
            ),
        }
        for s in servers:
            s.close()
        return out

    r = in_ns(ns, main)
    assert r["ok"] == (True, "198.51.100.5")
    assert r["mismatch"][1].startswith("answer_mismatch")
    assert r["nx"] == (False, "rcode_nxdomain")
    assert r["garbage"][1].startswith("bad_response")
    assert r["refused"][1].startswith("refused")


def test_check_tracker_rise_fall_counts_failures_by_reason(ns):
    async def main():
        seen = []
        t = CheckTracker(
            CheckSpec("web", HttpCheck(SRV, 8000), interval_ms=20, timeout_ms=300, rise=2, fall=2),
            lambda n, s: seen.append(s),
        )
        srv = await http_server(8000)
        t.start(initial_delay_ms=0)
        await wait_for_async(lambda: len(seen) == 1, 5, 0.005)
        srv.close()
        await srv.wait_closed()
        await wait_for_async(lambda: len(seen) == 2, 5, 0.005)
        t.stop()
        return seen, t

    seen, t = in_ns(ns, main)
    assert [s.up for s in seen] == [True, False]
    assert seen[1].reason.startswith("refused") and t.failures["refused"] == 2
