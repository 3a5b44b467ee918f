"""`fastvrrp demo`: three routers and a client on a bridge, in namespaces it makes and removes.

It starts fastvrrp on each router from generated keepalived.conf files, shows which router holds the VIP,
then crashes the master, pulls a link and stops a router gracefully, and for each prints a timeline measured
on the wire (the old master's last advert, the new master's first advert and first gratuitous ARP, and the
client's ping outage) beside the value the RFC allows. Documentation addresses only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from fastvrrp.lab.namespaces import Lab, wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan, Router, WireTap, master_down_ms, skew_ms

VIP = "192.0.2.100"
BOLD, DIM, GREEN, YELLOW, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[33m", "\033[0m"


class Out:
    def __init__(self, color: bool) -> None:
        self.color = color

    def c(self, code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if self.color else text

    def head(self, text: str) -> None:
        print("\n" + self.c(BOLD, f"== {text}"))

    def line(self, text: str = "") -> None:
        print(text, flush=True)


def _holders(lan: Lan, routers: Sequence[Router]) -> str:
    held = set(lan.who_has(VIP))
    parts = []
    for r in routers:
        state = r.state() if r.alive() else "stopped"
        mark = ""
        if r.ns in held:
            mark = f"  <- holds {VIP}" if r.alive() else "  (VIP still on the dead box, its link unplugged)"
        parts.append(
            f"    {r.name.split('-')[0]:<4} {r.addr4:<12} prio {r.instances[0].priority:<4} "
            f"{state or '?':<8}{mark}"
        )
    return "\n".join(parts)


def _timeline(
    out: Out,
    tap: WireTap,
    old: Router,
    new: Router,
    t_action: float,
    expected_ms: float,
    what: str,
    timeout: float,
) -> dict[str, float | None]:
    first = wait_for(
        lambda: tap.first_advert_from(new.addr4, 51, after=t_action),
        timeout=timeout,
        interval=0.005,
        what=f"{new.name} to advertise",
    )
    last = tap.last_advert_from(old.addr4, 51, before=first.t)
    garp = None
    try:
        garp = wait_for(
            lambda: tap.first_garp(VIP, after=first.t - 0.002),
            timeout=1.0,
            interval=0.005,
            what="gratuitous ARP",
        )
    except TimeoutError:
        pass
    gap = None
    try:
        # The outage spans the takeover: from the last reply before the event to the first after it.
        wait_for(
            lambda: tap.ping_gap(VIP, t_action, first.t + 0.05) is not None,
            timeout=3.0,
            interval=0.02,
            what="ping",
        )
        gap = tap.ping_gap(VIP, t_action, first.t + 0.05)
    except TimeoutError:
        pass
    base = last.t if last is not None else t_action
    o, n = old.name.split("-")[0], new.name.split("-")[0]
    out.line(f"  {what}")
    if last is not None:
        label = "priority-0 advert" if last.priority == 0 else f"last advert (prio {last.priority})"
        out.line(f"    {0.0:>9.1f} ms  {o} {label}")
    took = (first.t - base) * 1000
    dev = took - expected_ms
    verdict = out.c(GREEN, f"{dev:+.1f} ms") if abs(dev) <= 3 else out.c(YELLOW, f"{dev:+.1f} ms")
    out.line(
        f"    {took:>9.1f} ms  {n} first advert as master (prio {first.priority})"
        f"   {out.c(DIM, f'RFC {expected_ms:.1f} ms')} {verdict}"
    )
    if garp is not None:
        out.line(f"    {(garp.t - base) * 1000:>9.1f} ms  {n} first gratuitous ARP for {VIP}")
    if gap is not None:
        out.line(f"    client ping outage: {gap * 1000:.0f} ms")
    return {"failover_ms": took, "expected_ms": expected_ms, "ping_gap_ms": gap * 1000 if gap else None}


@dataclass
class _Scene:
    """What every step of the demo acts on: the printer, the LAN, its three routers and the wire tap."""

    out: Out
    lan: Lan
    routers: list[Router]
    advert_int_ms: int

    def show_holders(self) -> None:
        self.out.line(_holders(self.lan, self.routers))


def _build(lab: Lab, out: Out, a: int) -> _Scene:
    """Three routers with priorities 150, 100, 50 and a client on one bridge; r1 ends up master."""
    prios = (150, 100, 50)
    out.head("building the lab")
    lan = Lan(lab, routers=3, client=True)
    out.line(f"  bridge in {lan.switch}; routers r1 r2 r3 at 192.0.2.1-3, client at 192.0.2.50")
    out.line(f"  VRRPv3, VRID 51, VIP {VIP}, advert_int {a} ms; priorities {prios}")
    routers = [
        lan.router(
            i + 1, "fastvrrp", [InstanceSpec(vrid=51, priority=p, advert_int_ms=a, vips=(f"{VIP}/24",))]
        )
        for i, p in enumerate(prios)
    ]
    r1, r2, r3 = routers
    for r in routers:
        r.start()
    r1.wait_state("MASTER", timeout=15)
    for r in (r2, r3):
        r.wait_state("BACKUP", timeout=15)
    wait_for(lambda: lan.who_has(VIP), timeout=5, what="the VIP to appear")
    scene = _Scene(out, lan, routers, a)
    out.head("who holds the VIP")
    scene.show_holders()
    return scene


def _crash_master(scene: _Scene, tap: WireTap) -> None:
    r1, r2, _ = scene.routers
    scene.out.head("1. the master crashes (SIGKILL, link cut)")
    t = time.time()
    r1.crash()
    r1.link_down()  # a dead box: its kernel stops answering for the VIP too
    _timeline(
        scene.out,
        tap,
        r1,
        r2,
        t,
        master_down_ms(100, scene.advert_int_ms),
        "r1 killed, r2 takes over after Master_Down_Interval = 3 x A + skew",
        timeout=10,
    )
    r2.wait_state("MASTER", timeout=5)
    scene.show_holders()


def _pull_link(scene: _Scene, tap: WireTap) -> None:
    _, r2, r3 = scene.routers
    scene.out.head("2. the new master loses its link")
    time.sleep(3 * scene.advert_int_ms / 1000)
    t = time.time()
    r2.link_down()
    _timeline(
        scene.out,
        tap,
        r2,
        r3,
        t,
        master_down_ms(50, scene.advert_int_ms),
        "r2's link pulled: r2 goes to FAULT, r3 takes over after Master_Down_Interval",
        timeout=10,
    )
    r2.wait_state("FAULT", timeout=5)
    r3.wait_state("MASTER", timeout=5)
    scene.show_holders()


def _link_back(scene: _Scene) -> None:
    _, r2, r3 = scene.routers
    scene.out.head("3. the link comes back: r2 preempts the lower-priority r3")
    r2.link_up()
    r2.wait_state("MASTER", timeout=10)
    r3.wait_state("BACKUP", timeout=5)
    scene.show_holders()


def _graceful_stop(scene: _Scene, tap: WireTap) -> None:
    _, r2, r3 = scene.routers
    scene.out.head("4. graceful stop of the master (SIGTERM): priority-0 handover")
    time.sleep(3 * scene.advert_int_ms / 1000)
    t = time.time()
    r2.stop()
    _timeline(
        scene.out,
        tap,
        r2,
        r3,
        t,
        skew_ms(50, scene.advert_int_ms),
        "r2 resigns with priority 0, r3 takes over after Skew_Time",
        timeout=10,
    )
    r3.wait_state("MASTER", timeout=5)
    scene.show_holders()


def _failovers(scene: _Scene) -> None:
    """The four events, watched on the wire while the client pings the VIP every 10 ms."""
    r1 = scene.routers[0]
    tap = scene.lan.tap().start()
    ping = scene.lan.ping(VIP, interval_s=0.01)
    try:
        wait_for(
            lambda: len(tap.snapshot("ping")) > 5 and len(tap.adverts(51, r1.addr4)) >= 3,
            timeout=5,
            what="pings flowing",
        )
        _crash_master(scene, tap)
        _pull_link(scene, tap)
        _link_back(scene)
        _graceful_stop(scene, tap)
    finally:
        ping.stop()
        tap.stop()


def run_demo(advert_int_ms: int = 100, color: bool = True) -> int:
    out = Out(color)
    if os.geteuid() != 0:
        print("fastvrrp demo needs root (it creates network namespaces)", file=sys.stderr)
        return 2
    with Lab() as lab:
        scene = _build(lab, out, advert_int_ms)
        _failovers(scene)
        out.head("cleaning up")
        for r in scene.routers:
            if r.alive():
                r.stop()
    out.line("  namespaces and processes removed.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fastvrrp demo", description=__doc__)
    p.add_argument("--advert-int-ms", type=int, default=100, help="VRRPv3 advert interval (default 100 ms)")
    p.add_argument("--no-color", action="store_true")
    args = p.parse_args(list(argv or []))
    return run_demo(args.advert_int_ms, color=not args.no_color and sys.stdout.isatty())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
