"""Reload under load and the soak.

Reload under load: a pair on the density lab (fastvrrp.lab.density: one bridge per 250 VRIDs), router 1
master of every VRID. It gets SIGHUP every RELOAD_EVERY_S (each once the previous one is logged: the daemon
ignores a SIGHUP that arrives during a reload), alternating two configurations that differ in a few
instances (half in priority, 200 <-> 190, half in their VIPs, a second /32 or not). Verdicts:
- an unchanged instance never misses an advert: the largest gap between its master's adverts as they leave
  router 1 stays under 1.5 intervals (one missed advert makes it at least 2), the backup never advertises it
  and logs no transition for it. "Leave": a second capture taps router 1's own interfaces (the kernel's
  transmit tap, before the veth hands the frame to the bridge), so an advert the daemon sent and the kernel
  lost on the way (a full backlog under load: the veth and softnet drop counters) is told apart from one the
  daemon never sent; such losses are reported, with the counters, not counted against the daemon;
- a changed instance follows the RFC: it is rebuilt, so it resigns with priority 0 and the backup takes over
  (RFC 5798 6.4.2) until the rebuilt one preempts it (6.4.2 again); two masters for it never overlap longer
  than one interval + MARGIN_S, within a Master_Down_Interval + MARGIN_S + 1 s of the last reload every
  instance is back on router 1, and each VIP is on one node only (the second VIPs on none);
- RSS flat: after WARMUP reloads, router 1's RSS grows by less than RSS_GROWTH_KIB; its open descriptors
  after each configuration are the same every time.

Soak: router 1 of a pair is reloaded between a configuration where it outranks router 2 (200 vs 100) and one
where it does not (50): every reload moves every instance, so transitions pile up; RSS and open descriptors
of both daemons stay flat (same bounds)."""

from __future__ import annotations

import collections
import os
import re
import signal
import time
from dataclasses import replace

import pytest
from chaoslib import fd_count, link_drops, overlap_windows, softnet_drops, time_runs, vip_holders, vips_right

from fastvrrp.lab.density import Capture, DensityLan, LogWatch, largest_gaps, start_and_wait
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import Lan, Router, many_instances, rss_kib

pytestmark = [pytest.mark.netns, pytest.mark.chaos]

MARGIN_S = 0.25
RELOAD_EVERY_S = 1.0
WARMUP = 5
RSS_GROWTH_KIB = 2048
# What these tests found first: every reload that rebuilt instances left RSS about 6 KiB per rebuilt
# instance larger (cyclic garbage moved into the oldest generation, never collected). Those cycles are gone;
# the daemon now collects fully after a reload only when it replaced running trackers, or after every 1,000
# rebuilt instances (daemon/reload.py, docs/costs.md#collection-after-a-reload), and the soak holds flat.


class RssGrowth(AssertionError):
    """RSS grew past the bound: kept apart so that an expected leak hides no other verdict."""


def check_rss(growth: int, samples: object) -> None:
    if growth >= RSS_GROWTH_KIB:
        raise RssGrowth(f"RSS grew {growth} KiB after warm-up (bound {RSS_GROWTH_KIB} KiB): {samples}")


SPARE_VIPS = [f"{net}.{h}" for net in ("198.51.100", "203.0.113") for h in range(251, 255)]
_ENTER = re.compile(r"\((?P<inst>[^)\s]+)\) Entering (?P<state>[A-Z]+) STATE")


def reload_to(r: Router, instances, done: int) -> None:
    """Write `instances` as r's configuration, send SIGHUP, wait until the daemon logs reload number done."""
    r.instances = list(instances)
    r.write_config()
    os.kill(r.proc.pid, signal.SIGHUP)
    wait_for(lambda: r.log().count(" reloaded ") >= done, timeout=60, interval=0.02, what=f"reload {done}")


def entries(r: Router) -> collections.Counter:
    """How many states each instance has entered (its log)."""
    return collections.Counter(m["inst"] for m in _ENTER.finditer(r.log()))


def settled(w1: LogWatch, w2: LogWatch) -> bool:
    w1.poll()
    w2.poll()
    return w1.all_in("MASTER") and w2.all_in("BACKUP")


def reload_under_load(lab, count: int, adver_int_ms: int, reloads: int, changed: int) -> None:
    a = adver_int_ms / 1000
    net = DensityLan(lab, instances=count, routers=2)
    base = net.instances(priority=200, adver_int_ms=adver_int_ms)
    other = list(base)
    extra_vips = []
    assert changed <= 2 * len(SPARE_VIPS)
    for k in range(changed):  # the first `changed` instances of segment 0 differ in the second configuration
        s = base[k]
        if k % 2:
            other[k] = replace(s, priority=190)
        else:
            extra_vips.append(SPARE_VIPS[k // 2])  # no instance of the density lab uses these
            other[k] = replace(s, vips=(*s.vips, f"{extra_vips[-1]}/32"))
    names_changed = {base[k].iname for k in range(changed)}
    r1 = net.router(1, "fastvrrp", base)
    r2 = net.router(2, "fastvrrp", net.instances(priority=100, adver_int_ms=adver_int_ms))
    w1 = start_and_wait(r1).watch
    wait_for(lambda: w1.poll() and w1.all_in("MASTER"), timeout=120, interval=0.2, what="router 1 master")
    w2 = start_and_wait(r2).watch
    wait_for(lambda: settled(w1, w2), timeout=60, interval=0.2, what="router 2 backup")
    mdi = r2.instances[0].master_down_ms() / 1000
    rss: list[int] = []
    fds: dict[int, list[int]] = {0: [], 1: []}
    done = 0
    taps = [f"eth{s}" for s in range(net.segments)]
    softnet0 = softnet_drops()
    with net.observer() as obs, Capture(lab, r1.ns, taps) as out:
        t0 = time.time()
        for k in range(reloads + reloads % 2):  # an even count: the last one puts `base` back
            due = t0 + k * RELOAD_EVERY_S
            wait_for(lambda d=due: time.time() >= d, timeout=RELOAD_EVERY_S + 60, interval=0.01, what="tick")
            if k:  # what the previous configuration holds, a reload interval after it was applied
                rss.append(rss_kib([r1.proc.pid]))
                fds[(k - 1) % 2].append(fd_count(r1.proc.pid))
            done += 1
            reload_to(r1, other if k % 2 == 0 else base, done)
        t_last = time.time()
        wait_for(lambda: settled(w1, w2), timeout=mdi + MARGIN_S + 30, interval=0.05, what="all back on r1")
        t_settled = time.time()
        rss.append(rss_kib([r1.proc.pid]))
        fds[1].append(fd_count(r1.proc.pid))
        t1 = t_settled + 2 * a
        wait_for(lambda: time.time() > t1, timeout=5 * a + 5, what="the watch after the reloads")
    assert all(v == 0 for v in obs.dropped.values()), f"the capture lost frames: {obs.dropped}"
    assert all(v == 0 for v in out.dropped.values()), f"the capture at router 1 lost frames: {out.dropped}"
    adverts = obs.adverts()
    key = {s.iname: (int(s.iname.split("_")[1]), s.vrid) for s in base}
    unchanged = {key[s.iname] for s in base if s.iname not in names_changed}
    times: dict[tuple[int, int], dict[int, list[int]]] = collections.defaultdict(lambda: {1: [], 2: []})
    for e in adverts:
        if e.priority and e.src_host % 8 in (1, 2):
            times[(e.segment, e.vrid)][e.src_host % 8].append(e.t_ns)
    for per in times.values():
        per[1].sort()
        per[2].sort()
    sent: dict[tuple[int, int], list[int]] = collections.defaultdict(list)
    for e in out.adverts():
        if e.priority and e.src_host % 8 == 1:
            sent[(e.segment, e.vrid)].append(e.t_ns)
    window = (int(t0 * 1e9), int(t1 * 1e9))
    gaps_out = largest_gaps({k: sorted(sent[k]) for k in unchanged}, *window)
    worst = max(gaps_out.get(k, window[1] - window[0]) for k in unchanged) / 1e9
    gaps = largest_gaps({k: times[k][1] for k in unchanged}, *window)
    long = 1.5 * a * 1e9
    lost = {k: round(g / 1e6, 1) for k, g in gaps.items() if g >= long and gaps_out.get(k, 0) < long}
    kernel = ""
    if lost:
        drops = {**link_drops(lab, r1.ns), **link_drops(lab, net.switch)}
        kernel = (
            f"; adverts sent but not on the bridge (segment, VRID: gap ms) {lost}, kernel drops on the way: "
            f"links {drops}, softnet backlog {softnet_drops() - softnet0} (the host's)"
        )
    backup_unchanged = sum(1 for k in unchanged for t in times[k][2] if t >= t0 * 1e9)
    moved_unchanged = {n: c for n, c in entries(r2).items() if n not in names_changed and c != 1}
    growth = max(rss[WARMUP:]) - rss[WARMUP] if len(rss) > WARMUP else 0
    print(
        f"\n{count} instances at {adver_int_ms} ms, {done} SIGHUPs every {RELOAD_EVERY_S} s ({changed} "
        f"changed): largest gap of an unchanged instance {worst * 1000:.1f} ms as sent (on the bridge "
        f"{max(gaps.values(), default=0) / 1e6:.1f} ms{kernel}); backup adverts for unchanged "
        f"{backup_unchanged}; all back {t_settled - t_last:.2f} s after the last reload; RSS {rss[0]} -> "
        f"{rss[-1]} KiB (growth after {WARMUP} reloads {growth} KiB); descriptors {sorted(set(fds[0]))} / "
        f"{sorted(set(fds[1]))}"
    )
    assert worst < 1.5 * a, f"an unchanged instance went {worst:.3f} s without sending an advert (A = {a} s)"
    assert backup_unchanged == 0, "the backup advertised an unchanged instance"
    assert not moved_unchanged, f"the backup changed state for unchanged instances: {moved_unchanged}"
    assert t_settled - t_last < mdi + MARGIN_S + 1.0, "changed instances slow to come back"
    for k in range(changed):
        seg_vrid = key[base[k].iname]
        ra, rb = (time_runs([t / 1e9 for t in times[seg_vrid][h]], 1.5 * a) for h in (1, 2))
        both = [(lo, hi) for lo, hi in overlap_windows(ra, rb) if hi - lo > a + MARGIN_S]
        assert not both, f"{base[k].iname}: two masters for longer than {a + MARGIN_S} s: {both}"
    assert vips_right(net, r1, r2) == {}
    assert all(h == [] for h in vip_holders(net, extra_vips).values()), vip_holders(net, extra_vips)
    for parity, seq in fds.items():
        assert len(set(seq)) == 1, f"descriptors after configuration {parity}: {seq}"
    check_rss(growth, rss)


def test_reload_under_load_light(lab):
    reload_under_load(lab, count=100, adver_int_ms=500, reloads=12, changed=6)


@pytest.mark.chaos_heavy
def test_reload_under_load_1000_instances_for_a_minute(lab):
    reload_under_load(lab, count=1000, adver_int_ms=1000, reloads=60, changed=16)


def soak(lab, count: int, reloads: int, transitions: int, warmup: int) -> None:
    a_ms = 100
    lan = Lan(lab, routers=2, client=False)
    high, low = many_instances(count, 200, a_ms), many_instances(count, 50, a_ms)
    r1 = lan.router(1, "fastvrrp", high)
    r2 = lan.router(2, "fastvrrp", many_instances(count, 100, a_ms))
    w1 = start_and_wait(r1).watch
    wait_for(lambda: w1.poll() and w1.all_in("MASTER"), timeout=60, interval=0.1, what="router 1 master")
    w2 = start_and_wait(r2).watch
    wait_for(lambda: settled(w1, w2), timeout=60, interval=0.1, what="router 2 backup")
    pids = (r1.proc.pid, r2.proc.pid)
    samples: list[tuple[int, int, tuple[int, int]]] = []  # (reload, parity, (rss r1, rss r2)); fds below
    fds: dict[int, set[tuple[int, int]]] = {0: set(), 1: set()}
    done = 0
    t0 = time.time()
    while done < reloads or w1.transitions + w2.transitions < transitions or done % 2:
        to_low = done % 2 == 0
        done += 1
        reload_to(r1, low if to_low else high, done)
        want1, want2 = ("BACKUP", "MASTER") if to_low else ("MASTER", "BACKUP")

        def moved(s1=want1, s2=want2) -> bool:
            w1.poll()
            w2.poll()
            return w1.all_in(s1) and w2.all_in(s2)

        wait_for(moved, timeout=30, interval=0.05, what=f"every instance moved after reload {done}")
        rss = tuple(rss_kib([p]) for p in pids)
        samples.append((done, done % 2, rss))  # type: ignore[arg-type]
        if done > warmup:
            fds[done % 2].add(tuple(fd_count(p) for p in pids))  # type: ignore[arg-type]
    elapsed = time.time() - t0
    total = w1.transitions + w2.transitions
    base = [s for s in samples if s[0] == warmup][0][2]
    growth = [max(s[2][i] for s in samples if s[0] >= warmup) - base[i] for i in (0, 1)]
    print(
        f"\nsoak: {count} instances, {done} reloads, {total} transitions in {elapsed:.0f} s; RSS after "
        f"{warmup} reloads {base} KiB, largest growth since {growth} KiB; descriptors {fds}"
    )
    assert total >= transitions
    assert all(len(v) == 1 for v in fds.values()), f"descriptors (r1, r2) per configuration: {fds}"
    check_rss(max(growth), samples)


def test_soak_light(lab):
    soak(lab, count=40, reloads=30, transitions=2000, warmup=4)


@pytest.mark.chaos_heavy
def test_soak_100_reloads_10000_transitions(lab):
    soak(lab, count=50, reloads=100, transitions=10_000, warmup=10)


def test_a_sighup_during_a_reload_is_not_lost(lab):
    """An operator edits the file again and sends SIGHUP while the previous reload is still being applied:
    the daemon must end up running what is on disk."""
    lan = Lan(lab, routers=1, client=False)
    base = many_instances(250, 200, 100)
    r = lan.router(1, "fastvrrp", base)
    w = start_and_wait(r).watch
    wait_for(lambda: w.poll() and w.all_in("MASTER"), timeout=60, interval=0.1, what="every instance master")
    # The first reload rebuilds 200 instances: long enough for the second SIGHUP to land inside it.
    r.instances = [replace(i, priority=150) if i.vrid <= 200 else i for i in base]
    r.write_config()
    os.kill(r.proc.pid, signal.SIGHUP)
    wait_for(lambda: "changed by reload" in r.log(), timeout=10, interval=0.001, what="the reload under way")
    if " reloaded " in r.log():
        pytest.fail("the first reload ended before the second SIGHUP: no verdict")
    r.instances = [replace(i, priority=120) if i.vrid == 250 else i for i in r.instances]
    r.write_config()
    os.kill(r.proc.pid, signal.SIGHUP)
    wait_for(lambda: " reloaded " in r.log(), timeout=30, interval=0.05, what="the first reload done")
    applied = wait_for(
        lambda: "(VI_250) changed by reload" in r.log(),
        timeout=10,
        what="VI_250 changed",
        raise_on_timeout=False,
    )
    assert applied, "the configuration on disk (VI_250 at priority 120) was never applied"
