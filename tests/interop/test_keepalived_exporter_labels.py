"""Debian's keepalived as the oracle for the keepalived_* families: mehdy/keepalived-exporter takes
`ip_address` and `intf` of keepalived_vrrp_state from keepalived's data dump (SIGUSR1 ->
/tmp/keepalived.data: "Virtual IP" lines "ADDRESS dev IFNAME ..."), the state from "State = ", and
keepalived_gratuitous_arp_delay_total from "Gratuitous ARP delay = ". fastvrrp, run on the same instance,
must export the same label values."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan

pytestmark = [pytest.mark.interop, pytest.mark.netns]

DUMP = "/tmp/keepalived.data"  # where keepalived 2.2 writes its data dump
STATES = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}  # the exporter's numbers
SCRAPE = (
    "import urllib.request;"
    "print(urllib.request.urlopen('http://127.0.0.1:9650/metrics', timeout=5).read().decode())"
)


def _spec() -> InstanceSpec:
    return InstanceSpec(
        vrid=51,
        priority=200,
        advert_int_ms=1000,
        vips=("192.0.2.100/24", "192.0.2.101/32", "192.0.2.102"),
        extra=(
            "garp_master_delay 3",
            "virtual_ipaddress_excluded {",
            "    198.51.100.7/32",
            "    2001:db8::7/64",
            "}",
        ),
    )


def _keepalived_dump(router) -> dict:
    """The exporter's view of keepalived's data dump for the one instance."""
    if os.path.exists(DUMP):
        os.unlink(DUMP)
    with open(router.pidfiles[0]) as f:
        os.kill(int(f.read()), signal.SIGUSR1)
    text = wait_for(
        lambda: os.path.exists(DUMP) and "Virtual IP Excluded" in (t := open(DUMP).read()) and t,
        timeout=10,
        what="keepalived's data dump",
    )
    os.unlink(DUMP)
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip().startswith("VRRP Instance = VI_51"))
    out: dict = {"vips": [], "excluded": []}
    section = None
    for ln in lines[start:]:
        s = ln.strip()
        if s.startswith("State = ") and "state" not in out:
            out["state"] = STATES[s.split(" = ")[1]]
        elif s.startswith("Gratuitous ARP delay = ") and "garp" not in out:
            out["garp"] = int(s.split(" = ")[1])
        elif s.startswith("Virtual IP ("):
            section = "vips"
        elif s.startswith("Virtual IP Excluded"):
            section = "excluded"
        elif section and " dev " in s:
            args = s.split(" ")
            out[section].append((args[0], args[2]))  # the exporter's ParseVIP: address, interface
        elif section:
            section = None if out[section] else section
    return out


def test_keepalived_families_carry_what_the_exporter_reads_from_keepalived(lab, keepalived_bin):
    lan = Lan(lab, routers=2, client=False)
    ka = lan.router(1, "keepalived", [_spec()], keepalived_bin=keepalived_bin)
    ka.start()
    ka.wait_state("MASTER", timeout=15)
    want = _keepalived_dump(ka)
    ka.stop()
    assert want["state"] == 2 and len(want["vips"]) == 3 and len(want["excluded"]) == 2, want

    fv = lan.router(2, "fastvrrp", [_spec()])
    fv.extra_args = ["--metrics", "127.0.0.1:9650"]
    fv.start()
    fv.wait_state("MASTER", timeout=15)
    text = wait_for(
        lambda: (
            "keepalived_vrrp_state{" in (t := lab.sh(fv.ns, f'{sys.executable} -c "{SCRAPE}"', check=False))
            and t
        ),
        timeout=10,
        what="fastvrrp's metrics",
    )
    for family, key in (("keepalived_vrrp_state", "vips"), ("keepalived_vrrp_excluded_state", "excluded")):
        got = sorted(
            (
                ln.split('ip_address="')[1].split('"')[0],
                ln.split('intf="')[1].split('"')[0],
                ln.rsplit(" ", 1)[1],
            )
            for ln in text.splitlines()
            if ln.startswith(family + "{")
        )
        assert got == sorted((ip, dev, str(want["state"])) for ip, dev in want[key]), (family, got, want)
    garp = [ln for ln in text.splitlines() if ln.startswith("keepalived_gratuitous_arp_delay_total{")]
    assert garp == [
        f'keepalived_gratuitous_arp_delay_total{{iname="VI_51",intf="eth0",vrid="51"}} {want["garp"]}'
    ]
