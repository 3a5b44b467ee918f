"""Fuzz the DNS response parser of the in-process DNS check (fastvrrp/health/dnswire.py parse_response),
and what the check then reads of the answer (addresses, rcode, flags).

The documented answer: a Response, or DnsError with the reason (the check counts it as bad_response).
"""

from __future__ import annotations

from _harness import check, instrumented, main

with instrumented():
    from fastvrrp.health import dnswire


def one(data: bytes) -> None:
    try:
        resp = dnswire.parse_response(data)
    except dnswire.DnsError as e:
        check(str(e), "DnsError without a reason")
        return
    check(0 <= resp.rcode <= 15 and 0 <= resp.id <= 0xFFFF, "header fields out of range")
    resp.is_response, resp.truncated  # noqa: B018
    for q in resp.questions:
        check(len(q[0]) <= 255 + 255, f"question name too long: {len(q[0])}")
    for a in resp.answers:
        addr = a.address
        check(addr is None or isinstance(addr, str), "address is not text")


if __name__ == "__main__":
    main(one)
