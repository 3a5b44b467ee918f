"""The DNS message codec used by the DNS check (fastvrrp.health.dnswire): a round trip and the malformed
responses it must refuse, each with its reason."""

from __future__ import annotations

import pytest

from fastvrrp.health import dnswire

# --- DNS codec ---


def test_dns_query_response_round_trip():
    q = dnswire.build_query(0x1234, "www.example.test", dnswire.TYPE_A)
    assert q[:2] == b"\x12\x34" and q.endswith(b"\x00\x01\x00\x01")
    r = dnswire.parse_response(dnswire.build_response(q, [(dnswire.TYPE_A, bytes([192, 0, 2, 7]))]))
    assert r.id == 0x1234 and r.is_response and r.rcode == 0
    assert r.questions == (("www.example.test", 1, 1),)
    assert [a.address for a in r.answers] == ["192.0.2.7"] and r.answers[0].name == "www.example.test"


@pytest.mark.parametrize(
    "data,why",
    [
        (b"\x00" * 5, "shorter"),
        (b"\x00\x01\x80\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c", "loop"),
        (b"\x00\x01\x80\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab", "past the end"),
        (
            b"\x00\x01\x80\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x00\x01\x00\x00\x00\x01\x00\x09\x01",
            "rdata",
        ),
    ],
)
def test_dns_malformed_raises_with_reason(data, why):
    with pytest.raises(dnswire.DnsError, match=why):
        dnswire.parse_response(data)
