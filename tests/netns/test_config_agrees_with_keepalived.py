"""The sample corpus (tests/configs) and keepalived's own samples: fastvrrp and Debian's keepalived 2.2.7
agree on whether a file starts and on the exit code of `-t`, except where docs/keepalived-config.md says they
differ and why. keepalived checks that interfaces exist, so both run in a namespace holding eth0 and eth1.

The oracle is keepalived itself, run twice on each file: `keepalived -t` for its verdict, and its daemon for
whether it starts the file (its VRRP process reports "Startup complete") or refuses it (the process exits
with "permanent error CONFIG"). keepalived 2.2.7 -t exits 0 clean, 5 when it reported a problem and 6 for
script security; it says 5 also for problems its daemon then refuses the file for (a missing VRID or
interface, a VRID used twice). fastvrrp -t exits 4 for every file its daemon refuses, 5 for one it starts
working around a problem, so 4 against keepalived's 5 is expected exactly where keepalived's daemon refuses.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

from fastvrrp.config import check
from fastvrrp.lab.namespaces import wait_for

pytestmark = pytest.mark.netns

HERE = pathlib.Path(__file__).resolve().parent.parent / "configs"
ROOT = HERE.parent.parent
VALID = sorted((HERE / "valid").glob("*.conf"))
INVALID = sorted((HERE / "invalid").glob("*.conf"))
WORKED_AROUND = sorted((HERE / "worked_around").glob("*.conf"))
SCRIPT_SECURITY = sorted((HERE / "script_security").glob("*.conf"))
CORPUS = VALID + INVALID + WORKED_AROUND + SCRIPT_SECURITY
# keepalived's own sample configurations, as Debian installs them
SAMPLES_DIR = pathlib.Path("/usr/share/doc/keepalived/samples")
SAMPLES = sorted(SAMPLES_DIR.glob("keepalived.conf.*"))

# Where fastvrrp refuses a file keepalived 2.2.7 starts (docs/keepalived-config.md, "Deviations").
REFUSED_BUT_KEEPALIVED_STARTS = {
    "missing_include.conf": "keepalived logs 'Config files missing' and has nothing to run; fastvrrp refuses",
    "auth_ah.conf": "fastvrrp has no IPsec-AH: advertising without it would make both routers master",
}

# Where fastvrrp -t's exit code differs from keepalived 2.2.7's for a reason other than keepalived -t saying
# 5 for a file its own daemon refuses (docs/keepalived-config.md): (keepalived -t, fastvrrp -t, why).
EXIT_DIFFERS = {
    "missing_include.conf": (0, 4, REFUSED_BUT_KEEPALIVED_STARTS["missing_include.conf"]),
    "auth_ah.conf": (0, 4, REFUSED_BUT_KEEPALIVED_STARTS["auth_ah.conf"]),
    "keepalived.conf.SSL_GET": (5, 4, "auth_type AH, as auth_ah.conf"),
    "keepalived.conf.track_interface": (5, 4, "interface eth0.1 is missing: both daemons refuse the file"),
    "keepalived.conf.fwmark": (
        5,
        0,
        "only LVS (virtual_server), which fastvrrp does not implement nor judge",
    ),
}


@pytest.fixture(scope="module")
def keepalived_ns(keepalived_bin):
    """A namespace holding eth0 and eth1 (keepalived -t checks that interfaces exist)."""
    from fastvrrp.lab.namespaces import Lab

    lab = Lab(prefix=f"fvcfg{os.getpid() % 100000}-")
    try:
        ns = lab.ns("k")
        lab.veth(ns, "eth0", ns, "eth1")
        yield keepalived_bin, ns, lab.workdir
    finally:
        lab.close()


def _keepalived_t(exe: str, ns: str, path: pathlib.Path) -> tuple[int, str]:
    # keepalived 2.2.7 -t: exit 0 if clean, 5 a reported problem, 6 script security.
    p = subprocess.run(
        ["ip", "netns", "exec", ns, exe, "-t", "-f", str(path), "-i", "main", "-l", "-D"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        timeout=30,
    )
    return p.returncode, p.stdout + p.stderr


_STARTS: dict[str, tuple[bool | None, str]] = {}


def _keepalived_starts(exe: str, ns: str, workdir: str, path: pathlib.Path) -> tuple[bool | None, str]:
    """Run keepalived's daemon on `path` (VRRP only, no respawn, its own pid files): True once its VRRP
    process logs "Startup complete" (or the file defines nothing to run: keepalived then stops, fastvrrp
    idles until a reload gives it instances), False when it gives up on the file ("exited with permanent
    error CONFIG"), None when it stopped for a reason that is no verdict on the file ("permanent error
    FATAL": here, no ip_vs module for an LVS keyword); its log each time. Stopped by PID at once."""
    if str(path) in _STARTS:
        return _STARTS[str(path)]
    base = os.path.join(workdir, f"ka-{path.parent.name}-{path.name}")
    pids = [f"{base}.{x}.pid" for x in ("main", "vrrp", "checker")]
    for p in pids:
        if os.path.exists(p):
            os.unlink(p)
    log_path = base + ".log"
    argv = [exe, "-n", "-l", "-D", "-G", "-R", "-f", str(path), "-i", "main"]
    argv += ["-p", pids[0], "-r", pids[1], "-c", pids[2], "--vrrp"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            start_new_session=True,
        )

    def outcome() -> str | None:
        text = pathlib.Path(log_path).read_text(errors="replace")
        if "Startup complete" in text or "no configuration to run" in text:
            return "started"
        if "permanent error FATAL" in text:
            return "environment"
        if "permanent error CONFIG" in text or proc.poll() is not None:
            return "refused"
        return None

    try:
        verdict = wait_for(outcome, timeout=60, what=f"keepalived to start or refuse {path.name}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    starts = None if verdict == "environment" else verdict == "started"
    result = (starts, pathlib.Path(log_path).read_text(errors="replace"))
    _STARTS[str(path)] = result
    return result


def _fastvrrp_t(ns: str, path: pathlib.Path) -> tuple[int, str]:
    p = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "fastvrrp", "-t", "-f", str(path), "-i", "main"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    return p.returncode, p.stderr


def _ids(p: pathlib.Path) -> str:
    return f"{p.parent.name}/{p.name}"


@pytest.mark.parametrize("path", CORPUS, ids=_ids)
def test_starts_where_keepalived_starts(keepalived_ns, path):
    """fastvrrp's reader accepts a file where keepalived's daemon starts it, and refuses it where keepalived
    refuses it; the corpus directory says which (invalid/: refused)."""
    exe, ns, workdir = keepalived_ns
    ka_starts, log = _keepalived_starts(exe, ns, workdir, path)
    ours, problems, _ = check(str(path), instance_id="main")
    if ka_starts is None:
        # keepalived's daemon could not run here (an LVS keyword wants the ip_vs module): its -t is the
        # verdict on the file then, and it reported no problem that makes the daemon refuse a file.
        ka, log = _keepalived_t(exe, ns, path)
        assert ka in (0, 5, 6) and "Unknown interface" not in log and "must be set" not in log, log
        ka_starts = True
    assert ka_starts == (path.parent.name != "invalid" or path.name in REFUSED_BUT_KEEPALIVED_STARTS), log
    if path.name in REFUSED_BUT_KEEPALIVED_STARTS:
        assert ours is None, REFUSED_BUT_KEEPALIVED_STARTS[path.name]
        return
    assert ka_starts == (ours is not None), f"keepalived started={ka_starts}: {log}\nfastvrrp: {problems}"


@pytest.mark.parametrize("path", CORPUS, ids=_ids)
def test_exit_code_of_t_agrees_with_keepalived(keepalived_ns, path):
    exe, ns, workdir = keepalived_ns
    ka, log = _keepalived_t(exe, ns, path)
    fv, err = _fastvrrp_t(ns, path)
    if path.name in EXIT_DIFFERS:
        assert (ka, fv) == EXIT_DIFFERS[path.name][:2], f"keepalived: {log}\nfastvrrp: {err}"
    elif _keepalived_starts(exe, ns, workdir, path)[0] is False:
        # keepalived -t reports the problem with 5 (or 4), then its daemon refuses the file; fastvrrp: 4
        assert ka in (4, 5) and fv == 4, f"keepalived: {log}\nfastvrrp: {err}"
    else:
        assert fv == ka, f"keepalived -t exited {ka}: {log}\nfastvrrp -t exited {fv}: {err}"
    expected = {"valid": 0, "invalid": 4, "worked_around": 5, "script_security": 6}[path.parent.name]
    assert fv == expected
    _names_file_and_line(err, path)


def _names_file_and_line(err: str, path: pathlib.Path) -> None:
    """Every finding names FILE:LINE (the last line is the verdict)."""
    for line in err.splitlines()[:-1]:
        assert line.startswith(f"{path}:") and line.split(":")[1].isdigit(), line


@pytest.mark.parametrize("path", SAMPLES or [None], ids=lambda p: p.name if p else "none")
def test_keepalived_samples_get_keepalived_exit_code(keepalived_ns, path):
    """keepalived's own samples (nobody here wrote them) through both -t, in a namespace with eth0 and eth1
    only: the same exit code except where EXIT_DIFFERS says why. They use addresses outside the
    documentation ranges, so only -t reads them: neither daemon runs them."""
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"keepalived's samples are not in {SAMPLES_DIR} (Debian's keepalived package)")
        pytest.skip(f"keepalived's samples are not in {SAMPLES_DIR}")
    exe, ns, _workdir = keepalived_ns
    ka, log = _keepalived_t(exe, ns, path)
    fv, err = _fastvrrp_t(ns, path)
    want = EXIT_DIFFERS.get(path.name, (ka, ka))[:2]
    assert (ka, fv) == want, f"{path.name}: keepalived -t exited {ka}: {log}\nfastvrrp -t exited {fv}: {err}"
    _names_file_and_line(err, path)


def test_missing_file_and_missing_interface_exit_4(keepalived_ns, tmp_path):
    """keepalived 2.2.7 -t exits 0 for a missing file ("Config files missing") and 5 for an instance on a
    missing interface ("(VI_1) Unknown interface!"), whose daemon then refuses; fastvrrp cannot use either
    file: 4."""
    exe, ns, workdir = keepalived_ns
    absent = tmp_path / "absent.conf"
    assert _keepalived_t(exe, ns, absent)[0] == 0
    assert _fastvrrp_t(ns, absent)[0] == 4
    conf = tmp_path / "k.conf"
    conf.write_text((HERE / "valid" / "basic_v2.conf").read_text().replace("eth0", "nosuch0"))
    assert _keepalived_t(exe, ns, conf)[0] == 5
    assert not _keepalived_starts(exe, ns, workdir, conf)[0]
    rc, err = _fastvrrp_t(ns, conf)
    assert rc == 4 and "interface nosuch0 does not exist here" in err, err


def test_missing_tracked_interface_comes_before_script_security(keepalived_ns, tmp_path):
    """keepalived 2.2.7 -t stops at "Non-existent interface specified in configuration" (exit 5) before its
    script security check (exit 6 once the interface is there); fastvrrp -t exits the same."""
    exe, ns, _workdir = keepalived_ns
    text = (HERE / "script_security" / "root_script.conf").read_text()
    conf = tmp_path / "k.conf"
    conf.write_text(
        text.replace(
            "    track_script {", "    track_interface {\n        nosuch0\n    }\n    track_script {"
        )
    )
    assert _keepalived_t(exe, ns, conf)[0] == 5
    rc, err = _fastvrrp_t(ns, conf)
    assert rc == 5 and "tracked interface nosuch0 does not exist here" in err, err


LINES_ON_MISSING_INTERFACES = """static_ipaddress {
    192.0.2.16/24 dev eth0
    192.0.2.18/24 dev nosuch1
}
static_routes {
    198.51.100.0/24 dev nosuch2
}
static_rules {
    from 198.51.100.0/24 table 100 iif nosuch3
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 5
    virtual_ipaddress {
        192.0.2.5/24
        192.0.2.6/24 dev nosuch4
    }
    virtual_routes {
        203.0.113.0/24 via 192.0.2.254 dev eth0
        203.0.113.128/25 dev nosuch5
        203.0.113.64/26 nexthop via 192.0.2.254 dev eth0 nexthop via 192.0.2.253 dev nosuch6
    }
    virtual_rules {
        to 203.0.113.0/24 table 100 oif nosuch7
    }
}
"""


def test_missing_interface_of_an_address_route_or_rule_line(keepalived_ns, tmp_path):
    """keepalived 2.2.7 -t: "WARNING - interface nosuch2 for VROUTE nexthop doesn't exist" (and for ip
    address, for rule), exit 5. fastvrrp -t names each line at its FILE:LINE and exits 5: it starts the file
    and leaves those lines out, where keepalived's daemon refuses the whole file ("Non-existent interface
    specified in configuration"; docs/keepalived-config.md)."""
    exe, ns, workdir = keepalived_ns
    conf = tmp_path / "k.conf"
    conf.write_text(LINES_ON_MISSING_INTERFACES)
    ka, log = _keepalived_t(exe, ns, conf)
    assert ka == 5, log
    for n in (1, 2, 3, 4, 5, 6, 7):
        assert f"nosuch{n}" in log, log  # keepalived names each one too
    assert not _keepalived_starts(exe, ns, workdir, conf)[0]
    rc, err = _fastvrrp_t(ns, conf)
    assert rc == 5, err
    lines = LINES_ON_MISSING_INTERFACES.splitlines()
    for n in (1, 2, 3, 4, 5, 6, 7):
        at = next(i for i, line in enumerate(lines, 1) if f"nosuch{n}" in line)
        said = [x for x in err.splitlines() if x.startswith(f"{conf}:{at}: warning: ")]
        assert any(f"interface nosuch{n} of " in x for x in said), err
    _names_file_and_line(err, conf)


def test_dynamic_interfaces(keepalived_ns, tmp_path):
    """With dynamic_interfaces keepalived 2.2.7 waits for missing interfaces: -t exits 0, its daemon starts
    (the instance in FAULT). fastvrrp agrees for tracked interfaces and route lines, and refuses an instance
    whose own interface is missing (docs/keepalived-config.md, "Deviations")."""
    exe, ns, workdir = keepalived_ns
    head = "global_defs {\n    dynamic_interfaces\n}\n"
    conf = tmp_path / "k.conf"
    conf.write_text(head + LINES_ON_MISSING_INTERFACES)
    # 5 from both, for the rules without priority and the route without dev, not for the interfaces
    ka, log = _keepalived_t(exe, ns, conf)
    assert ka == 5 and "exist" not in log, log
    rc, err = _fastvrrp_t(ns, conf)
    assert rc == 5 and "does not exist" not in err, err
    conf.write_text(head + (HERE / "valid" / "basic_v2.conf").read_text().replace("eth0", "nosuch0"))
    assert _keepalived_t(exe, ns, conf)[0] == 0
    assert _keepalived_starts(exe, ns, workdir, conf)[0]
    rc, err = _fastvrrp_t(ns, conf)
    assert rc == 4 and "interface nosuch0 does not exist here" in err, err


ADDRESS_LENIENCIES = """vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 5
    virtual_ipaddress {
        192.0.2.5/24
    }
    virtual_ipaddress_excluded {
        198.51.100.11/32 peer 198.51.100.200/30 brd + dev eth0
        2001:db8:d::11 peer 2001:db8:d::99/128 dev eth0
        198.51.100.13/24 peer 198.51.100.202 dev eth0
        198.51.100.14 peer 2001:db8::9 dev eth0
        198.51.100.15 peer 198.51.100.203 brd 198.51.100.255 dev eth0
        203.0.113.1/31 brd - dev eth0
        198.51.100.16 peer 198.51.100.204 noprefixroute dev eth0
        192.0.2.7/24 dev eth0 label eth0:abcdefghijklmn
        192.0.2.8/24 dev eth0 scope 300
        192.0.2.9/24 dev eth0 scope bogus
        2001:db8::7/64 dev eth0 scope link
        2001:db8::8/64 dev eth0 label eth0:x
        2001:db8::9/64 dev eth0 preferred_lft abc
        2001:db8::10/64 dev eth0 preferred_lft 4294967296
        192.0.2.10/24 dev eth0 scope 200
    }
}
"""


def test_address_lines_keepalived_works_around(keepalived_ns, tmp_path):
    """keepalived 2.2.7 -t on peers with a prefix or of the other family, a prefix or a broadcast address
    with a peer, `brd -` on a /31, a label over 15 characters, a scope it does not know, a scope or label
    on IPv6, a preferred_lft that is no 32-bit number: a finding at each of those lines and exit 5, the
    others clean; fastvrrp -t names the same lines and exits 5 (docs/keepalived-config.md#address-options)."""
    exe, ns, _workdir = keepalived_ns
    conf = tmp_path / "k.conf"
    conf.write_text(ADDRESS_LENIENCIES)
    ka, log = _keepalived_t(exe, ns, conf)
    assert ka == 5, log
    rc, err = _fastvrrp_t(ns, conf)
    assert rc == 5, err
    _names_file_and_line(err, conf)
    ka_lines = {int(m) for m in re.findall(rf"\({re.escape(str(conf))}: Line (\d+)\)", log)}
    fv_lines = {int(x.split(":")[1]) for x in err.splitlines()[:-1]}
    assert ka_lines == fv_lines == {8, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20, 21}, (log, err)


PROCESS_SETTINGS = [
    "vrrp_rt_priority 120",
    "vrrp_rt_priority 0",
    "vrrp_rt_priority 5",
    "max_auto_priority 200",
    "max_auto_priority x",
    "max_auto_priority -1",
    "max_auto_priority",
    f"vrrp_cpu_affinity {os.sysconf('SC_NPROCESSORS_ONLN')}",
    "vrrp_cpu_affinity 0",
    "vrrp_priority 30",
    "vrrp_priority -5",
    "vrrp_rlimit_rttime 0",
    "vrrp_rlimit_rttime 1",
    "min_auto_priority_delay 0",
    "min_auto_priority_delay 5000",
]


PROCESS_SETTINGS += ["net_namespace blue", "use_pid_dir", "child_wait_time 5"]  # top level only: unknown here
# start and stop scripts: 6 for one that would run as root without enable_script_security (one whose
# program is missing does not count), 5 for a timeout out of range
SCRIPTS = [
    "startup_script /bin/true",
    "shutdown_script /bin/true",
    "startup_script /nonexistent/x",
    "startup_script_timeout 0",
    "shutdown_script_timeout 20",
]


@pytest.mark.parametrize("line", PROCESS_SETTINGS + SCRIPTS)
def test_global_settings_judged_as_keepalived(keepalived_ns, tmp_path, line):
    """The process settings and start / stop scripts of global_defs (docs/keepalived-config.md): keepalived
    -t's exit code, and a finding at the line where it has one."""
    exe, ns, _workdir = keepalived_ns
    conf = tmp_path / "k.conf"
    conf.write_text(
        f"global_defs {{\n    {line}\n}}\n"
        "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 5\n"
        "    virtual_ipaddress {\n        192.0.2.5/24\n    }\n}\n"
    )
    ka, log = _keepalived_t(exe, ns, conf)
    rc, err = _fastvrrp_t(ns, conf)
    assert rc == ka, (log, err)
    if rc == 5:
        assert err.startswith(f"{conf}:2: warning: "), err


def test_static_address_without_interface_refuses_the_file(keepalived_ns, tmp_path):
    """A static address without `dev` when the default interface is missing: keepalived 2.2.7's fatal
    "Static address ... requires either an interface or default interface must exist", -t exits 4."""
    exe, ns, _workdir = keepalived_ns
    conf = tmp_path / "k.conf"
    conf.write_text(
        "global_defs {\n    default_interface nosuch9\n}\nstatic_ipaddress {\n    192.0.2.44/24\n}\n"
        "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 5\n"
        "    virtual_ipaddress {\n        192.0.2.5/24\n    }\n}\n"
    )
    ka, log = _keepalived_t(exe, ns, conf)
    rc, err = _fastvrrp_t(ns, conf)
    assert ka == rc == 4, (log, err)
    assert err.startswith(f"{conf}:5: "), err
