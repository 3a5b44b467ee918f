"""Route and rule lines judged by Debian's keepalived 2.2.7 and by fastvrrp's reader, line by line.

Each line of tests/configs/route_lines/{routes,rules}.txt goes alone into a virtual_routes / virtual_rules
block. keepalived -t exits 0 when it takes the line as it is, and non-zero when it skips the line, adjusts it
(a deprecated word, a clamped prefix, a reset protocol, a default priority) or refuses it. fastvrrp's verdict
is clean when the reader reports neither a problem nor an adjustment for the line. The two verdicts must be
the same, except for the lines below, where fastvrrp refuses what it cannot apply with keepalived's meaning.
keepalived -t checks that interfaces exist, so it runs in a namespace holding eth0.
"""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

from fastvrrp.config.lexer import Node
from fastvrrp.config.route_lines import route, rule
from fastvrrp.config.values import Reporter

pytestmark = pytest.mark.netns

HERE = pathlib.Path(__file__).resolve().parent.parent / "configs" / "route_lines"


def _lines(name: str) -> list[str]:
    return [x for x in (HERE / name).read_text().splitlines() if x.strip() and not x.startswith("#")]


ROUTES = _lines("routes.txt")
RULES = _lines("rules.txt")

# keepalived takes these as they are; fastvrrp skips them with a warning (docs/keepalived-config.md).
SKIPPED_HERE = {
    "198.51.100.0/24 dev eth0 encap ila 2001:0:0:1": "ILA encapsulation is not implemented by fastvrrp",
    "198.51.100.0/24 no_track nexthop via 192.0.2.254 dev eth0 encap mpls 100 nexthop via 192.0.2.253"
    " dev eth0": "encap inside a nexthop (a tunnel per path) is not implemented by fastvrrp",
}
# Interfaces (and VRF devices) are checked by `fastvrrp -t` for the whole file, not by the line reader.
INTERFACE_CHECKS = {
    "198.51.100.0/24 via 192.0.2.254 dev nosuch0": "doesn't exist",
    "from 192.0.2.0/24 table 100 iif nosuch0 priority 5": "doesn't exist",
    "198.51.100.0/24 via 192.0.2.254 dev eth0 vrf blue": "VRF blue not found for route",
}
# keepalived skips, adjusts or fails these too, but fastvrrp refuses them with an error (a keyword without
# its value): both verdicts say "not clean", the test checks fastvrrp says why.
ERRORS = {
    "198.51.100.0/24 via 192.0.2.254 dev eth0 metric": "'metric' needs a value",
    "from 192.0.2.0/24 table 100 priority": "'priority' needs a value",
    "198.51.100.0/24 via 192.0.2.254 dev eth0 table": "'table' needs a value",
    "198.51.100.0/24 dev eth0 encap mpls": "'encap mpls' needs a value",
    "from 192.0.2.0/24 priority 5 table": "'table' needs a value",
}


@pytest.fixture(scope="module")
def keepalived_ns(keepalived_bin):
    from fastvrrp.lab.namespaces import Lab

    lab = Lab(prefix=f"fvrv{os.getpid() % 100000}-")
    try:
        ns = lab.ns("k")
        lab.veth(ns, "eth0", ns, "eth1")
        yield keepalived_bin, ns, lab.workdir
    finally:
        lab.close()


def keepalived_verdict(keepalived_ns, block: str, line: str) -> tuple[int, str]:
    exe, ns, workdir = keepalived_ns
    path = os.path.join(workdir, "line.conf")
    with open(path, "w") as f:
        f.write(
            "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n priority 100\n"
            f" virtual_ipaddress {{\n  192.0.2.10/24\n }}\n {block} {{\n  {line}\n }}\n}}\n"
        )
    p = subprocess.run(
        ["ip", "netns", "exec", ns, exe, "-t", "-f", path, "-l", "-D"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        timeout=30,
    )
    return p.returncode, p.stdout + p.stderr


def fastvrrp_verdict(read, line: str) -> Reporter:
    r = Reporter()
    words = line.split()
    read(r, Node(words[0], words[1:], "line.conf", 9))
    return r


@pytest.mark.parametrize(
    ("block", "read", "line"),
    [("virtual_routes", route, x) for x in ROUTES] + [("virtual_rules", rule, x) for x in RULES],
    ids=lambda v: v if isinstance(v, str) and " " in v else None,
)
def test_line_verdict_agrees_with_keepalived(keepalived_ns, block, read, line):
    rc, log = keepalived_verdict(keepalived_ns, block, line)
    ours = fastvrrp_verdict(read, line)
    said = [p.message for p in ours.problems + ours.adjustments]
    assert all(p.line == 9 and p.file == "line.conf" for p in ours.problems + ours.adjustments)
    if line in INTERFACE_CHECKS:
        assert rc != 0 and INTERFACE_CHECKS[line] in log and not said, log
    elif line in SKIPPED_HERE:
        assert rc == 0, log
        assert not ours.problems and len(said) == 1 and SKIPPED_HERE[line] in said[0], said
    elif line in ERRORS:
        assert rc != 0, log
        assert len(ours.problems) == 1 and ERRORS[line] in ours.problems[0].message, said
    else:
        assert (rc == 0) == (not said), f"keepalived exit {rc}: {log}\nfastvrrp: {said}"
        assert not ours.problems, "what keepalived starts with is an adjustment, not an error"


def test_the_corpus_covers_both_verdicts():
    """The line files hold lines of every kind: read clean, adjusted and kept, skipped, refused."""
    seen = {"clean": 0, "kept": 0, "skipped": 0, "refused": 0}
    for read, lines in ((route, ROUTES), (rule, RULES)):
        for line in lines:
            r = fastvrrp_verdict(read, line)
            skipped = any("skipped" in p.message for p in r.adjustments)
            kind = "refused" if r.problems else "skipped" if skipped else "kept" if r.adjustments else "clean"
            seen[kind] += 1
    assert min(seen.values()) >= 5, seen
