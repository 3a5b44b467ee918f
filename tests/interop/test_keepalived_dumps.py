"""keepalived's dump files with Debian's keepalived as the oracle: keepalived and then fastvrrp run the same
configuration in the same namespace, each gets SIGUSR1 (data), SIGUSR2 (stats) and the JSON signal, and
the files are compared: the JSON's keys recursively, the stats file line for line with the numbers masked,
the data file's `VRRP Instance` sections by their keys. `--signum` is compared with keepalived's for every
name its man page lists.

keepalived writes into /tmp of its mount namespace; `ip netns exec` gives it a new mount namespace whose
/tmp is still the host's, so its files land in the host's /tmp/keepalived.*. The paths are fixed, so the
tests that make keepalived write them hold one lock (flock on the directory /tmp itself, so no lock file is
left behind) while they do, and remove the files afterwards. fastvrrp writes into the lab's directory
(`--dump-dir`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from fastvrrp.daemon.signals import SIGFUNC
from fastvrrp.lab.namespaces import Lab, wait_for
from fastvrrp.lab.testbed import InstanceSpec, Lan, Router

pytestmark = [pytest.mark.interop, pytest.mark.netns]

LOCK = "/tmp"  # flock on the directory keepalived writes into
KA_FILES = {"data": "/tmp/keepalived.data", "stats": "/tmp/keepalived.stats", "json": "/tmp/keepalived.json"}
KA_PARENT_DATA = "/tmp/keepalived_parent.data"  # SIGUSR1 makes keepalived's parent process write this one
SIGNALS = {
    "data": signal.SIGUSR1,
    "stats": signal.SIGUSR2,
    "json": SIGFUNC["JSON"],
    "stats_clear": SIGFUNC["STATS_CLEAR"],
}

SCRIPTS = (
    'vrrp_script chk_ok {\n    script "/bin/true"\n    interval 1\n    weight 3\n}\n'
    'vrrp_script chk_bad {\n    script "/bin/false"\n    interval 1\n}\n'
)
STATIC = "static_ipaddress {\n    203.0.113.40/24 brd + dev eth0\n    2001:db8:2::1/64\n}\n"
SYNC = "vrrp_sync_group G1 {\n    group {\n        VI_52\n    }\n    notify /bin/true\n}\n"


def instances() -> list[InstanceSpec]:
    return [
        # MASTER, with trackers, notify scripts, excluded addresses, routes and a preempt delay
        InstanceSpec(
            vrid=51,
            priority=150,
            advert_int_ms=100,
            vips=("192.0.2.100/24", "192.0.2.101/24"),
            extra=(
                "track_script {\n        chk_ok weight 10\n    }",
                "track_file {\n        tf weight 2\n    }",
                "notify /bin/true",
                "notify_master /bin/true",
                "notify_backup /bin/true",
                "preempt_delay 1",
                "garp_master_refresh 10",
                "virtual_ipaddress_excluded {\n        203.0.113.5/32\n"
                # the options of an address line, as the dump writes them
                "        192.0.2.102/24 brd + dev eth0 label eth0:v noprefixroute\n"
                "        198.51.100.9 peer 198.51.100.10 dev eth0\n"
                "        2001:db8:1::5/128 dev eth0\n"
                "        2001:db8:1::6/64 dev eth0 preferred_lft 30 -nodad home no_track\n    }",
                "virtual_routes {\n        203.0.113.0/24 via 192.0.2.254\n    }",
            ),
        ),
        # BACKUP to a keepalived peer (priority 200) over unicast, in a sync group
        InstanceSpec(
            vrid=52,
            priority=100,
            advert_int_ms=100,
            vips=("198.51.100.1/32",),
            unicast_src="192.0.2.1",
            unicast_peers=("192.0.2.2",),
            nopreempt=True,
        ),
        # VRRPv2 with a password
        InstanceSpec(
            vrid=53,
            priority=100,
            version=2,
            advert_int_ms=1000,
            vips=("198.51.100.2/32",),
            auth_pass="s3cret",
        ),
        # IPv6
        InstanceSpec(
            vrid=54,
            priority=100,
            advert_int_ms=100,
            vips=("2001:db8::100/64",),
            extra=("track_interface {\n        trk0 weight 5\n    }",),
        ),
        # on a VMAC interface
        InstanceSpec(vrid=56, priority=100, advert_int_ms=100, vips=("203.0.113.6/32",), extra=("use_vmac",)),
        # FAULT: a weight-0 script that fails
        InstanceSpec(
            vrid=55,
            priority=100,
            advert_int_ms=100,
            vips=("198.51.100.3/32",),
            extra=("track_script {\n        chk_bad\n    }",),
        ),
    ]


EXPECTED = {
    "VI_51": "MASTER",
    "VI_52": "BACKUP",
    "VI_53": "MASTER",
    "VI_54": "MASTER",
    "VI_56": "MASTER",
    "VI_55": "FAULT",
}


@contextlib.contextmanager
def keepalived_files_lock() -> Iterator[None]:
    """Hold the lock on keepalived's fixed dump paths; leave none of them behind."""
    fd = os.open(LOCK, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed
        for p in (*KA_FILES.values(), KA_PARENT_DATA):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        yield
    finally:
        for p in (*KA_FILES.values(), KA_PARENT_DATA):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        os.close(fd)


def _held_open(path: str, pids: list[int]) -> bool:
    """Does one of `pids` have `path` open (keepalived writes it with a plain open, write, close)?"""
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                    return True
    return False


def dump(router: Router, kind: str, path: str, what: str | None = None) -> str:
    """Send the signal for `what` (default: `kind`) and return the `kind` file once it is complete."""
    what = what or kind
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    router.proc.send_signal(SIGNALS[what])
    pids = router.pids()

    def complete() -> bool:
        if not os.path.exists(path) or _held_open(path, pids):
            return False
        if kind != "data" or router.kind != "keepalived":
            return True
        # written by keepalived's VRRP process (its parent writes keepalived_parent.data): the last section
        with open(path) as f:
            return "------< Interfaces >------" in f.read()

    wait_for(complete, timeout=10, what=f"{router.kind} to write {path}")
    assert router.alive(), f"{router.kind} died on the {kind} signal"
    with open(path) as f:
        return f.read()


def run_and_dump(lab: Lab, lan: Lan, kind: str, keepalived_bin: str) -> dict[str, str]:
    r = lan.router(1, kind, instances(), keepalived_bin=keepalived_bin)
    r.global_lines = ["enable_script_security", "script_user root"]
    track_file = os.path.join(lab.workdir, "tf")
    with open(track_file, "w") as f:
        f.write("0\n")  # a value of 0: no change to the priority
    r.blocks_before = SCRIPTS + f"vrrp_track_file tf {{\n    file {track_file}\n}}\n" + STATIC
    r.blocks = SYNC
    if kind == "fastvrrp":
        out_dir = os.path.join(lab.workdir, "dumps")
        os.makedirs(out_dir, exist_ok=True)
        r.extra_args = ["--dump-dir", out_dir]
        paths = {k: os.path.join(out_dir, os.path.basename(p)) for k, p in KA_FILES.items()}
    else:
        paths = dict(KA_FILES)
    r.start()
    for name, state in EXPECTED.items():
        if state == "FAULT":
            # keepalived logs no state line for an instance that goes from INIT to FAULT: wait for the
            # script's failure (the dumps' state numbers are compared below)
            line = "VRRP_Script(chk_bad) failed" if kind == "keepalived" else f"({name}) entering FAULT"
            wait_for(lambda line=line: line in r.log(), timeout=30, what=f"{r.kind}: {line}")
        else:
            r.wait_state(state, instance=name, timeout=30)
    # chk_ok's first success raises VI_51's effective priority: wait for it so both dumps show it
    ok = "VRRP_Script(chk_ok) succeeded" if kind == "keepalived" else "VRRP_Script chk_ok: succeeded"
    wait_for(lambda: ok in r.log(), timeout=30, what=f"{r.kind}: {ok}")
    files = {k: dump(r, k, paths[k]) for k in ("data", "stats", "json")}
    for k in ("data", "stats", "json"):
        assert os.stat(paths[k]).st_mode & 0o777 == 0o600, (kind, k)
    # STATS_CLEAR writes the stats as they are, then counting starts again
    files["stats_clear"] = dump(r, "stats", paths["stats"], "stats_clear")
    files["stats_after_clear"] = dump(r, "stats", paths["stats"])
    assert r.stop() == 0
    return files


@pytest.fixture
def both_dumps(lab, keepalived_bin) -> dict[str, dict[str, str]]:
    lan = Lan(lab, routers=2, client=False)
    # an interface for track_interface (up: VI_54's priority + 5)
    lab.sh(lan.router_ns[0], "ip link add trk0 type veth peer name trk1")
    lab.sh(lan.router_ns[0], "ip link set trk0 up")
    lab.sh(lan.router_ns[0], "ip link set trk1 up")
    peer = lan.router(
        2,
        "keepalived",
        [InstanceSpec(vrid=52, priority=200, advert_int_ms=100, vips=("198.51.100.1/32",),
                      unicast_src="192.0.2.2", unicast_peers=("192.0.2.1",))],
        keepalived_bin=keepalived_bin,
    )  # fmt: skip
    with keepalived_files_lock():
        peer.start()
        peer.wait_state("MASTER", timeout=20)
        ka = run_and_dump(lab, lan, "keepalived", keepalived_bin)
    fv = run_and_dump(lab, lan, "fastvrrp", keepalived_bin)
    peer.stop()
    return {"keepalived": ka, "fastvrrp": fv}


# --- comparison -----------------------------------------------------------------------------------------
def key_tree(v: object) -> object:
    """The keys of a JSON value, recursively (lists: the union of their items' trees)."""
    if isinstance(v, dict):
        return {k: key_tree(x) for k, x in v.items()}
    if isinstance(v, list):
        items = [key_tree(x) for x in v if isinstance(x, dict | list)]
        return items[0] if items else []
    return None


_NUMBER = re.compile(r"\b\d+(\.\d+)?\b")


def masked(line: str) -> str:
    return _NUMBER.sub("N", line)


_ADDRESS = re.compile(r"[0-9a-f:.]*\d[0-9a-f:.]*(/\d+)?", re.I)


def instance_sections(data: str) -> dict[str, list[str]]:
    """`VRRP Instance = NAME` -> the keys of its lines: for `key = value` / `key : value` / `key:` the key,
    for other lines (values under a list key, `Multicast address ...`) the line with addresses and numbers
    masked, and the Virtual IP count masked."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in data.splitlines():
        m = re.match(r"^ VRRP Instance = (\S+)$", line)
        if m:
            current = out.setdefault(m.group(1), [])
            continue
        if current is None:
            continue
        if not line.startswith("   "):
            current = None
            continue
        text = line.strip()
        if line.startswith("     "):
            current.append("  value")
            continue
        for sep in (" = ", " : ", ":"):
            if sep in text:
                current.append(_NUMBER.sub("N", text.split(sep, 1)[0]))
                break
        else:
            current.append(_ADDRESS.sub("A", text))
    return out


# Values that differ between two runs (times, socket numbers, how many adverts went by) or that fastvrrp
# renders its own way (a virtual route: keepalived shows its parsed form, fastvrrp the configured words).
VOLATILE_JSON = {"last_transition", "vroutes"}
VOLATILE_STATS = {"advert_rcvd", "advert_sent"}
VOLATILE_LINES = ("Last transition = ", "Read timeout = ", "fd_in ")


def test_json_matches_keepalived(both_dumps):
    ka = json.loads(both_dumps["keepalived"]["json"])
    fv = json.loads(both_dumps["fastvrrp"]["json"])
    assert [e["data"]["iname"] for e in fv] == [e["data"]["iname"] for e in ka]
    for k, f in zip(ka, fv, strict=True):
        name = k["data"]["iname"]
        assert key_tree(f) == key_tree(k), name
        assert list(f["data"]) == list(k["data"]), f"{name}: key order"
        assert list(f["stats"]) == list(k["stats"]), f"{name}: stats key order"
        for key, value in k["data"].items():
            if key not in VOLATILE_JSON:
                assert f["data"][key] == value, (name, key)
        for key, value in k["stats"].items():
            if key not in VOLATILE_STATS:
                assert f["stats"][key] == value, (name, key)


def test_stats_lines_match_keepalived(both_dumps):
    for name in ("stats", "stats_clear", "stats_after_clear"):
        ka = both_dumps["keepalived"][name].splitlines()
        fv = both_dumps["fastvrrp"][name].splitlines()
        assert [masked(x) for x in fv] == [masked(x) for x in ka], name
        assert both_dumps["fastvrrp"][name].endswith("\n")
        # every count but the adverts' (they depend on how long each ran) is the same
        steady_ka = [x for x in ka if "Sent:" not in x and "Received:" not in x]
        assert [x for x in fv if "Sent:" not in x and "Received:" not in x] == steady_ka, name
    cleared = both_dumps["fastvrrp"]["stats_after_clear"]
    assert "  Became master: 1\n" in both_dumps["fastvrrp"]["stats_clear"]
    assert "  Became master: 1\n" not in cleared and "  Became master: 0\n" in cleared


def sections(data: str) -> dict[str, list[str]]:
    """`------< NAME >------` -> its lines."""
    out: dict[str, list[str]] = {}
    current: list[str] = []
    for line in data.splitlines():
        m = re.match(r"^------< (.*) >------$", line)
        if m:
            current = out.setdefault(m.group(1), [])
        else:
            current.append(line)
    return out


def steady(lines: list[str]) -> list[str]:
    """The lines with the run-dependent values masked."""
    out = []
    after_routes = False
    for line in lines:
        text = line.strip()
        if text.startswith(VOLATILE_LINES):
            line = masked(line)
        elif after_routes and line.startswith("     "):
            line = "     ROUTE"
        after_routes = text == "Virtual Routes :" or (after_routes and line.startswith("     "))
        out.append(line)
    return out


def test_data_instance_sections_match_keepalived(both_dumps):
    ka_text, fv_text = both_dumps["keepalived"]["data"], both_dumps["fastvrrp"]["data"]
    ka, fv = instance_sections(ka_text), instance_sections(fv_text)
    assert list(fv) == list(ka)
    for name in ka:
        assert fv[name] == ka[name], name
    # Beyond the keys, the values too, but for times, sockets and the route's rendering:
    ka_s, fv_s = sections(ka_text), sections(fv_text)
    assert steady(fv_s["VRRP Topology"]) == steady(ka_s["VRRP Topology"])
    assert fv_s["VRRP Sync groups"] == ka_s["VRRP Sync groups"]
    assert fv_s["VRRP Scripts"] == ka_s["VRRP Scripts"]
    assert fv_s["Static Addresses"] == ka_s["Static Addresses"]
    # The global settings fastvrrp writes are keepalived's lines (it writes fewer of them).
    ka_global = {line for line in ka_s["Global definitions"] if not line.startswith(" Router ID")}
    missing = [x for x in fv_s["Global definitions"] if not x.startswith(" Router ID") and x not in ka_global]
    assert not missing
    # Sections fastvrrp leaves out (its sockets and interfaces are not keepalived's): documented in dumps.py
    assert set(ka_s) - set(fv_s) <= {
        "VRRP Sockpool",
        "Interfaces",
        "VRRP Track processes",
        "VRRP Track files",
    }


def test_signum_matches_keepalived(keepalived_bin):
    names = ["STOP", "RELOAD", "DATA", "STATS", "STATS_CLEAR", "JSON", "TDATA", "stop", "NOSUCH", ""]
    for name in names:
        ka = subprocess.run([keepalived_bin, f"--signum={name}"], capture_output=True, text=True, timeout=10)
        fv = subprocess.run(
            [sys.executable, "-m", "fastvrrp", f"--signum={name}"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.dirname(__file__)))},
        )
        assert (fv.returncode, fv.stdout, fv.stderr) == (ka.returncode, ka.stdout, ka.stderr), name
