"""Throwaway network labs in namespaces: used by the demo and by the netns/interop tests.

Everything a Lab makes carries its prefix, so it can be found and removed, and every process it starts is
remembered by PID and stopped by PID. Only documentation addresses belong in a lab (192.0.2.0/24,
198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


class LabError(RuntimeError):
    pass


def run(cmd: Sequence[str] | str, check: bool = True, capture: bool = True, timeout: float = 30) -> str:
    args = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    p = subprocess.run(args, capture_output=capture, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise LabError(f"{' '.join(args)} failed ({p.returncode}): {(p.stderr or '').strip()}")
    return p.stdout if capture else ""


def list_netns() -> list[str]:
    out = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


class _Deadline:
    """The one timeout rule of the two polling helpers below."""

    def __init__(self, timeout: float, what: str, raise_on_timeout: bool) -> None:
        self.end = time.monotonic() + timeout
        self.timeout, self.what, self.raise_on_timeout = timeout, what, raise_on_timeout

    def passed(self) -> bool:
        if time.monotonic() < self.end:
            return False
        if self.raise_on_timeout:
            raise TimeoutError(f"timed out after {self.timeout:.1f}s waiting for {self.what}")
        return True


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
    *,
    raise_on_timeout: bool = True,
) -> Any:
    """Poll `predicate` until it returns a truthy value, and return that value. When the deadline passes:
    raise TimeoutError, or with raise_on_timeout=False return the last (falsy) value so the caller's own
    assertion says what went wrong. Every poll loop of the tests and benchmarks uses this (or wait_for_async
    on an event loop)."""
    deadline = _Deadline(timeout, what, raise_on_timeout)
    while True:
        value = predicate()
        if value or deadline.passed():
            return value
        time.sleep(interval)


async def wait_for_async(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
    *,
    raise_on_timeout: bool = True,
) -> Any:
    """wait_for for a coroutine: sleeps with asyncio.sleep, so the loop it runs on keeps running."""
    deadline = _Deadline(timeout, what, raise_on_timeout)
    while True:
        value = predicate()
        if value or deadline.passed():
            return value
        await asyncio.sleep(interval)


@dataclass
class Proc:
    ns: str
    argv: list[str]
    popen: subprocess.Popen
    log_path: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def send_signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.alive():
            os.kill(self.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        return self.popen.returncode


@dataclass
class Lab:
    """A set of namespaces and the processes started in them; `close()` removes everything."""

    prefix: str = field(default_factory=lambda: "fv" + uuid.uuid4().hex[:6] + "-")
    workdir: str = ""
    namespaces: list[str] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.workdir:
            self.workdir = f"/tmp/{self.prefix.rstrip('-')}"
        os.makedirs(self.workdir, exist_ok=True)

    # --- topology ---------------------------------------------------------------------------------------
    def ns(self, short: str) -> str:
        """Create namespace <prefix><short> with loopback up; return its full name."""
        name = self.prefix + short
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        self.sh(name, "ip link set lo up")
        for knob in ("net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"):
            self.sh(name, f"sysctl -qw {knob}", check=False)
        return name

    def sh(self, ns: str, cmd: str, check: bool = True, timeout: float = 30) -> str:
        return run(["ip", "netns", "exec", ns, *shlex.split(cmd)], check=check, timeout=timeout)

    def bridge(self, ns: str, name: str = "br0") -> str:
        self.sh(ns, f"ip link add name {name} type bridge")
        # Multicast snooping would drop VRRP (docs/kernel-notes.md#bridge-multicast-snooping); STP would delay
        # forwarding.
        self.sh(ns, f"ip link set {name} type bridge mcast_snooping 0 stp_state 0 forward_delay 0")
        self.sh(ns, f"ip link set {name} up")
        return name

    def veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str, bridge: str | None = None) -> None:
        """A veth pair from ns_a/if_a to ns_b/if_b, both up; if_b enslaved to `bridge` in ns_b if given."""
        tmp_a, tmp_b = "t" + uuid.uuid4().hex[:10], "t" + uuid.uuid4().hex[:10]
        run(["ip", "link", "add", "name", tmp_a, "type", "veth", "peer", "name", tmp_b])
        run(["ip", "link", "set", tmp_a, "netns", ns_a, "name", if_a])
        run(["ip", "link", "set", tmp_b, "netns", ns_b, "name", if_b])
        self.sh(ns_a, f"ip link set {if_a} up")
        if bridge:
            self.sh(ns_b, f"ip link set {if_b} master {bridge}")
        self.sh(ns_b, f"ip link set {if_b} up")

    def addr(self, ns: str, ifname: str, cidr: str) -> None:
        extra = " nodad" if ":" in cidr else ""
        self.sh(ns, f"ip addr add {cidr} dev {ifname}{extra}")

    def script(self, name: str, body: str) -> str:
        """An executable /bin/sh script `name` in the lab's work directory running `body`; its path."""
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body + "\n")
        os.chmod(path, 0o755)
        return path

    # --- processes ----------------------------------------------------------------------------------------
    def spawn(self, ns: str, argv: Sequence[str], name: str, env: dict[str, str] | None = None) -> Proc:
        log_path = os.path.join(self.workdir, f"{name}.log")
        logf = open(log_path, "ab")  # noqa: SIM115 - the child owns it
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        popen = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            start_new_session=True,
        )
        logf.close()
        proc = Proc(ns, list(argv), popen, log_path)
        self.procs.append(proc)
        return proc

    def close(self) -> list[str]:
        """Stop every process (by PID) and delete every namespace; return what needed force."""
        problems: list[str] = []
        for p in reversed(self.procs):
            if p.alive():
                rc = p.stop(signal.SIGTERM, timeout=5)
                if rc is None:
                    problems.append(f"pid {p.pid} did not stop")
        for name in reversed(self.namespaces):
            # Delete the namespace even if something still holds it; count what was left.
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.namespaces.clear()
        self.procs.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)
        return problems

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ip_json(lab: Lab, ns: str, cmd: str) -> list:
    """`ip -j CMD` in namespace `ns`, parsed; [] when it prints nothing or no JSON."""
    try:
        return json.loads(lab.sh(ns, f"ip -j {cmd}", check=False) or "[]")  # type: ignore[no-any-return]
    except json.JSONDecodeError:
        return []  # `ip -j route show table N` of an absent table prints "[" and an error
