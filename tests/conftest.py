"""Session-wide rules: real namespaces or a loud failure under CI, and nothing left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

import pytest

from fastvrrp.lab import namespaces

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SESSION_PREFIX = f"fvt{os.getpid() % 100000}"


def _netns_available() -> str | None:
    """None if we can make namespaces and veth pairs here, else the reason."""
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    name = f"{SESSION_PREFIX}probe"
    p = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if p.returncode != 0:
        return f"cannot create a network namespace: {p.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


@pytest.fixture(scope="session")
def netns_ok() -> None:
    why = _netns_available()
    if why:
        if IN_CI:
            pytest.fail(f"network namespaces are required under CI=true: {why}")
        pytest.skip(why)


@pytest.fixture(scope="session")
def keepalived_bin(netns_ok) -> str:
    path = shutil.which("keepalived")
    if path is None and os.path.exists("/usr/sbin/keepalived"):
        path = "/usr/sbin/keepalived"
    if not path:
        if IN_CI:
            pytest.fail("keepalived (Debian package) is required under CI=true; `make deps` installs it")
        pytest.skip("keepalived is not installed")
    return path


def _debian_tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
    if not path:
        if IN_CI:
            pytest.fail(
                f"{name} (Debian package prometheus) is required under CI=true; `make deps` installs it"
            )
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture(scope="session")
def promtool_bin() -> str:
    return _debian_tool("promtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return _debian_tool("prometheus")


_LABS: list[namespaces.Lab] = []


@pytest.fixture
def lab(netns_ok, request):
    """A fresh Lab whose namespace names carry this session's prefix; closed after the test."""
    test_id = len(_LABS)
    lb = namespaces.Lab(prefix=f"{SESSION_PREFIX}-{test_id}-")
    _LABS.append(lb)
    try:
        yield lb
    finally:
        if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
            for p in lb.procs:
                print(f"--- log of {p.argv[0]} in {p.ns} (pid {p.pid}) ---\n{p.log()[-4000:]}")
        lb.close()


@pytest.fixture
def own_loopback(lab):
    """Run the test's thread inside a namespace of its own (only its loopback, up), so a test that listens on
    and connects to 127.0.0.1 never touches the host's loopback. setns moves the calling thread only; threads
    it starts meanwhile are born in the namespace, and sockets stay in the namespace they were made in. The
    thread goes back to the session's namespace after the test."""
    from fastvrrp.io.nsexec import enter_netns

    ns = lab.ns("lo")
    home = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        enter_netns(ns)
        here = f"/proc/self/task/{threading.get_native_id()}/ns/net"
        assert os.stat(here).st_ino != os.fstat(home).st_ino, "setns left the thread where it was"
        try:
            yield ns
        finally:
            enter_netns(f"/proc/self/fd/{home}")
    finally:
        os.close(home)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if a namespace or a process this session started outlived it."""
    leftovers = [n for n in namespaces.list_netns() if n.startswith(SESSION_PREFIX)]
    alive = [f"{p.argv[0]} pid {p.pid}" for lb in _LABS for p in lb.procs if p.alive()]
    if leftovers or alive:
        for n in leftovers:
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
        for lb in _LABS:
            lb.close()
        msg = f"left behind: namespaces {leftovers} processes {alive}"
        print("\nERROR: " + msg)
        session.exitstatus = 1
