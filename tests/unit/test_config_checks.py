"""`vrrp_check` blocks (docs/health-checks.md): parsed values, references and every message (exact line)."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys

from fastvrrp.config import check
from fastvrrp.core.priority import Ref, resolve_refs
from fastvrrp.health.spec import DnsCheck, HttpCheck, TcpCheck, UrlSpec

A = ipaddress.ip_address

CHECKS = """vrrp_check web_up {
    HTTP_GET {
        url {
            path /health
            status_code 200 204
            digest 9A0364B9E99BB480DD25E1F0284C8555
            regex "ready"
            regex_no_match
        }
        url { path /other }
        connect_ip 192.0.2.10
        bindto 192.0.2.1
        virtualhost www.example.test
        connect_timeout 1.5
    }
    interval 1
    rise 2
    fall 3
    weight -20
}
vrrp_check tls_up {
    SSL_GET {
        connect_ip 2001:db8::10
        verify_cert
        ca_file /etc/ssl/ca.pem
    }
}
vrrp_check db_port {
    TCP_CHECK {
        connect_ip 192.0.2.20
        connect_port 5432
    }
    timeout 0.5
    weight 10 reverse
    init_fail
}
vrrp_check resolver {
    DNS_CHECK {
        connect_ip 192.0.2.53
        type aaaa
        name svc.example.test
        expect 2001:db8::5
        expect 2001:db8::6
    }
    interval 2
}
"""

INSTANCE = """vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 5
    virtual_ipaddress {
        192.0.2.5/24
    }
    track_script {
        web_up
        db_port weight -50
        resolver
    }
}
"""


def ln(text, needle, nth=1):
    """The line number of the nth line of `text` containing `needle`."""
    hits = [i for i, line in enumerate(text.split("\n"), 1) if needle in line]
    return hits[nth - 1]


def run(tmp_path, text, strict=False):
    p = tmp_path / "k.conf"
    p.write_text(text)
    return check(str(p), "x", strict=strict)


def messages(tmp_path, text):
    cfg, probs, _u = run(tmp_path, text)
    assert cfg is None
    return [(p.line, p.message) for p in probs]


def test_checks_parsed(tmp_path):
    cfg, probs, _u = run(tmp_path, CHECKS + INSTANCE)
    assert probs == []
    c = cfg.vrrp_checks
    assert list(c) == ["web_up", "tls_up", "db_port", "resolver"]
    web = c["web_up"]
    assert (web.interval_ms, web.timeout_ms, web.rise, web.fall, web.weight, web.reverse, web.init_fail) == (
        1000,
        1500,
        2,
        3,
        -20,
        False,
        False,
    )
    assert web.check == HttpCheck(
        A("192.0.2.10"),
        80,
        (
            UrlSpec("/health", (200, 204), "9a0364b9e99bb480dd25e1f0284c8555", "ready", True),
            UrlSpec("/other"),
        ),
        "www.example.test",
        False,
        False,
        None,
        A("192.0.2.1"),
    )
    assert c["tls_up"].check == HttpCheck(
        A("2001:db8::10"), 443, (UrlSpec(),), None, True, True, "/etc/ssl/ca.pem", None
    )
    assert c["tls_up"].timeout_ms == 2000  # the default
    db = c["db_port"]
    assert db.check == TcpCheck(A("192.0.2.20"), 5432, None)
    assert (db.timeout_ms, db.weight, db.reverse, db.init_fail) == (500, 10, True, True)
    assert c["resolver"].check == DnsCheck(
        A("192.0.2.53"), "svc.example.test", "AAAA", 53, (A("2001:db8::5"), A("2001:db8::6"))
    )
    assert c["resolver"].interval_ms == 2000


def test_track_script_names_a_check(tmp_path):
    cfg, probs, _u = run(tmp_path, CHECKS + INSTANCE)
    assert probs == []
    inst = cfg.instance("VI_1")
    assert [r.name for r in inst.track_script] == ["web_up", "db_port", "resolver"]
    refs, _w = resolve_refs(inst, cfg)
    assert [r for r in refs if r.kind == "check"] == [
        Ref("check", "web_up", -20, False),
        Ref("check", "db_port", -50, False),
        Ref("check", "resolver", 0, False),
    ]


def test_to_json_includes_checks(tmp_path):
    cfg, _p, _u = run(tmp_path, CHECKS + INSTANCE)
    d = json.loads(cfg.to_json())
    assert d["vrrp_checks"]["db_port"] == {
        "name": "db_port",
        "check": {"connect_ip": "192.0.2.20", "connect_port": 5432, "bind_ip": None},
        "interval_ms": 1000,
        "timeout_ms": 500,
        "rise": 1,
        "fall": 1,
        "weight": 10,
        "reverse": True,
        "init_fail": True,
    }
    assert d["vrrp_checks"]["resolver"]["check"]["expect"] == ["2001:db8::5", "2001:db8::6"]
    assert d["vrrp_checks"]["web_up"]["check"]["urls"][1]["path"] == "/other"


def test_sync_group_tracks_a_check(tmp_path):
    text = CHECKS + INSTANCE.replace(
        "    track_script {\n        web_up\n        db_port weight -50\n", ""
    ).replace("        resolver\n    }\n", "")
    text += "vrrp_sync_group G {\n group {\n  VI_1\n }\n track_script {\n  resolver\n  nosuch\n }\n}\n"
    assert messages(tmp_path, text) == [
        (ln(text, "nosuch"), "vrrp_sync_group G: track_script 'nosuch' is not defined")
    ]
    cfg, probs, _u = run(tmp_path, text.replace("  nosuch\n", ""))
    assert probs == [] and cfg.sync_groups["G"].track_script[0].name == "resolver"


def test_sync_group_member_weighted_check_is_not_tracked(tmp_path):
    """A vrrp_check is tracked like a vrrp_script: keepalived 2.2.7 drops a weighted one of a sync group
    member ("ignoring tracked script ... with weights due to SYNC group"), with a warning; strict refuses."""
    text = CHECKS + INSTANCE + "vrrp_sync_group G {\n group {\n  VI_1\n }\n}\n"
    line = ln(text, "vrrp_instance VI_1")
    tail = "which sync group G ignores (no sync_group_tracking_weight): not tracked, as keepalived does"
    cfg, probs, warnings = run(tmp_path, text)
    assert probs == [] and cfg is not None
    assert [t.name for t in cfg.instances[0].track_script] == ["resolver"]  # weight 0: kept
    assert [(p.line, p.message) for p in warnings if "sync group" in p.message] == [
        (line, f"vrrp_instance VI_1: track_script 'db_port' has weight -50, {tail}"),
        (line, f"vrrp_instance VI_1: track_script 'web_up' has weight -20, {tail}"),
    ]
    cfg, probs, _u = run(tmp_path, text, strict=True)
    assert cfg is None and len(probs) == 2


def test_name_both_script_and_check(tmp_path):
    text = 'vrrp_script db_port {\n script "/bin/true"\n}\n' + CHECKS
    assert messages(tmp_path, text) == [
        (ln(text, "vrrp_check db_port"), "vrrp_check 'db_port': a vrrp_script has the same name")
    ]


def test_unknown_reference(tmp_path):
    # keepalived: "track script resolvr not found, ignoring..."; refused with strict configuration
    text = CHECKS + INSTANCE.replace("resolver\n", "resolvr\n")
    msg = "vrrp_instance VI_1: track_script 'resolvr' names no vrrp_script: not tracked, as keepalived does"
    cfg, probs, warnings = run(tmp_path, text)
    assert probs == [] and [(w.line, w.message) for w in warnings] == [(ln(text, "resolvr"), msg)]
    assert "resolvr" not in [r.name for r in cfg.instances[0].track_script]
    cfg, probs, _w = run(tmp_path, text, strict=True)
    assert cfg is None
    assert [(p.line, p.message) for p in probs] == [
        (ln(text, "resolvr"), msg + " [refused: strict configuration]")
    ]


def test_owner_does_not_track_a_weighted_check(tmp_path):
    """keepalived 2.2.7: "(VI_1) ignoring tracked script web_up with weights due to address_owner"."""
    text = CHECKS + INSTANCE.replace("virtual_router_id 5\n", "virtual_router_id 5\n    priority 255\n")
    cfg, probs, warnings = run(tmp_path, text)
    assert probs == [] and cfg is not None
    assert [t.name for t in cfg.instances[0].track_script] == ["resolver"]
    tail = "has a weight, which the address owner (priority 255) ignores: not tracked, as keepalived does"
    assert [(p.line, p.message) for p in warnings if "address owner" in p.message] == [
        (ln(text, "        web_up"), f"vrrp_instance VI_1: track_script 'web_up' {tail}"),
        (ln(text, "db_port weight"), f"vrrp_instance VI_1: track_script 'db_port' {tail}"),
    ]


BAD = """vrrp_check none {
    interval 1
}
vrrp_check two {
    TCP_CHECK {
        connect_ip 192.0.2.1
        connect_port 1
    }
    DNS_CHECK {
        connect_ip 192.0.2.1
        name a.example.test
    }
}
vrrp_check ranges {
    TCP_CHECK {
        connect_ip 192.0.2.1
        connect_port 70000
        connect_timeout 0
    }
    interval -1
    rise 0
    fall x
    weight 254
    bogus 1
}
vrrp_check required {
    TCP_CHECK {
        bindto 192.0.2.2
    }
}
vrrp_check tcp_port {
    TCP_CHECK {
        connect_ip 192.0.2.1
    }
}
vrrp_check dns {
    DNS_CHECK {
        connect_ip 192.0.2.53
        type MX
        expect 2001:db8::1
    }
}
vrrp_check dns_family {
    DNS_CHECK {
        connect_ip 192.0.2.53
        name n.example.test
        expect 2001:db8::1
    }
}
vrrp_check http {
    HTTP_GET {
        connect_ip 192.0.2.80
        bindto 2001:db8::1
        verify_cert
        url {
            path health
            status_code 99 200 x
            digest abc
            regex "(("
        }
        url {
            regex_no_match
        }
    }
}
vrrp_check both_timeouts {
    timeout 1
    TCP_CHECK {
        connect_ip 192.0.2.1
        connect_port 1
        connect_timeout 2
    }
}
vrrp_check two {
    TCP_CHECK {
        connect_ip 192.0.2.1
        connect_port 1
    }
}
vrrp_check {
}
"""


def test_every_message(tmp_path):
    assert messages(tmp_path, BAD) == [
        (1, "vrrp_check 'none' has no probe (TCP_CHECK, HTTP_GET, SSL_GET or DNS_CHECK)"),
        (
            9,
            f"vrrp_check 'two': only one probe per vrrp_check (TCP_CHECK already at {tmp_path / 'k.conf'}:5)",
        ),
        (17, "connect_port 70000 out of range [1, 65535]"),
        (18, "connect_timeout 0 out of range [0.001, 86400] seconds"),
        (20, "interval -1 out of range [0.001, 86400] seconds"),
        (21, "rise 0 out of range [1, 2147483647]"),
        (22, "fall 'x' is not an integer"),
        (23, "weight 254 out of range [-253, 253]"),
        (24, "unknown keyword 'bogus' in vrrp_check"),
        (27, "TCP_CHECK needs connect_ip"),
        (32, "TCP_CHECK needs connect_port"),
        (37, "DNS_CHECK needs name"),
        (39, "DNS_CHECK type 'MX' is not A or AAAA"),
        (47, "expect 2001:db8::1 is not an IPv4 address (type A)"),  # (not for line 40: its type is bad)
        (53, "bindto 2001:db8::1 is not IPv4 like connect_ip 192.0.2.80"),
        (54, "unknown keyword 'verify_cert' in HTTP_GET"),
        (56, "url path 'health' must start with '/'"),
        (57, "status_code 'x' is not an integer"),
        (57, "status_code 99 out of range [100, 599]"),
        (58, "digest 'abc' is not an MD5 sum (32 hex digits)"),
        (59, "regex '((' is not valid: missing ), unterminated subpattern at position 1"),
        (61, "regex_no_match without regex"),
        (71, "connect_timeout and timeout both given (they are the same setting)"),
        (74, "vrrp_check 'two' is already defined"),
        (80, "'vrrp_check' needs exactly one name"),
        (80, "vrrp_check 'None' has no probe (TCP_CHECK, HTTP_GET, SSL_GET or DNS_CHECK)"),
    ]


def test_config_does_not_import_the_event_loop():
    code = "import sys, fastvrrp.config; print(sorted(m for m in ('asyncio', 'ssl') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
