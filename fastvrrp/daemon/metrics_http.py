"""A small threaded HTTP/1.1 server for the metrics endpoint, on `socket` and `threading` only.

One thread accepts; each connection gets its own daemon thread, which reads one request (at most
MAX_REQUEST bytes of request line and headers, within READ_TIMEOUT_S), answers it and closes the connection
(`Connection: close`: Prometheus opens a new one per scrape). At most MAX_CONNECTIONS are served at once;
one more is answered 503 at once, without reading it. A slow or hostile client therefore holds one thread
for at most READ_TIMEOUT_S + WRITE_TIMEOUT_S and a few KiB. The http.server / wsgiref / email modules the
standard library's servers pull in cost ~1.7 MiB per process with prometheus_client (docs/costs.md#imports).

`respond(method, path, headers)` -> (status, content type, body) is the application: it runs in the
connection's thread. The body is a sequence of byte strings or a `Packed` one (held gzip-encoded only). The
answer is gzip-encoded when the request's Accept-Encoding allows gzip.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain

from fastvrrp.daemon.process_metrics import trim_heap

MAX_REQUEST = 8192  # bytes of request line and headers
READ_TIMEOUT_S = 10.0  # for the whole request, not per byte
WRITE_TIMEOUT_S = 30.0  # for the whole response
MAX_CONNECTIONS = 16
# The exposition text is repetitive: level 1 shrinks 1,000 instances' 3.4 MB ~9x in ~10 ms, level 6 ~10x in
# ~23 ms. zlib releases the GIL while it compresses, so the loop runs meanwhile.
GZIP_LEVEL = 1

REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

# The body: parts of the text, or a Packed one.
Respond = Callable[[str, str, dict[str, str]], tuple[int, str, "Sequence[bytes] | Packed"]]


class BadRequest(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def read_request(conn: socket.socket, deadline: float) -> tuple[str, str, dict[str, str]]:
    """(method, path without the query, headers with lower-case names) of one request on `conn`."""
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            end = buf.find(b"\n\n")
        if end >= 0:
            head = buf[:end]
            break
        if len(buf) >= MAX_REQUEST:
            raise BadRequest(431, "request line and headers too large")
        left = deadline - time.monotonic()
        if left <= 0:
            raise BadRequest(408, "request not complete in time")
        conn.settimeout(left)
        try:
            got = conn.recv(MAX_REQUEST + 4 - len(buf))
        except TimeoutError:
            raise BadRequest(408, "request not complete in time") from None
        if not got:
            raise BadRequest(400, "connection closed before the end of the request")
        buf += got
    if len(head) > MAX_REQUEST:
        raise BadRequest(431, "request line and headers too large")
    try:
        lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise BadRequest(400, "malformed request line") from None
    if not version.startswith("HTTP/1.") or not method.isalpha() or not target.startswith("/"):
        raise BadRequest(400, "malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, "malformed header line")
        headers[name.lower()] = value.strip()
    return method, target.partition("?")[0], headers


def accepts_gzip(headers: dict[str, str]) -> bool:
    for item in headers.get("accept-encoding", "").split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and q[2:].strip().strip("0.") == "")  # q=0 refuses it
    return False


def _gzip(parts: Iterable[bytes]) -> bytes:
    z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 16 + 15: a gzip member
    return b"".join([*(z.compress(p) for p in parts), z.flush()])


UNPACK_PIECE = 256 * 1024  # bytes of plain text decompressed (and sent) at a time


class Packed:
    """A response body held only gzip-encoded (~1/9 of the text): sent as it is to a client that accepts
    gzip, decompressed piece by piece (UNPACK_PIECE) while it is sent to one that does not. `size` is the
    length of the plain text (its Content-Length)."""

    __slots__ = ("gz", "size")

    def __init__(self, parts: Iterable[bytes]) -> None:
        size = 0

        def counted() -> Iterator[bytes]:
            nonlocal size
            for p in parts:
                size += len(p)
                yield p

        self.gz = _gzip(counted())
        self.size = size

    def plain(self) -> Iterator[bytes]:
        d = zlib.decompressobj(31)
        piece = d.decompress(self.gz, UNPACK_PIECE)
        while piece:
            yield piece
            piece = d.decompress(d.unconsumed_tail, UNPACK_PIECE)
        rest = d.flush()
        if rest:
            yield rest
        del d, piece, rest
        trim_heap()  # the decompressor's buffers, in this thread's malloc arena (process_metrics)


def _send(
    conn: socket.socket,
    status: int,
    ctype: str,
    parts: Iterable[bytes],
    extra: str = "",
    head_only: bool = False,
    size: int | None = None,
) -> None:
    deadline = time.monotonic() + WRITE_TIMEOUT_S
    if size is None:
        parts = list(parts)
        size = sum(map(len, parts))
    if head_only:
        parts = ()
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {size}\r\n{extra}Connection: close\r\n\r\n"
    ).encode()
    for chunk in chain((head,), parts):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("response not taken in time")
        conn.settimeout(left)
        conn.sendall(chunk)


class GzipCache:
    """The gzip bytes of the body parts last compressed: scrapers within the renderer's cache time share the
    compression as they share the rendering."""

    def __init__(self) -> None:
        self.last: tuple[Sequence[bytes], bytes] | None = None

    def get(self, parts: Sequence[bytes]) -> bytes:
        last = self.last
        if last is not None and last[0] is parts:
            return last[1]
        packed = _gzip(parts)
        self.last = (parts, packed)
        return packed


def handle(conn: socket.socket, respond: Respond, gzip_cache: GzipCache | None = None) -> int:
    """Serve one request on a connected socket and close it; returns the status answered (0: none)."""
    status = 0
    try:
        try:
            method, path, headers = read_request(conn, time.monotonic() + READ_TIMEOUT_S)
        except BadRequest as exc:
            status = exc.status
            _send(conn, status, "text/plain", [f"{exc}\n".encode()])
            return status
        status, ctype, body = respond(method, path, headers)
        extra = "Allow: GET, HEAD\r\n" if status == 405 else ""
        head_only = method == "HEAD"
        if status == 200 and accepts_gzip(headers):
            extra += "Content-Encoding: gzip\r\n"
            gz = body.gz if isinstance(body, Packed) else (gzip_cache or GzipCache()).get(body)
            _send(conn, status, ctype, [gz], extra, head_only)
        elif isinstance(body, Packed):
            _send(conn, status, ctype, body.plain(), extra, head_only, body.size)
        else:
            _send(conn, status, ctype, body, extra, head_only)
        return status
    except OSError:  # the client went away or stopped reading: nothing more to do for it
        return status
    finally:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()


class HttpServer:
    """Listens on (addr, port), IPv6 when addr has a colon (SO_REUSEADDR); `start()` accepts in a daemon
    thread, `close()` stops accepting, joins that thread and closes the socket."""

    def __init__(self, addr: str, port: int, respond: Respond) -> None:
        self.respond = respond
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((addr, port))
            self.sock.listen(MAX_CONNECTIONS)
        except OSError:
            self.sock.close()
            raise
        self.server_address = self.sock.getsockname()
        self._wake_r, self._wake_w = os.pipe()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._threads: set[threading.Thread] = set()
        self._accept: threading.Thread | None = None
        self.name = "fastvrrp-metrics"
        self.gzip_cache = GzipCache()
        self.connections = 0
        self.refused = 0  # answered 503: MAX_CONNECTIONS were in progress

    def start(self, name: str = "fastvrrp-metrics") -> None:
        self.name = name
        self._accept = threading.Thread(target=self._serve, name=name, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while True:
            events = poller.poll()
            if any(fd == self._wake_r for fd, _ in events):
                return
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            if not self._slots.acquire(blocking=False):
                self.refused += 1
                try:
                    conn.setblocking(False)
                    conn.send(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                except OSError:
                    pass
                conn.close()
                continue
            t = threading.Thread(
                target=self._serve_one, args=(conn,), name="fastvrrp-metrics-conn", daemon=True
            )
            self._threads.add(t)
            t.start()

    def _serve_one(self, conn: socket.socket) -> None:
        try:
            handle(conn, self.respond, self.gzip_cache)
        finally:
            self._threads.discard(threading.current_thread())
            self._slots.release()

    def close(self, join_s: float = 1.0) -> None:
        """Stop accepting (the accept thread leaves its poll at once), close the socket, and wait up to
        `join_s` for requests in progress (each also ends by its own timeouts)."""
        if self._accept is not None:
            os.write(self._wake_w, b"x")
            self._accept.join(5)
            self._accept = None
        if self.sock.fileno() >= 0:
            self.sock.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
        deadline = time.monotonic() + join_s
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))
