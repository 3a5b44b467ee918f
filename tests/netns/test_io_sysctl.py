"""sysctls are set inside the namespace only, and restored."""

from __future__ import annotations

import pytest

from fastvrrp.io import sysctl

pytestmark = pytest.mark.netns


def _sysctl(lab, ns: str, name: str) -> str:
    return lab.sh(ns, f"sysctl -n {name}").strip()


def test_set_restore_in_namespace_only(lab):
    a = lab.ns("a")
    b = lab.ns("b")
    lab.veth(a, "ethA", b, "ethB")
    lab.sh(a, "ip link add name vrrp4.51 link ethA type macvlan mode private")
    root_before = open("/proc/sys/net/ipv4/conf/all/arp_ignore").read().strip()

    ch = sysctl.SysctlChanges(netns=a)
    assert ch.apply_all(sysctl.vmac_settings("ethA", "vrrp4.51") + sysctl.vip_settings("ethA"))
    assert _sysctl(lab, a, "net.ipv4.conf.ethA.arp_ignore") == "1"
    assert _sysctl(lab, a, "net.ipv4.conf.ethA.arp_filter") == "1"
    # The interface name has a dot: sysctl(8) wants it as a slash in dotted form.
    assert _sysctl(lab, a, "net.ipv4.conf.vrrp4/51.rp_filter") == "0"
    assert _sysctl(lab, a, "net.ipv4.conf.vrrp4/51.accept_local") == "1"
    assert _sysctl(lab, a, "net.ipv6.conf.vrrp4/51.addr_gen_mode") == "1"
    assert _sysctl(lab, a, "net.ipv6.conf.ethA.keep_addr_on_down") == "1"
    assert _sysctl(lab, b, "net.ipv4.conf.ethB.arp_ignore") == "0"  # other namespaces untouched
    assert open("/proc/sys/net/ipv4/conf/all/arp_ignore").read().strip() == root_before

    # Applying again does not overwrite the remembered originals.
    assert ch.apply(sysctl.conf_path(4, "ethA", "arp_ignore"), 2)
    ch.restore()
    assert _sysctl(lab, a, "net.ipv4.conf.ethA.arp_ignore") == "0"
    assert _sysctl(lab, a, "net.ipv4.conf.vrrp4/51.accept_local") == "0"
    assert _sysctl(lab, a, "net.ipv6.conf.ethA.keep_addr_on_down") == "0"
    assert ch.saved == [] and ch.errors == []


def test_missing_interface_is_an_error_entry_not_an_exception(lab):
    a = lab.ns("a")
    ch = sysctl.SysctlChanges(netns=a)
    assert not ch.apply(sysctl.conf_path(4, "nope0", "arp_ignore"), 1)
    assert ch.errors and ch.errors[0][0] == "net/ipv4/conf/nope0/arp_ignore"
    assert sysctl.set_sysctl("net/ipv4/conf/lo/arp_ignore", 1, netns=a) == "0"
    assert sysctl.get_sysctl("net/ipv4/conf/lo/arp_ignore", netns=a) == "1"


def test_paths_are_validated():
    with pytest.raises(ValueError):
        sysctl.conf_path(4, "../x", "arp_ignore")
    with pytest.raises(ValueError):
        sysctl.get_sysctl("kernel/hostname")
    with pytest.raises(ValueError):
        sysctl.get_sysctl("net/../kernel/hostname")
