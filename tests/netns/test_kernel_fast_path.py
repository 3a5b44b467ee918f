"""The backup's fast path in the kernel (fastvrrp/io/kfilter.py, docs/costs.md#kernel-fast-path) on real raw
sockets over a veth: a master engine in one namespace advertises every 20 ms; the backup engine in the other
has the eBPF filter on its receive socket.

- Once the backup's fast path has absorbed one advert read from the socket, the kernel absorbs the master's
  next ones: none is queued on the socket, the engine counts them, and they keep pushing the backup's
  Master_Down deadline while nothing reads the socket.
- Everything else still reaches the socket and the normal path: another priority, a TTL other than 255, a
  runt; and every advert once the slot leaves the backup fast path.
- When the master stops, Master_Down fires one Master_Down_Interval after the last advert the kernel absorbed.
- The daemon: a fastvrrp backup behind a fastvrrp (or keepalived) master shows the absorbed adverts on
  /metrics (fastvrrp_rx_kernel_absorbed_total) and takes over when the master is killed; with
  --no-kernel-fast-path, or started without the capabilities to load eBPF (the daemon logs why), the
  counter stays 0.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from dataclasses import replace

import pytest

from fastvrrp import _wire
from fastvrrp._engine import DROP_REASONS, EV_ADVERT, EV_TIMER, Engine
from fastvrrp.io import kfilter
from fastvrrp.io.nsexec import call_in_netns
from fastvrrp.io.sockets import open_rx_tx_in_netns
from fastvrrp.lab.namespaces import wait_for
from fastvrrp.lab.testbed import Lan, many_instances

pytestmark = pytest.mark.netns

VRID = 51
INTERVAL_MS = 20
DOWN_US = 3 * INTERVAL_MS * 1000 + (256 - 100) * INTERVAL_MS * 1000 // 256  # RFC 5798 6.1, priority 100
GROUP = "224.0.0.18"


def now_us() -> int:
    return time.monotonic_ns() // 1000


def _heard_us(table: kfilter.KernelTable, vrid: int) -> int:
    """The time the filter stored for vrid's last absorbed advert (us, CLOCK_MONOTONIC)."""
    (ns,) = struct.unpack_from("=Q", table.mem, vrid * kfilter.ENTRY_SIZE + 8)
    return ns // 1000


def _raw_sender(ttl: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    return s


def test_the_kernel_absorbs_the_followed_master_and_passes_everything_else(lab):
    a, b = lab.ns("a"), lab.ns("b")
    lab.veth(a, "eth0", b, "eth0")
    lab.addr(a, "eth0", "192.0.2.1/24")
    lab.addr(b, "eth0", "192.0.2.2/24")
    src, group, vip = (socket.inet_aton(x) for x in ("192.0.2.1", GROUP, "192.0.2.100"))
    socks_a = open_rx_tx_in_netns(a, "eth0", socket.AF_INET, primary_ip="192.0.2.1")
    socks_b = open_rx_tx_in_netns(b, "eth0", socket.AF_INET, primary_ip="192.0.2.2")
    ifindex_a = call_in_netns(a, socket.if_nametoindex, "eth0")
    senders = [call_in_netns(a, _raw_sender, ttl) for ttl in (255, 254)]
    table = kfilter.KernelTable()
    backup: Engine | None = None
    try:
        table.attach(socks_b.rx)

        def advert(priority: int) -> bytes:
            return _wire.build_advert(
                version=3,
                family=4,
                vrid=VRID,
                priority=priority,
                adver_int_ms=INTERVAL_MS,
                addresses=[vip],
                src=src,
                dst=group,
            )

        master = Engine()
        rx_a = master.add_rx_socket(socks_a.rx.fileno(), 4, own=[src])
        tx_a = master.add_tx_socket(socks_a.tx.fileno(), 4)
        sa = master.add_slot(rx_a, VRID, 3)
        master.set_adverts(sa, tx_a, [(group, ifindex_a, advert(200))])
        master.master(sa, INTERVAL_MS * 1000, now_us())

        backup = Engine()
        rx_b = backup.add_rx_socket(socks_b.rx.fileno(), 4, own=[socket.inet_aton("192.0.2.2")])
        backup.set_kernel_table(rx_b, table.mem)
        sb = backup.add_slot(rx_b, VRID, 3)

        def send() -> None:
            master.run(now_us())
            master.flush()

        def tick() -> list:
            send()
            return backup.receive(rx_b, now_us())

        def read() -> int:
            st = backup.rx_stats(rx_b)
            return st["datagrams"] - st["kernel"]

        # An idle slot has no entry: the filter passes the adverts, Python sees them.
        events = wait_for(tick, timeout=10, interval=0.005, what="the first advert through the socket")
        assert [(k, s) for k, s, _p in events] == [(EV_ADVERT, sb)]
        assert backup.rx_stats(rx_b)["kernel"] == 0

        # Following the master: the fast path absorbs one advert read from the socket, the kernel the rest.
        backup.backup(sb, src, 200, INTERVAL_MS, DOWN_US, now_us() + DOWN_US)

        def kernel_absorbs() -> bool:
            assert tick() == []
            return backup.rx_stats(rx_b)["kernel"] >= 10

        wait_for(kernel_absorbs, timeout=10, interval=0.005, what="adverts absorbed by the kernel")
        read_before, kernel_before = read(), backup.rx_stats(rx_b)["kernel"]
        sent_before = master.slot_stats(sa)["sent"]

        # Nothing reads the socket for ten Master_Down_Intervals: absorbed adverts keep the deadline ahead.
        t_end = time.monotonic() + 10 * DOWN_US / 1e6
        while time.monotonic() < t_end:
            send()
            assert backup.run(now_us(), drain=False) == [], "Master_Down fired while the master advertised"
            time.sleep(0.002)
        # the deadline comes from the kernel's time alone (no advert was read meanwhile)
        assert backup.deadline(sb) == _heard_us(table, VRID) + DOWN_US > now_us()
        wait_for(
            lambda: (
                backup.rx_stats(rx_b)["kernel"] - kernel_before == master.slot_stats(sa)["sent"] - sent_before
            ),
            timeout=5,
            what="every advert the master sent absorbed (the last may be on its way)",
        )
        assert backup.receive(rx_b, now_us()) == []  # nothing was queued on the socket meanwhile
        assert read() == read_before

        # Anything else reaches the socket: another priority (Python judges it), a TTL other than 255 and a
        # runt (dropped by the codec and counted).
        drops0 = dict(zip(DROP_REASONS, backup.drops(rx_b), strict=True))
        senders[0].sendto(advert(201), (GROUP, 0))
        senders[1].sendto(advert(200), (GROUP, 0))
        senders[0].sendto(b"\x31\x33", (GROUP, 0))
        got: list = []

        def passed() -> bool:
            got.extend(tick())
            drops = dict(zip(DROP_REASONS, backup.drops(rx_b), strict=True))
            return (
                bool(got)
                and drops["ttl"] == drops0["ttl"] + 1
                and drops["length"] + drops["ip"] > drops0["length"] + drops0["ip"]
            )

        wait_for(passed, timeout=10, interval=0.005, what="the changed, low-TTL and short datagrams read")
        assert [(k, s, p.priority) for k, s, p in got] == [(EV_ADVERT, sb, 201)]

        # Off the backup fast path (a deadline of Python's): every advert goes to the socket again.
        backup.timer(sb, now_us() + 1_000_000)
        events = wait_for(tick, timeout=10, interval=0.005, what="an advert read once the entry is off")
        assert {(k, s) for k, s, _p in events} == {(EV_ADVERT, sb)}

        # Following again, then the master stops: Master_Down fires one Master_Down_Interval after the last
        # advert the kernel absorbed.
        backup.backup(sb, src, 200, INTERVAL_MS, DOWN_US, now_us() + DOWN_US)
        kernel_before = backup.rx_stats(rx_b)["kernel"]
        wait_for(
            lambda: tick() == [] and backup.rx_stats(rx_b)["kernel"] >= kernel_before + 5,
            timeout=10,
            interval=0.005,
            what="the kernel absorbing again",
        )
        master.timer(sa, -1)  # the master falls silent
        fired: list = []

        def down() -> bool:
            fired.extend(e for e in backup.run(now_us()) if e[0] == EV_TIMER)
            return bool(fired)

        wait_for(down, timeout=5, interval=0.001, what="Master_Down")
        (_kind, slot, deadline) = fired[0]
        assert slot == sb and deadline == _heard_us(table, VRID) + DOWN_US
    finally:
        if backup is not None:
            backup.set_kernel_table(0, None)  # before the table is unmapped
        for s in senders:
            s.close()
        socks_a.close()
        socks_b.close()
        table.close()


SCRAPE = (
    "import sys, urllib.request;"
    "print(urllib.request.urlopen('http://127.0.0.1:9651/metrics', timeout=5).read().decode())"
)


def _absorbed(lab, router) -> float | None:
    """fastvrrp_rx_kernel_absorbed_total of the router's IPv4 socket (None while the endpoint is not up)."""
    text = lab.sh(router.ns, f'{sys.executable} -c "{SCRAPE}"', check=False)
    for line in text.splitlines():
        if line.startswith("fastvrrp_rx_kernel_absorbed_total{") and 'family="4"' in line:
            return float(line.rpartition(" ")[2])
    return None


def _unprivileged_bpf_refused() -> bool:
    with open("/proc/sys/kernel/unprivileged_bpf_disabled") as f:
        return f.read().strip() != "0"


@pytest.mark.parametrize(
    "how",
    [
        "kernel",
        pytest.param("keepalived-master", marks=pytest.mark.interop),
        "no-kernel-fast-path",
        "no-bpf-capability",
        "time-namespace",
    ],
)
def test_a_daemon_backup_absorbs_in_the_kernel_and_still_takes_over(lab, keepalived_bin, how):
    """With the kernel fast path the backup's counter grows; turned off, or where the kernel refuses eBPF
    (the daemon started without CAP_BPF and CAP_SYS_ADMIN, and unprivileged eBPF disabled, as on Debian), it
    stays 0 and the daemon says why. In a time namespace whose CLOCK_MONOTONIC is 1,000 s behind the host's
    (the filter's clock), the backup still takes over at once when its master dies. Behind Debian's
    keepalived as the master, the same: its adverts repeat byte for byte too."""
    lan = Lan(lab, routers=2, client=False)
    specs = many_instances(10, 100, INTERVAL_MS)
    kind1 = "keepalived" if how == "keepalived-master" else "fastvrrp"
    r1 = lan.router(1, kind1, [replace(s, priority=200) for s in specs], keepalived_bin=keepalived_bin)
    r2 = lan.router(2, "fastvrrp", specs)
    r2.extra_args = ["--metrics", "127.0.0.1:9651"]
    if how == "no-kernel-fast-path":
        r2.extra_args.append("--no-kernel-fast-path")
    elif how == "no-bpf-capability":
        # root without the two capabilities bpf() needs (dropped from the bounding set before exec)
        r2.main = ["--bounding-set=-bpf,-sys_admin", "--", r2.python, *r2.main]
        r2.python = "setpriv"
    elif how == "time-namespace":
        # the daemon is unshare's child (killed with it when the lab stops it)
        r2.main = ["--time", "--monotonic=-1000", "--fork", "--kill-child", "--", r2.python, *r2.main]
        r2.python = "unshare"
    refused = how == "no-bpf-capability" and _unprivileged_bpf_refused()
    kernel = how in ("kernel", "keepalived-master", "time-namespace") or (
        how == "no-bpf-capability" and not refused
    )
    r1.start()
    r1.wait_all("MASTER", timeout=30)
    r2.start()
    r2.wait_all("BACKUP", timeout=30)
    wait_for(lambda: _absorbed(lab, r2) is not None, timeout=20, what="the backup's /metrics")
    first = _absorbed(lab, r2) or 0.0
    if kernel:
        # 10 instances x 50 adverts a second: the count grows while the backup stays backup
        wait_for(lambda: (_absorbed(lab, r2) or 0) >= first + 200, timeout=20, what="adverts absorbed")
    else:
        time.sleep(0.5)  # a window in which the kernel would have absorbed ~250 adverts
        assert _absorbed(lab, r2) == 0
    assert set(r2.states().values()) == {"BACKUP"}
    assert ("kernel fast path unavailable" in r2.log()) == refused
    r1.crash()
    r2.wait_all("MASTER", timeout=10)
