"""What an in-process health check is: the `vrrp_check` probe kinds and their scheduling, frozen dataclasses.

One definition for both sides: the config reader (fastvrrp.config) builds these from a `vrrp_check` block
and puts them in `Config.vrrp_checks`; fastvrrp.health.checks runs them
(`CheckTracker(config.vrrp_checks[name], on_change)`). Pure on purpose: no asyncio, ssl or socket here,
because the config package imports this module and must not pull in the event loop.

Addresses are `ipaddress.IPv4Address` / `IPv6Address`, as everywhere in the parsed configuration; the probes
turn them into text with str() where a socket call needs it. Field names are the `--dump-json` keys
(fastvrrp.config.model `to_json`), so renaming one changes that format.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class UrlSpec:
    """One `url { }` of an HTTP_GET / SSL_GET probe."""

    path: str = "/"
    status_code: tuple[int, ...] = ()  # empty: any 2xx
    digest: str | None = None  # MD5 of the body, lower-case hex (keepalived `digest`)
    regex: str | None = None  # must match somewhere in the body (regex_no_match inverts)
    regex_no_match: bool = False


@dataclass(frozen=True, slots=True)
class TcpCheck:
    """TCP_CHECK: a connect to connect_ip:connect_port succeeds."""

    connect_ip: IPAddress
    connect_port: int
    bind_ip: IPAddress | None = None


@dataclass(frozen=True, slots=True)
class HttpCheck:
    """HTTP_GET / SSL_GET: every url answers with an accepted status (and digest / regex if given)."""

    connect_ip: IPAddress
    connect_port: int = 80  # 443 for SSL_GET
    urls: tuple[UrlSpec, ...] = (UrlSpec(),)
    virtualhost: str | None = None  # Host header (and TLS SNI)
    tls: bool = False  # SSL_GET
    tls_verify: bool = False  # verify_cert: keepalived's SSL_GET does not verify unless told to
    ca_file: str | None = None
    bind_ip: IPAddress | None = None


@dataclass(frozen=True, slots=True)
class DnsCheck:
    """DNS_CHECK: the server answers `name` with records of qtype, including every `expect` address."""

    server: IPAddress  # connect_ip
    name: str
    qtype: str = "A"  # A or AAAA
    port: int = 53
    expect: tuple[IPAddress, ...] = ()  # every one of these must be in the answer (empty: any answer)


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A `vrrp_check NAME { }` block: one probe, scheduled and weighted like a vrrp_script."""

    name: str
    check: TcpCheck | HttpCheck | DnsCheck
    interval_ms: int = 1000
    timeout_ms: int = 2000  # connect_timeout (or timeout): the whole probe must finish within it
    rise: int = 1
    fall: int = 1
    weight: int = 0
    reverse: bool = False
    init_fail: bool = False


__all__ = ["CheckSpec", "DnsCheck", "HttpCheck", "IPAddress", "TcpCheck", "UrlSpec"]
