"""The `vrrp_check NAME { ... }` block (docs/health-checks.md): one in-process probe and its scheduling.

    vrrp_check NAME {
        TCP_CHECK | HTTP_GET | SSL_GET | DNS_CHECK { ... }    # exactly one
        interval SECS  timeout SECS  rise N  fall N  weight W [reverse]  init_fail
    }

The probe keywords are keepalived's checker keywords (keepalived.conf(5) real_server checkers) where they
exist. Problems are reported at the statement they are about, as everywhere in the reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastvrrp.health.spec import CheckSpec, DnsCheck, HttpCheck, TcpCheck, UrlSpec

from .blocks import Kw, Schema, flag_kw, int_kw, secs_kw, special, walk, word_kw
from .lexer import Node
from .trackers import set_weight
from .values import Reporter

PROBES = ("TCP_CHECK", "HTTP_GET", "SSL_GET", "DNS_CHECK")
_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}\Z")
_PORT = (1, 65535)
_TIMEOUT = (0.001, 86400)
_BOTH_TIMEOUTS = "connect_timeout and timeout both given (they are the same setting)"


# --- url { } (HTTP_GET, SSL_GET)
@dataclass(slots=True)
class UrlState:
    path: str | None = None
    codes: list[int] = field(default_factory=list)
    digest: str | None = None
    regex: str | None = None
    regex_no_match: bool | None = None
    ok: bool = True


def _path(r: Reporter, n: Node, st: UrlState, kw: Kw) -> None:
    if r.nargs(n, 1):
        if not n.args[0].startswith("/"):
            r.err(n, f"url path '{n.args[0]}' must start with '/'")
            st.ok = False
        st.path = n.args[0]


def _status_code(r: Reporter, n: Node, st: UrlState, kw: Kw) -> None:
    if not r.nargs(n, 1, -1):
        st.ok = False
        return
    for x in n.args:
        c = r.int_in(n, x, 100, 599, "status_code")
        if c is None:
            st.ok = False
        else:
            st.codes.append(c)


def _digest(r: Reporter, n: Node, st: UrlState, kw: Kw) -> None:
    if r.nargs(n, 1):
        if not _MD5_HEX.match(n.args[0]):
            r.err(n, f"digest '{n.args[0]}' is not an MD5 sum (32 hex digits)")
            st.ok = False
        else:
            st.digest = n.args[0].lower()


def _regex(r: Reporter, n: Node, st: UrlState, kw: Kw) -> None:
    if r.nargs(n, 1):
        try:
            re.compile(n.args[0])
        except re.error as e:
            r.err(n, f"regex '{n.args[0]}' is not valid: {e}")
            st.ok = False
        else:
            st.regex = n.args[0]


URL = Schema(
    "url",
    UrlState,
    {
        "path": special(_path),
        "status_code": special(_status_code),
        "digest": special(_digest),
        "regex": special(_regex),
        "regex_no_match": flag_kw("regex_no_match"),
    },
    unknown_no_block=True,
    unknown_ignored=False,
)


def read_url(r: Reporter, n: Node) -> UrlSpec | None:
    if n.args:
        r.err(n, "'url' takes no value")
        return None
    st = UrlState()
    if not walk(r, n, URL, st):
        st.ok = False
    if st.regex_no_match is not None and st.regex is None:
        r.err(n, "regex_no_match without regex")
        st.ok = False
    if not st.ok:
        return None
    return UrlSpec(st.path or "/", tuple(st.codes), st.digest, st.regex, st.regex_no_match or False)


# --- the probe block
@dataclass(slots=True)
class ProbeState:
    connect_ip: Any = None
    connect_ip_at: Node | None = None  # set when connect_ip was written (its value may be None: invalid)
    bindto: Any = None
    bindto_at: Node | None = None
    connect_port: int | None = None
    timeout: tuple[int | None, Node] | None = None  # connect_timeout: (ms, its statement)
    virtualhost: str | None = None
    verify_cert: bool | None = None
    ca_file: str | None = None
    type: str | None = None
    name: str | None = None
    expect: list[tuple[Any, Node]] = field(default_factory=list)
    urls: list[UrlSpec] = field(default_factory=list)
    ok: bool = True


def _address(r: Reporter, n: Node, st: ProbeState, kw: Kw) -> None:
    """connect_ip / bindto: kept with the statement even when invalid (the probe is then refused)."""
    if not r.nargs(n, 1):
        st.ok = False
        return
    ip = r.ip(n, n.args[0], f"{n.kw} address")
    if ip is None:
        st.ok = False
    setattr(st, kw.field, ip)
    setattr(st, kw.field + "_at", n)


def _connect_port(r: Reporter, n: Node, st: ProbeState, kw: Kw) -> None:
    if r.nargs(n, 1):
        st.connect_port = r.int_in(n, n.args[0], *_PORT)
    if st.connect_port is None:
        st.ok = False


def _connect_timeout(r: Reporter, n: Node, st: ProbeState, kw: Kw) -> None:
    if r.nargs(n, 1):
        st.timeout = (r.secs_in(n, n.args[0], *_TIMEOUT), n)


def _url(r: Reporter, n: Node, st: ProbeState, kw: Kw) -> None:
    u = read_url(r, n)
    if u is None:
        st.ok = False
    else:
        st.urls.append(u)


def _dns_type(r: Reporter, n: Node, st: ProbeState, kw: Kw) -> None:
    if r.nargs(n, 1):
        t = n.args[0].upper()
        if t not in ("A", "AAAA"):
            r.err(n, f"DNS_CHECK type '{n.args[0]}' is not A or AAAA")
            st.ok = False
        else:
            st.type = t


def _expect(r: Reporter, n: Node, st: ProbeState, kw: Kw) -> None:
    if r.nargs(n, 1):
        ip = r.ip(n, n.args[0], "expect address")
        if ip is None:
            st.ok = False
        else:
            st.expect.append((ip, n))


_CONNECTION = {
    "connect_ip": special(_address, "connect_ip"),
    "bindto": special(_address, "bindto"),
    "connect_port": special(_connect_port),
    "connect_timeout": special(_connect_timeout),
}
_HTTP = {**_CONNECTION, "url": special(_url, block=True), "virtualhost": word_kw("virtualhost")}
PROBE_SCHEMAS = {
    "TCP_CHECK": Schema("TCP_CHECK", ProbeState, _CONNECTION, unknown_no_block=True, unknown_ignored=False),
    "HTTP_GET": Schema("HTTP_GET", ProbeState, _HTTP, unknown_no_block=True, unknown_ignored=False),
    "SSL_GET": Schema(
        "SSL_GET",
        ProbeState,
        {**_HTTP, "verify_cert": flag_kw("verify_cert"), "ca_file": word_kw("ca_file")},
        unknown_no_block=True,
        unknown_ignored=False,
    ),
    "DNS_CHECK": Schema(
        "DNS_CHECK",
        ProbeState,
        {**_CONNECTION, "type": special(_dns_type), "name": word_kw("name"), "expect": special(_expect)},
        unknown_no_block=True,
        unknown_ignored=False,
    ),
}


def read_probe(r: Reporter, n: Node) -> tuple[Any, tuple[int | None, Node] | None]:
    """(the probe or None if it has a problem, (timeout ms, its node) if connect_timeout was given)."""
    st = ProbeState()
    if n.args:
        r.err(n, f"'{n.kw}' takes no value")
        st.ok = False
    if not walk(r, n, PROBE_SCHEMAS[n.kw], st):
        st.ok = False
    if st.connect_ip_at is None:
        r.err(n, f"{n.kw} needs connect_ip")
        return None, st.timeout
    if not _addresses_agree(r, n, st) or st.connect_ip is None:
        return None, st.timeout
    return _probe(r, n, st), st.timeout


def _addresses_agree(r: Reporter, n: Node, st: ProbeState) -> bool:
    """bindto is of connect_ip's family; a DNS_CHECK has a name, and `expect`s of the family asked for."""
    cip, bind = st.connect_ip, st.bindto
    if cip is not None and st.bindto_at is not None and bind is not None and bind.version != cip.version:
        r.err(st.bindto_at, f"bindto {bind} is not IPv{cip.version} like connect_ip {cip}")
        st.ok = False
    if n.kw == "DNS_CHECK":
        if st.name is None:
            r.err(n, "DNS_CHECK needs name")
            st.ok = False
        want = 6 if st.type == "AAAA" else 4
        for ip, k in st.expect if st.ok else ():  # (a bad type is reported already; its family is unknown)
            if ip.version != want:
                r.err(k, f"expect {ip} is not an IPv{want} address (type {st.type or 'A'})")
                st.ok = False
    return st.ok


def _probe(r: Reporter, n: Node, st: ProbeState) -> Any:
    """The probe of a block found good."""
    kind = n.kw
    if kind == "TCP_CHECK":
        if st.connect_port is None:
            r.err(n, "TCP_CHECK needs connect_port")
            return None
        return TcpCheck(st.connect_ip, st.connect_port, st.bindto)
    if kind == "DNS_CHECK":
        port = 53 if st.connect_port is None else st.connect_port
        return DnsCheck(st.connect_ip, st.name or "", st.type or "A", port, tuple(e[0] for e in st.expect))
    tls = kind == "SSL_GET"
    return HttpCheck(
        st.connect_ip,
        (443 if tls else 80) if st.connect_port is None else st.connect_port,
        tuple(st.urls) if st.urls else (UrlSpec(),),
        st.virtualhost,
        tls,
        st.verify_cert or False,
        st.ca_file,
        st.bindto,
    )


# --- vrrp_check
@dataclass(slots=True)
class CheckState:
    name: str | None = None
    probe: Any = None
    probe_at: Node | None = None
    interval_ms: int | None = None
    timeout_ms: int | None = None
    timeout_at: Node | None = None
    weight: int | None = None
    reverse: bool | None = None
    rise: int | None = None
    fall: int | None = None
    init_fail: bool | None = None


def _probe_block(r: Reporter, n: Node, st: CheckState, kw: Kw) -> None:
    if st.probe_at is not None:
        at = st.probe_at
        r.err(
            n,
            f"vrrp_check '{st.name}': only one probe per vrrp_check ({at.kw} already at {at.file}:{at.line})",
        )
        return
    st.probe_at = n
    st.probe, probe_timeout = read_probe(r, n)
    if probe_timeout is not None:
        if st.timeout_at is not None:
            r.err(probe_timeout[1], _BOTH_TIMEOUTS)
        else:
            st.timeout_ms, st.timeout_at = probe_timeout


def _timeout(r: Reporter, n: Node, st: CheckState, kw: Kw) -> None:
    if r.nargs(n, 1):
        if st.timeout_at is not None:
            r.err(n, _BOTH_TIMEOUTS)
        else:
            st.timeout_ms, st.timeout_at = r.secs_in(n, n.args[0], *_TIMEOUT), n


VRRP_CHECK = Schema(
    "vrrp_check",
    CheckState,
    {
        **{p: special(_probe_block, block=True) for p in PROBES},
        "interval": secs_kw("interval_ms", *_TIMEOUT),
        "timeout": special(_timeout),
        "weight": special(set_weight, "weight", -253, 253),
        "rise": int_kw("rise", 1, 2**31 - 1),
        "fall": int_kw("fall", 1, 2**31 - 1),
        "init_fail": flag_kw("init_fail"),
    },
    unknown_no_block=True,
    unknown_ignored=False,
)
_SCHEDULE = ("interval_ms", "timeout_ms", "rise", "fall", "weight", "reverse", "init_fail")


def read_vrrp_check(r: Any, n: Node, st: Any, kw: Kw) -> None:
    """A top-level vrrp_check block into `r.checks[name] = (CheckSpec, node)`."""
    checks: dict[str, tuple[CheckSpec, Node]] = r.checks
    s = CheckState(r.named(n, "vrrp_check", checks))
    walk(r, n, VRRP_CHECK, s)
    if s.probe_at is None:
        r.err(n, f"vrrp_check '{s.name}' has no probe (TCP_CHECK, HTTP_GET, SSL_GET or DNS_CHECK)")
        return
    if s.name is None or s.probe is None:
        return
    values = {key: v for key in _SCHEDULE if (v := getattr(s, key)) is not None}
    checks[s.name] = (CheckSpec(s.name, s.probe, **values), n)
