"""keepalived keywords the protocol core honours beyond the RFC: down_timer_adverts (and, further down, the
others this file grows with). Virtual clock, integer microseconds."""

from __future__ import annotations

import ipaddress

from fastvrrp.config import load
from fastvrrp.config.to_core import instance_config
from fastvrrp.core import Advert, InstanceConfig, State, StateChanged, VrrpInstance
from fastvrrp.core.timers import master_down_interval_us


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


ME, PEER, VIP = ip("192.0.2.10"), ip("192.0.2.20"), ip("192.0.2.100")
MS, SEC = 1000, 1_000_000
SKEW_100 = 609_375  # (256 - 100) * 1 s / 256, exact in us (RFC 5798 6.1)


def cfg(**kw) -> InstanceConfig:
    base = dict(name="vi", vrid=51, primary_ip=ME, addresses=(VIP,))
    base.update(kw)
    return InstanceConfig(**base)


def adv(priority: int, interval: int = 1000) -> Advert:
    return Advert(src=PEER, vrid=51, priority=priority, adver_int_ms=interval, version=3, addresses=(VIP,))


# --- down_timer_adverts -------------------------------------------------------------------------------------


def test_down_timer_default_is_the_rfc_three_adverts():
    assert cfg().down_timer_adverts == 3
    assert master_down_interval_us(3, 100, SEC) == 3 * SEC + SKEW_100
    inst = VrrpInstance(cfg())
    inst.start(0)
    assert inst.next_deadline_us == 3 * SEC + SKEW_100


def test_down_timer_adverts_sets_master_down_interval_at_start():
    """keepalived down_timer_adverts N: Master_Down_Interval = N * Master_Adver_Interval + Skew_Time."""
    inst = VrrpInstance(cfg(down_timer_adverts=5))
    assert inst.start(1 * SEC) == [StateChanged(State.INIT, State.BACKUP, "startup")]
    assert inst.master_down_interval_us == 5 * SEC + SKEW_100
    assert inst.on_timer(1 * SEC + 5 * SEC + SKEW_100 - 1) == []
    assert inst.state is State.BACKUP
    acts = inst.on_timer(1 * SEC + 5 * SEC + SKEW_100)
    assert acts[-1] == StateChanged(State.BACKUP, State.MASTER, "master down timer expired")


def test_down_timer_adverts_follows_a_learned_interval():
    """RFC 5798 6.4.2 (S4): the learned Master_Adver_Interval is multiplied by N, not by 3."""
    inst = VrrpInstance(cfg(down_timer_adverts=1))
    inst.start(0)
    inst.on_advert(adv(200, interval=500), 700 * MS)
    skew = 156 * 500_000 // 256  # 304687 (rounded down)
    assert inst.master_down_interval_us == 500_000 + skew
    assert inst.next_deadline_us == 700 * MS + 500_000 + skew


def test_down_timer_adverts_reaches_the_core_from_config(tmp_path):
    p = tmp_path / "k.conf"
    p.write_text(
        "global_defs {\n vrrp_down_timer_adverts 4\n}\n"
        "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n"
        " virtual_ipaddress {\n  192.0.2.5/24\n }\n}\n"
        "vrrp_instance B {\n interface eth0\n virtual_router_id 6\n down_timer_adverts 7\n"
        " virtual_ipaddress {\n  192.0.2.6/24\n }\n}\n"
    )
    conf = load(str(p))
    got = {i.name: instance_config(i, "192.0.2.10").down_timer_adverts for i in conf.instances}
    assert got == {"A": 4, "B": 7}
