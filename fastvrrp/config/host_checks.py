"""What `fastvrrp -t` checks beyond the file itself, as keepalived 2.2.7's `-t` does: the interfaces the
configuration names exist in the network namespace the check runs in, and scripts do not run as root unless
`enable_script_security` says so.

Each finding is a Problem(file, line, message) of one of three kinds (HostFindings): `unusable` (the daemon
would refuse the file: an instance's interface is missing), `worked_around` (the daemon starts without it,
as keepalived does: a tracked interface or an address's `dev` is missing) and `script_security`.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass, field

from .model import Config, InstanceConfig, Problem, Route, Rule, Script, VirtualAddress


@dataclass(slots=True)
class HostFindings:
    unusable: list[Problem] = field(default_factory=list)
    worked_around: list[Problem] = field(default_factory=list)
    script_security: list[Problem] = field(default_factory=list)


def _interfaces() -> set[str]:
    """The interface names of this network namespace."""
    try:
        return set(os.listdir("/sys/class/net"))
    except OSError:
        return {name for _i, name in _if_nameindex()}


def _if_nameindex() -> list[tuple[int, str]]:
    import socket

    return socket.if_nameindex()


def host_findings(cfg: Config, interfaces: set[str] | None = None) -> HostFindings:
    """The findings for `cfg` on this host (`interfaces`: the names to check against, default this
    namespace's)."""
    names = _interfaces() if interfaces is None else interfaces
    out = HostFindings()
    for inst in cfg.instances:
        _instance_interfaces(inst, names, out)
    _static_interfaces(cfg, names, out)
    vrfs = _missing_vrfs(cfg, names)
    if cfg.global_defs.dynamic_interfaces:
        # keepalived 2.2.7 waits for interfaces named elsewhere than an instance's `interface` to appear
        # (its -t exits 0 for them), and so does fastvrrp; a route's VRF it looks up all the same.
        out.worked_around.clear()
    out.worked_around += vrfs
    _scripts(cfg, out)
    return out


def _missing_vrfs(cfg: Config, names: set[str]) -> list[Problem]:
    """keepalived 2.2.7 looks a route's `vrf` up when it reads the line and skips the route without it
    ("VRF blue not found for route"), dynamic_interfaces or not; fastvrrp leaves it out when installing."""
    out = []
    for where, routes in (
        *((f"vrrp_instance {i.name}: ", i.virtual_routes) for i in cfg.instances if i.virtual_routes),
        ("static_routes: ", cfg.static_routes),
    ):
        for x in routes:
            if x.vrf is not None and x.vrf not in names:
                msg = (
                    f"{where}VRF {x.vrf} of route '{x.text}' does not exist here: "
                    "left out, as keepalived does"
                )
                out.append(Problem(x.file, x.line, msg))
    return out


def _line_interfaces(x: VirtualAddress | Route | Rule) -> list[str]:
    """The interfaces a route, rule or address line names (dev, a nexthop's dev, iif / oif)."""
    if isinstance(x, Route):
        return [d for d in (x.dev, *(h.dev for h in x.nexthops)) if d is not None]
    if isinstance(x, Rule):
        return [d for d in (x.iif, x.oif) if d is not None]
    return [x.dev] if x.dev is not None else []


def _missing_on_lines(
    where: str,
    what: str,
    lines: tuple[VirtualAddress | Route | Rule, ...],
    names: set[str],
    out: HostFindings,
) -> None:
    """keepalived 2.2.7 skips such a line ("WARNING - interface eth2 for VROUTE nexthop doesn't exist",
    "... for rule doesn't exist", "... for ip address 192.0.2.18 doesn't exist"); fastvrrp logs it and
    leaves it out when it would install it (daemon.instances, io.routes), so the file starts."""
    for x in lines:
        for dev in _line_interfaces(x):
            if dev not in names:
                text = str(x.address) if isinstance(x, VirtualAddress) else f"'{x.text}'"
                msg = (
                    f"{where}interface {dev} of {what} {text} does not exist here: "
                    "left out, as keepalived does"
                )
                out.worked_around.append(Problem(x.file, x.line, msg))


def _static_interfaces(cfg: Config, names: set[str], out: HostFindings) -> None:
    _missing_on_lines("static_ipaddress: ", "address", cfg.static_ipaddress, names, out)
    dflt = cfg.global_defs.default_interface
    for a in cfg.static_ipaddress:
        if a.dev is None and dflt not in names:
            # keepalived 2.2.7: "Static address 192.0.2.21/24 requires either an interface or default
            # interface must exist" (a fatal error: -t exits 4, the daemon refuses the file)
            msg = f"static_ipaddress: address {a.address} names no interface and {dflt} is not here"
            out.unusable.append(Problem(a.file, a.line, msg))
    _missing_on_lines("static_routes: ", "route", cfg.static_routes, names, out)
    _missing_on_lines("static_rules: ", "rule", cfg.static_rules, names, out)


def _instance_interfaces(inst: InstanceConfig, names: set[str], out: HostFindings) -> None:
    where = f"vrrp_instance {inst.name}"
    # use_vmac makes its own interface; the one it sits on must exist.
    if inst.interface is not None and inst.interface not in names:
        # keepalived 2.2.7: "(VI_1) Unknown interface!"
        out.unusable.append(
            Problem(inst.file, inst.line, f"{where}: interface {inst.interface} does not exist here")
        )
    for ref in inst.track_interface:
        if ref.name not in names:
            # keepalived 2.2.7: "(VI_1) tracked interface eth2 doesn't exist"
            # fastvrrp's daemon holds the instance back until the interface appears (no adverts, as in
            # FAULT); keepalived refuses the file unless dynamic_interfaces (then FAULT until it appears)
            msg = (
                f"{where}: tracked interface {ref.name} does not exist here: the instance waits for it "
                "before starting"
            )
            out.worked_around.append(Problem(inst.file, inst.line, msg))
    _missing_on_lines(f"{where}: ", "address", (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded),
                      names, out)  # fmt: skip
    if inst.virtual_routes:
        _missing_on_lines(f"{where}: ", "virtual route", inst.virtual_routes, names, out)
    if inst.virtual_rules:
        _missing_on_lines(f"{where}: ", "virtual rule", inst.virtual_rules, names, out)


def _runs_as_root(script: Script | None, default_user: str | None) -> bool:
    """The script would run, as root. keepalived 2.2.7 does not count a script whose program is not there
    (its -t exits 0 for a notify_master naming a missing file)."""
    if script is None or not script.command:
        return False
    user = script.user or default_user
    return user in (None, "root", "0") and _program_exists(script.command)


def _program_exists(command: str) -> bool:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if not words:
        return False
    prog = words[0]
    if "/" in prog:
        return os.path.isfile(prog) and os.access(prog, os.X_OK)
    return shutil.which(prog) is not None


def _scripts(cfg: Config, out: HostFindings) -> None:
    """keepalived 2.2.7 -t exits 6 ("SECURITY VIOLATION - scripts are being executed but script_security
    not enabled") when a script would run as root without enable_script_security."""
    gd = cfg.global_defs
    if gd.enable_script_security:
        return
    user = gd.script_user
    first: tuple[str, int, str] | None = None
    for inst in cfg.instances:
        for ref in inst.track_script:
            vs = cfg.vrrp_scripts.get(ref.name)
            if vs is not None and _runs_as_root(Script(vs.script, vs.user), user):
                first = first or (inst.file, inst.line, f"vrrp_instance {inst.name} track_script {ref.name}")
        for kw in (
            "notify_master",
            "notify_backup",
            "notify_fault",
            "notify_stop",
            "notify",
            "notify_deleted",
        ):
            if _runs_as_root(getattr(inst, kw, None), user):
                first = first or (inst.file, inst.line, f"vrrp_instance {inst.name} {kw}")
    for g in cfg.sync_groups.values():
        for kw in ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify"):
            if _runs_as_root(getattr(g, kw, None), user):
                first = first or (getattr(g, "file", ""), getattr(g, "line", 0), f"vrrp_sync_group {kw}")
    for kw in ("vrrp_notify_fifo_script", "notify_fifo_script"):
        if _runs_as_root(getattr(gd, kw), user):
            first = first or ("", 0, f"global_defs {kw}")
    for kw in ("startup_script", "shutdown_script"):
        if _runs_as_root(gd.other.get(kw), user):
            first = first or ("", 0, f"global_defs {kw}")
    if first is not None:
        file, line, what = first
        out.script_security.append(
            Problem(
                file or (cfg.files[0] if cfg.files else ""),
                line,
                f"{what}: scripts would run as root but enable_script_security is not set (keepalived -t: "
                "SECURITY VIOLATION)",
            )
        )
