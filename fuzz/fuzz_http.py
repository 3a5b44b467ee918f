"""Fuzz the HTTP response reader of the in-process HTTP_GET / SSL_GET check
(fastvrrp/health/checks.py read_response: status line, headers, a body by Content-Length, chunked or to
the end, digest and regex), on a real asyncio.StreamReader fed the bytes as a server would send them.

Byte 0 chooses what the URL asks for (bit 0: an MD5 digest, bit 1: a regex, bit 2: regex_no_match, bit 3:
status codes 200 and 301 instead of any 2xx, bits 4-7: how many bytes arrive before the rest (in units of
16), so that reads straddle the arrivals); the rest is the server's bytes, then end of stream.

The documented answer: "PATH CODE", or CheckFailed with a reason, or asyncio.IncompleteReadError (a
connection closed early: counted as reset / bad_response). A ValueError, a negative read or a hang is a
finding.
"""

from __future__ import annotations

import asyncio

from _harness import check, instrumented, main

with instrumented():
    from fastvrrp.health import checks
    from fastvrrp.health.spec import UrlSpec

LOOP = asyncio.new_event_loop()
REASONS = {"bad_response", "bad_status", "digest_mismatch", "regex_mismatch", "reset"}


def _url(mode: int) -> UrlSpec:
    return UrlSpec(
        path="/health",
        status_code=(200, 301) if mode & 8 else (),
        digest="5d41402abc4b2a76b9719d911017c592" if mode & 1 else None,  # md5("hello")
        regex="ok|up" if mode & 2 else None,
        regex_no_match=bool(mode & 4),
    )


async def _serve(reader: asyncio.StreamReader, first: bytes, rest: bytes) -> None:
    reader.feed_data(first)
    await asyncio.sleep(0)
    reader.feed_data(rest)
    reader.feed_eof()


async def _one(mode: int, body: bytes) -> None:
    reader = asyncio.StreamReader(limit=4096)
    cut = (mode >> 4) * 16
    feeder = asyncio.ensure_future(_serve(reader, body[:cut], body[cut:]))
    try:
        got = await asyncio.wait_for(checks.read_response(reader, _url(mode)), 5)
        check(got.startswith("/health "), f"answer {got!r}")
    except checks.CheckFailed as e:
        check(e.reason in REASONS, f"unknown failure reason {e.reason!r}")
    except asyncio.IncompleteReadError:
        pass
    finally:
        await feeder


def one(data: bytes) -> None:
    if not data:
        return
    LOOP.run_until_complete(_one(data[0], data[1:]))


if __name__ == "__main__":
    main(one)
