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
from typing import TYPE_CHECKING, Any

from fastvrrp.health.spec import CheckSpec, DnsCheck, HttpCheck, TcpCheck, UrlSpec

from .lexer import Node

if TYPE_CHECKING:
    from .reader import Reader

PROBES = ("TCP_CHECK", "HTTP_GET", "SSL_GET", "DNS_CHECK")
_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}\Z")
_PORT = (1, 65535)
_TIMEOUT = (0.001, 86400)
_BOTH_TIMEOUTS = "connect_timeout and timeout both given (they are the same setting)"


def read_vrrp_check(r: Reader, n: Node, checks: dict[str, tuple[CheckSpec, Node]]) -> None:
    """Parse one vrrp_check block into `checks[name] = (CheckSpec, node)`; problems go to the reader."""
    name = r._named(n, "vrrp_check", checks)
    f: dict[str, Any] = {}
    probe: Any = None
    probe_node: Node | None = None
    timeout_node: Node | None = None
    for k in r.want_block(n) or ():
        kw, a = k.kw, k.args
        if kw in PROBES:
            if probe_node is not None:
                r.err(
                    k,
                    f"vrrp_check '{name}': only one probe per vrrp_check "
                    f"({probe_node.kw} already at {probe_node.file}:{probe_node.line})",
                )
                continue
            probe_node = k
            probe, probe_timeout = _probe(r, k)
            if probe_timeout is not None:
                if timeout_node is not None:
                    r.err(probe_timeout[1], _BOTH_TIMEOUTS)
                else:
                    f["timeout_ms"], timeout_node = probe_timeout
            continue
        r.no_block(k)
        if kw == "interval":
            if r.nargs(k, 1):
                f["interval_ms"] = r.secs_in(k, a[0], *_TIMEOUT)
        elif kw == "timeout":
            if r.nargs(k, 1):
                if timeout_node is not None:
                    r.err(k, _BOTH_TIMEOUTS)
                else:
                    f["timeout_ms"], timeout_node = r.secs_in(k, a[0], *_TIMEOUT), k
        elif kw == "weight":
            f["weight"], f["reverse"] = r._weight(k, a, -253, 253)
        elif kw in ("rise", "fall"):
            if r.nargs(k, 1):
                f[kw] = r.int_in(k, a[0], 1, 2**31 - 1)
        elif kw == "init_fail":
            if r.nargs(k, 0):
                f["init_fail"] = True
        else:
            r.err(k, f"unknown keyword '{kw}' in vrrp_check")
    if probe_node is None:
        r.err(n, f"vrrp_check '{name}' has no probe (TCP_CHECK, HTTP_GET, SSL_GET or DNS_CHECK)")
        return
    if name is None or probe is None:
        return
    values = {key: v for key, v in f.items() if v is not None}
    checks[name] = (CheckSpec(name, probe, **values), n)


def _probe(r: Reader, n: Node) -> tuple[Any, tuple[int | None, Node] | None]:
    """(the probe or None if it has a problem, (timeout ms, its node) if connect_timeout was given)."""
    kind = n.kw
    tls = kind == "SSL_GET"
    http = kind in ("HTTP_GET", "SSL_GET")
    dns = kind == "DNS_CHECK"
    f: dict[str, Any] = {}
    urls: list[UrlSpec] = []
    expect: list[tuple[Any, Node]] = []
    timeout: tuple[int | None, Node] | None = None
    ok = True
    if n.args:
        r.err(n, f"'{kind}' takes no value")
        ok = False
    for k in r.want_block(n) or ():
        kw, a = k.kw, k.args
        if kw == "url" and http:
            u = _url(r, k)
            if u is None:
                ok = False
            else:
                urls.append(u)
            continue
        r.no_block(k)
        if kw in ("connect_ip", "bindto"):
            if r.nargs(k, 1):
                ip = r.ip(k, a[0], f"{kw} address")
                if ip is None:
                    ok = False
                f[kw] = (ip, k)
            else:
                ok = False
        elif kw == "connect_port":
            if r.nargs(k, 1):
                f[kw] = r.int_in(k, a[0], *_PORT)
            if f.get(kw) is None:
                ok = False
        elif kw == "connect_timeout":
            if r.nargs(k, 1):
                timeout = (r.secs_in(k, a[0], *_TIMEOUT), k)
        elif kw == "virtualhost" and http:
            if r.nargs(k, 1):
                f[kw] = a[0]
        elif kw == "verify_cert" and tls:
            if r.nargs(k, 0):
                f[kw] = True
        elif kw == "ca_file" and tls:
            if r.nargs(k, 1):
                f[kw] = a[0]
        elif kw == "type" and dns:
            if r.nargs(k, 1):
                t = a[0].upper()
                if t not in ("A", "AAAA"):
                    r.err(k, f"DNS_CHECK type '{a[0]}' is not A or AAAA")
                    ok = False
                else:
                    f[kw] = t
        elif kw == "name" and dns:
            if r.nargs(k, 1):
                f[kw] = a[0]
        elif kw == "expect" and dns:
            if r.nargs(k, 1):
                ip = r.ip(k, a[0], "expect address")
                if ip is None:
                    ok = False
                else:
                    expect.append((ip, k))
        else:
            r.err(k, f"unknown keyword '{kw}' in {kind}")
            ok = False
    ip_entry = f.get("connect_ip")
    if ip_entry is None:
        r.err(n, f"{kind} needs connect_ip")
        return None, timeout
    connect_ip, _ = ip_entry
    bind = f.get("bindto")
    if connect_ip is not None and bind is not None and bind[0] is not None:
        if bind[0].version != connect_ip.version:
            r.err(bind[1], f"bindto {bind[0]} is not IPv{connect_ip.version} like connect_ip {connect_ip}")
            ok = False
    if dns:
        if "name" not in f:
            r.err(n, "DNS_CHECK needs name")
            ok = False
        want = 6 if f.get("type") == "AAAA" else 4
        for ip, k in expect if ok else ():  # (a bad type is reported already; its family is unknown)
            if ip.version != want:
                r.err(k, f"expect {ip} is not an IPv{want} address (type {f.get('type', 'A')})")
                ok = False
    if not ok or connect_ip is None:
        return None, timeout
    bind_ip = bind[0] if bind else None
    if kind == "TCP_CHECK":
        if "connect_port" not in f:
            r.err(n, "TCP_CHECK needs connect_port")
            return None, timeout
        return TcpCheck(connect_ip, f["connect_port"], bind_ip), timeout
    if dns:
        return (
            DnsCheck(
                connect_ip,
                f["name"],
                f.get("type", "A"),
                f.get("connect_port", 53),
                tuple(e[0] for e in expect),
            ),
            timeout,
        )
    return (
        HttpCheck(
            connect_ip,
            f.get("connect_port", 443 if tls else 80),
            tuple(urls) if urls else (UrlSpec(),),
            f.get("virtualhost"),
            tls,
            f.get("verify_cert", False),
            f.get("ca_file"),
            bind_ip,
        ),
        timeout,
    )


def _url(r: Reader, n: Node) -> UrlSpec | None:
    if n.args:
        r.err(n, "'url' takes no value")
        return None
    f: dict[str, Any] = {}
    codes: list[int] = []
    ok = True
    for k in r.want_block(n) or ():
        kw, a = k.kw, k.args
        r.no_block(k)
        if kw == "path":
            if r.nargs(k, 1):
                if not a[0].startswith("/"):
                    r.err(k, f"url path '{a[0]}' must start with '/'")
                    ok = False
                f["path"] = a[0]
        elif kw == "status_code":
            if r.nargs(k, 1, -1):
                for x in a:
                    c = r.int_in(k, x, 100, 599, "status_code")
                    if c is None:
                        ok = False
                    else:
                        codes.append(c)
            else:
                ok = False
        elif kw == "digest":
            if r.nargs(k, 1):
                if not _MD5_HEX.match(a[0]):
                    r.err(k, f"digest '{a[0]}' is not an MD5 sum (32 hex digits)")
                    ok = False
                else:
                    f["digest"] = a[0].lower()
        elif kw == "regex":
            if r.nargs(k, 1):
                try:
                    re.compile(a[0])
                except re.error as e:
                    r.err(k, f"regex '{a[0]}' is not valid: {e}")
                    ok = False
                else:
                    f["regex"] = a[0]
        elif kw == "regex_no_match":
            if r.nargs(k, 0):
                f["regex_no_match"] = True
        else:
            r.err(k, f"unknown keyword '{kw}' in url")
            ok = False
    if "regex_no_match" in f and "regex" not in f:
        r.err(n, "regex_no_match without regex")
        ok = False
    if not ok:
        return None
    return UrlSpec(
        f.get("path", "/"), tuple(codes), f.get("digest"), f.get("regex"), f.get("regex_no_match", False)
    )
