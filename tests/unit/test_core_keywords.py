"""keepalived keywords the protocol core and the driver honour beyond the RFC: down_timer_adverts and
garp_lower_prio_repeat / garp_lower_prio_delay. Virtual clock, integer microseconds."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from fastvrrp import _engine, _wire
from fastvrrp.config import load
from fastvrrp.config.to_core import instance_config
from fastvrrp.core import Advert, InstanceParams, State, StateChanged, VrrpInstance
from fastvrrp.core.timers import master_down_interval_us
from fastvrrp.daemon.driver import Driver, RunningInstance, make_templates
from fastvrrp.io.announce import AnnounceSchedule, AnnounceSettings


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


ME, PEER, VIP = ip("192.0.2.10"), ip("192.0.2.20"), ip("192.0.2.100")
MS, SEC = 1000, 1_000_000
SKEW_100 = 609_375  # (256 - 100) * 1 s / 256, exact in us (RFC 5798 6.1)


def cfg(**kw) -> InstanceParams:
    base = dict(name="vi", vrid=51, primary_ip=ME, addresses=(VIP,))
    base.update(kw)
    return InstanceParams(**base)


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


# --- garp_lower_prio_repeat / garp_lower_prio_delay (the driver, on a capture-mode engine) ----------------

MCAST = ip("224.0.0.18")


def ip4(src: bytes, dst: bytes, msg: bytes) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(msg), 0, 0, 255, 112, 0, src, dst)
    return hdr[:10] + struct.pack("!H", _wire.checksum(hdr)) + hdr[12:] + msg


@dataclass
class Recorder:
    """The Port: what the driver asks of the outside world, with the virtual time."""

    clock: list
    log: list = field(default_factory=list)

    def addresses(self, inst: RunningInstance, add: bool) -> None:
        self.log.append((self.clock[0], "add" if add else "del"))

    def announce(self, inst: RunningInstance, frames: list[bytes]) -> None:
        self.log.append((self.clock[0], "announce", len(frames)))

    def transition(self, inst: RunningInstance, change: StateChanged) -> None:
        self.log.append((self.clock[0], change.new.name))

    def lower_priority(self, inst: RunningInstance, priority: int) -> None:
        self.log.append((self.clock[0], "lower", priority))


def owner_master(repeat: int, delay_ms: int, report: bool = False, **kw):
    """An address owner (master at once) whose GARPs are isolated: one frame at becoming master, no second
    set; returns (driver, inst, rx, port, clock)."""
    clock = [0]
    eng = _engine.Engine(capture=True)
    rx = eng.add_rx_socket(-1, 4, own=[ME])
    tx = eng.add_tx_socket(-1, 4)
    slot = eng.add_slot(rx, 51, 3)
    port = Recorder(clock)
    drv = Driver(eng, port)
    c = cfg(priority=255, **kw)
    inst = RunningInstance(
        name="vi",
        core=VrrpInstance(c),
        slot=slot,
        tx_id=tx,
        ifindex=1,
        adver_int_ms=c.adver_int_ms,
        dests=[MCAST],
        templates=make_templates(
            version=3,
            family=4,
            vrid=51,
            priority=255,
            adver_int_ms=1000,
            addresses=[VIP],
            src=ME,
            dests=[MCAST],
        ),
        announcer=AnnounceSchedule([b"garp"], [], AnnounceSettings(master_repeat=1, master_delay_ms=0)),
        garp_lower_prio_repeat=repeat,
        garp_lower_prio_delay_ms=delay_ms,
        report_lower_prio=report,
    )
    drv.add(inst)
    drv.start(inst, 0)
    assert inst.core.state is State.MASTER
    return drv, inst, rx, port, clock


def lower_advert(prio: int) -> bytes:
    (t,) = make_templates(
        version=3,
        family=4,
        vrid=51,
        priority=prio,
        adver_int_ms=1000,
        addresses=[VIP],
        src=PEER,
        dests=[MCAST],
    )
    return ip4(PEER, MCAST, t.render(prio, 1000))


def run_until(drv: Driver, clock: list, t_end: int) -> None:
    while (nd := drv.next_deadline()) >= 0 and nd <= t_end:
        clock[0] = nd
        drv.tick(nd)
    clock[0] = t_end


def hear(drv: Driver, rx: int, clock: list, at: int, prio: int = 100) -> None:
    run_until(drv, clock, at)
    drv.handle(drv.engine.feed(rx, at, [lower_advert(prio)]), at)


def announcements(port: Recorder) -> list[tuple[int, int]]:
    return [(t, n) for t, what, *rest in port.log if what == "announce" for n in rest]


def test_garp_lower_prio_repeat_sends_a_burst_now_and_after_the_delay():
    """keepalived garp_lower_prio_repeat 3, garp_lower_prio_delay 2 s: a master hearing a lower priority
    sends 3 GARPs per VIP at once and 3 more 2 s later; once per S9 interval (RFC 9568 6.4.3 rate limit)."""
    drv, inst, rx, port, clock = owner_master(3, 2000, notify_lower_prio=True)
    assert announcements(port) == [(0, 1)]  # becoming master (RFC 5798 6.4.1)
    hear(drv, rx, clock, 500 * MS)
    hear(drv, rx, clock, 700 * MS)  # inside the S9 interval: no new burst, no second timer
    run_until(drv, clock, 10 * SEC)
    assert announcements(port) == [(0, 1), (500 * MS, 3), (2500 * MS, 3)]
    assert not any(what == "lower" for _t, what, *_ in port.log)  # notify_master_rx_lower_pri not set


def test_garp_lower_prio_without_delay_and_report():
    drv, inst, rx, port, clock = owner_master(2, 0, report=True, notify_lower_prio=True)
    hear(drv, rx, clock, 300 * MS, prio=90)
    run_until(drv, clock, 10 * SEC)
    assert announcements(port) == [(0, 1), (300 * MS, 2)]
    assert (300 * MS, "lower", 90) in port.log


def test_garp_lower_prio_second_set_dropped_when_no_longer_master():
    drv, inst, rx, port, clock = owner_master(2, 2000, notify_lower_prio=True)
    hear(drv, rx, clock, 300 * MS)
    drv.set_fault(inst, True, 1 * SEC)
    run_until(drv, clock, 10 * SEC)
    assert announcements(port) == [(0, 1), (300 * MS, 2)]
    assert not drv.lower_prio_second


def test_garp_lower_prio_repeat_turns_the_core_report_on(tmp_path):
    """to_core: garp_lower_prio_repeat (default garp_master_repeat) makes the core report a lower priority."""
    p = tmp_path / "k.conf"
    p.write_text(
        "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n garp_lower_prio_repeat 2\n"
        " virtual_ipaddress {\n  192.0.2.5/24\n }\n}\n"
    )
    (a,) = load(str(p)).instances
    assert a.garp_lower_prio_repeat == 2
    assert instance_config(a, "192.0.2.10").notify_lower_prio
