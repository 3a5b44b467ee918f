"""In-process health checks on the event loop (no fork): TCP connect, HTTP/HTTPS GET, DNS query.

The check kinds are plain dataclasses (TcpCheck, HttpCheck, DnsCheck) inside a CheckSpec that carries the
scheduling (interval, timeout, rise, fall) and the tracking defaults (weight, reverse); they are defined in
fastvrrp.health.spec, where the config reader takes them from. A CheckTracker runs one spec (for a
configuration: `config.vrrp_checks[name]`) and reports like the other trackers:
`on_change(name, TrackerStatus)`. Failures are counted by
reason in `CheckTracker.failures` (refused, reset, timeout, unreachable, tls, bad_status, digest_mismatch,
regex_mismatch, bad_response, rcode_<name>, no_answer, answer_mismatch, error).
See docs/health-checks.md for the `vrrp_check` configuration block.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import random
import re
import socket
import ssl
from collections.abc import Callable

from . import dnswire
from .spec import CheckSpec, DnsCheck, HttpCheck, TcpCheck, UrlSpec
from .status import RiseFall, TrackerStatus
from .tcpfast import TcpProbe, TcpProbeGroup

log = logging.getLogger("fastvrrp.health.checks")

MAX_BODY = 1 << 20  # an HTTP body read for a digest or regex larger than this fails the check


class CheckFailed(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


_ERRNO_REASON = {
    errno.ECONNREFUSED: "refused",
    errno.ECONNRESET: "reset",
    errno.EPIPE: "reset",
    errno.EHOSTUNREACH: "unreachable",
    errno.ENETUNREACH: "unreachable",
    errno.ETIMEDOUT: "timeout",
}


def _reason(exc: BaseException) -> CheckFailed:
    if isinstance(exc, CheckFailed):
        return exc
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return CheckFailed("timeout")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return CheckFailed("tls", str(exc))
    if isinstance(exc, asyncio.IncompleteReadError):
        return CheckFailed("reset" if not exc.partial else "bad_response", "connection closed early")
    if isinstance(exc, OSError) and exc.errno in _ERRNO_REASON:
        return CheckFailed(_ERRNO_REASON[exc.errno], exc.strerror or "")
    if isinstance(exc, ConnectionError):
        return CheckFailed("reset", str(exc))
    return CheckFailed("error", f"{type(exc).__name__}: {exc}")


def _family(ip: str) -> int:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


# The specs hold ipaddress objects (fastvrrp.health.spec); the socket calls below take text, hence str(). (A
# spec built by hand with a str address works the same.)


async def probe_tcp(c: TcpCheck, timeout_ms: int = 2000) -> str:
    """One TCP probe now, through the loop's TcpProbeGroup (the periodic ones go there straight from
    CheckTracker, with no coroutine per probe). Raises CheckFailed(reason) when it fails."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[tuple[bool, str]] = loop.create_future()

    def result(ok: bool, why: str) -> None:
        if not fut.done():
            fut.set_result((ok, why))

    group = TcpProbeGroup.for_loop(loop)
    p = TcpProbe(c.connect_ip, c.connect_port, c.bind_ip, None, timeout_ms, result)
    group.probe_once(p)
    try:
        ok, why = await fut
    finally:
        group.remove(p)  # cancelled while in flight: its socket is closed now
    if not ok:
        reason, _, detail = why.partition(": ")
        raise CheckFailed(reason, detail)
    return why


async def _readline(reader: asyncio.StreamReader) -> bytes:
    """A line of the response; one longer than the reader's limit (64 KiB) is a bad response (asyncio
    raises ValueError for it)."""
    try:
        return await reader.readline()
    except ValueError:
        raise CheckFailed("bad_response", "line too long") from None


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], cap: int) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            line = await _readline(reader)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise CheckFailed("bad_response", "bad chunk size") from None
            if size < 0:  # int() takes a sign, RFC 9112 7.1 chunk-size does not
                raise CheckFailed("bad_response", "bad chunk size")
            if size == 0:
                await _readline(reader)
                return bytes(body)
            if len(body) + size > cap:  # refuse before reading (and buffering) the chunk
                raise CheckFailed("bad_response", "body too large")
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    if "content-length" in headers:
        try:
            n = int(headers["content-length"])
        except ValueError:
            raise CheckFailed("bad_response", "bad content-length") from None
        if n < 0:
            raise CheckFailed("bad_response", "bad content-length")
        if n > cap:
            raise CheckFailed("bad_response", "body too large")
        return await reader.readexactly(n)
    rest = bytearray(await reader.read(cap + 1))
    while len(rest) <= cap:
        more = await reader.read(cap + 1 - len(rest))
        if not more:
            break
        rest += more
    if len(rest) > cap:
        raise CheckFailed("bad_response", "body too large")
    return bytes(rest)


def _tls_context(c: HttpCheck) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=c.ca_file)
    if not c.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def probe_http(c: HttpCheck, ctx: ssl.SSLContext | None = None) -> str:
    ip = str(c.connect_ip)
    host = c.virtualhost or (f"[{ip}]" if ":" in ip else ip)
    details = []
    for url in c.urls:
        kw: dict = {}
        if c.tls:
            kw["ssl"] = ctx or _tls_context(c)
            kw["server_hostname"] = c.virtualhost or ip
        if c.bind_ip is not None:
            kw["local_addr"] = (str(c.bind_ip), 0)
        reader, writer = await asyncio.open_connection(ip, c.connect_port, **kw)
        try:
            port = "" if c.connect_port == (443 if c.tls else 80) else f":{c.connect_port}"
            req = (
                f"GET {url.path} HTTP/1.1\r\nHost: {host}{port if not c.virtualhost else ''}\r\n"
                f"User-Agent: fastvrrp-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            )
            writer.write(req.encode())
            details.append(await read_response(reader, url))
        finally:
            writer.transport.abort()
    return ", ".join(details)


async def read_response(reader: asyncio.StreamReader, url: UrlSpec) -> str:
    """Read the server's answer to GET url.path and judge it: "PATH CODE" when it passes; CheckFailed
    (or asyncio.IncompleteReadError, a connection closed early) when it does not."""
    status_line = await _readline(reader)
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise CheckFailed("bad_response" if status_line else "reset", "no status line")
    code = int(parts[1])
    headers: dict[str, str] = {}
    while True:
        line = await _readline(reader)
        if line in (b"\r\n", b"\n", b""):
            break
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    ok_codes = url.status_code
    if (code not in ok_codes) if ok_codes else not 200 <= code < 300:
        raise CheckFailed("bad_status", f"{url.path}: status {code}")
    if url.digest or url.regex:
        body = await _read_body(reader, headers, MAX_BODY)
        if url.digest and hashlib.md5(body).hexdigest() != url.digest.lower():
            raise CheckFailed("digest_mismatch", f"{url.path}: md5 {hashlib.md5(body).hexdigest()}")
        if url.regex:
            found = re.search(url.regex.encode(), body) is not None
            if found == url.regex_no_match:
                raise CheckFailed("regex_mismatch", f"{url.path}: regex {url.regex!r}")
    return f"{url.path} {code}"


class _DnsProto(asyncio.DatagramProtocol):
    def __init__(self, fut: asyncio.Future) -> None:
        self.fut = fut

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
        if not self.fut.done():
            self.fut.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc)


async def probe_dns(c: DnsCheck) -> str:
    loop = asyncio.get_running_loop()
    qtype = dnswire.TYPES[c.qtype.upper()]
    qid = random.getrandbits(16)
    name = c.name.rstrip(".").lower()
    query = dnswire.build_query(qid, name, qtype)
    fut: asyncio.Future = loop.create_future()
    server = str(c.server)
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _DnsProto(fut), remote_addr=(server, c.port), family=_family(server)
    )
    try:
        transport.sendto(query)
        while True:
            data = await fut
            try:
                resp = dnswire.parse_response(data)
            except dnswire.DnsError as e:
                raise CheckFailed("bad_response", str(e)) from None
            if (
                resp.id == qid
                and resp.is_response
                and resp.questions[:1] == ((name, qtype, dnswire.CLASS_IN),)
            ):
                break
            fut = loop.create_future()  # not ours (RFC 5452: match id and question); keep waiting
            transport.get_protocol().fut = fut  # type: ignore[attr-defined]
    finally:
        transport.close()
    if resp.rcode != 0:
        raise CheckFailed("rcode_" + dnswire.RCODES.get(resp.rcode, str(resp.rcode)))
    got = {a.address for a in resp.answers if a.rtype == qtype and a.address}
    if not got:
        raise CheckFailed("no_answer", f"no {c.qtype} record for {name}")
    missing = [str(e) for e in c.expect if _norm(e) not in got]
    if missing:
        raise CheckFailed("answer_mismatch", f"got {sorted(got)}, missing {missing}")
    return " ".join(sorted(got))


def _norm(a: object) -> str:
    """The canonical text of an address (an ipaddress object, or text as written in a hand-built spec)."""
    import ipaddress

    return str(ipaddress.ip_address(str(a)))


class CheckTracker:
    """Runs one CheckSpec every interval; each probe must finish within timeout_ms."""

    def __init__(self, spec: CheckSpec, on_change: Callable[[str, TrackerStatus], None]) -> None:
        self.spec = spec
        self.name = spec.name
        self.on_change = on_change
        self.counter = RiseFall(spec.rise, spec.fall, spec.init_fail)
        self.status = TrackerStatus(
            self.counter.up, reason="init_fail" if spec.init_fail else "no result yet"
        )
        self.runs = 0
        self.successes = 0
        self.failures: dict[str, int] = {}
        self.last_reason = ""
        self._task: asyncio.Task | None = None
        self._tcp: TcpProbe | None = None  # a TCP check runs on the loop's TcpProbeGroup, not in a task
        self._group: TcpProbeGroup | None = None
        self._ctx = _tls_context(spec.check) if isinstance(spec.check, HttpCheck) and spec.check.tls else None

    def start(self, initial_delay_ms: int | None = None) -> None:
        loop = asyncio.get_running_loop()
        if self.status.up is False:
            self._report()
        # Spread the first probes over one interval so a thousand checks do not fire in the same tick.
        delay = random.uniform(0, self.spec.interval_ms) if initial_delay_ms is None else initial_delay_ms
        c = self.spec.check
        if isinstance(c, TcpCheck):
            sp = self.spec
            tcp = TcpProbe(c.connect_ip, c.connect_port, c.bind_ip, sp.interval_ms, sp.timeout_ms, self.feed)
            self._tcp = tcp
            self._group = TcpProbeGroup.for_loop(loop)
            self._group.add(tcp, delay / 1000)
            return
        self._task = loop.create_task(self._loop(delay / 1000), name=f"vrrp_check {self.name}")

    def stop(self) -> None:
        if self._group is not None and self._tcp is not None:
            self._group.remove(self._tcp)
            self._group = self._tcp = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def probe_once(self) -> tuple[bool, str]:
        c = self.spec.check
        try:
            if isinstance(c, TcpCheck):  # its own deadline, in the group's tick
                return True, await probe_tcp(c, self.spec.timeout_ms)
            async with asyncio.timeout(self.spec.timeout_ms / 1000):
                if isinstance(c, HttpCheck):
                    detail = await probe_http(c, self._ctx)
                else:
                    detail = await probe_dns(c)
            return True, detail
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # noqa: B036 - any failure of the probe is a failed check
            f = _reason(e)
            return False, f"{f.reason}: {f.detail}" if f.detail else f.reason

    async def _loop(self, first_delay: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(first_delay)
        next_at = loop.time()
        while True:
            ok, why = await self.probe_once()
            self.feed(ok, why)
            next_at += self.spec.interval_ms / 1000
            now = loop.time()
            if next_at < now:
                next_at = now
            await asyncio.sleep(next_at - now)

    def feed(self, ok: bool, why: str) -> None:
        self.runs += 1
        self.last_reason = why
        if ok:
            self.successes += 1
        else:
            key = why.split(":", 1)[0]
            self.failures[key] = self.failures.get(key, 0) + 1
        if self.counter.feed(ok):
            self.status = TrackerStatus(self.counter.up, reason=why)
            self._report()

    def _report(self) -> None:
        log.info("vrrp_check %s: %s (%s)", self.name, "up" if self.status.up else "down", self.status.reason)
        try:
            self.on_change(self.name, self.status)
        except Exception:
            log.exception("on_change for check %s failed", self.name)


__all__ = [
    "TcpCheck",
    "HttpCheck",
    "DnsCheck",
    "UrlSpec",
    "CheckSpec",
    "CheckTracker",
    "CheckFailed",
    "probe_tcp",
    "probe_http",
    "probe_dns",
]
