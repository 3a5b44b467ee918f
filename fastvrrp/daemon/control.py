"""The run-time control API: a Unix socket only root can use (io/unix_socket.py) speaking JSON lines, served
on the daemon's loop, and the operator state it sets (drain, priority offsets), which lives as long as the
process: it survives SIGHUP for the instances that still exist and is forgotten at restart.

Protocol: one JSON object per line in, one per line out, in order, on one connection as long as the client
likes. Requests:

    {"op": "status"}
    {"op": "drain",    "names": ["VI_1", "G1", "all"]}
    {"op": "undrain",  "names": [...]}
    {"op": "priority", "names": [...], "delta": -20}
    {"op": "reset",    "names": [...]}

Replies: {"ok": true, "instances": [row, ...]} (the rows the request touched; every instance for status) or
{"ok": false, "error": "..."}. A row: name, state, priority (on the wire), tracked_priority (trackers plus
offset, what runs when not drained), base_priority, offset, drained, owner, sync_group, vrid, interface,
family, master.

Names: an instance, a sync group (all its members) or `all`. drain, undrain and reset take a member's whole
sync group with it (a group changes state together: a drained member alone would pull the others over as it
resigns, or drag them back as it preempts). priority sets the offset (not cumulative: 0 clears it) of exactly
the instances named, or of every member of a named group. An unknown name fails the whole request, before
anything changes.

Semantics (the protocol part is fastvrrp/core: VrrpInstance.set_drained, priority.with_offset): drain makes
a master resign with a priority-0 advert and wait as a backup at priority 1, still taking over as a last
resort when nobody advertises; an address owner is drained the same way. An offset moves the tracked
priority within 1..254; an owner stays at 255. Every change is logged with the client's pid, uid and
process name.

Bounded work: a request changes at most CHUNK instances per turn of the loop and then yields, so the
adverts of a thousand instances go out on time while an operator drains them all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastvrrp.core.priority import Effective, with_offset
from fastvrrp.io.unix_socket import Peer, peer_credentials

if TYPE_CHECKING:
    from fastvrrp.daemon.driver import RunningInstance
    from fastvrrp.daemon.service import Daemon

log = logging.getLogger("fastvrrp")

DEFAULT_PATH = "/run/fastvrrp/control.sock"
MAX_LINE = 64 * 1024  # bytes in one request
MAX_CLIENTS = 16  # connections at once; more are told so and closed
IDLE_TIMEOUT_S = 60.0  # a connection with no request for that long is closed
WRITE_TIMEOUT_S = 10.0  # a client that does not read its reply is dropped
RELOAD_WAIT_S = 30.0  # a request during a reload waits for it to finish
CHUNK = 64  # instances changed per turn of the loop
MAX_OFFSET = 253  # 1..254 is 253 apart: a larger offset could not mean more
OPS = ("status", "drain", "undrain", "priority", "reset")
GROUP_WIDE = ("drain", "undrain", "reset")


class RequestError(Exception):
    """A request the daemon cannot carry out; the message goes back to the client."""


@dataclass
class Operator:
    """What operators set at run time, by instance name."""

    drained: set[str] = field(default_factory=set)
    offsets: dict[str, int] = field(default_factory=dict)

    def adjust(self, name: str, eff: Effective, owner: bool) -> Effective:
        """The trackers' result with this instance's offset applied (core.priority.with_offset)."""
        return with_offset(eff, self.offsets.get(name, 0), owner)

    def keep_only(self, names: Iterable[str]) -> None:
        """After a reload: forget instances that no longer exist."""
        names = set(names)
        self.drained &= names
        for n in [n for n in self.offsets if n not in names]:
            del self.offsets[n]


def row(inst: RunningInstance, operator: Operator) -> dict[str, Any]:
    core, io = inst.core, inst.io
    ms = core.master_src
    family = io.link.family
    return {
        "name": inst.name,
        "state": core.state.name,
        "priority": core.priority,
        "tracked_priority": core.tracked_priority,
        "base_priority": io.cfg.priority,
        "offset": operator.offsets.get(inst.name, 0),
        "drained": core.drained,
        "owner": core.owner,
        "sync_group": io.cfg.sync_group,
        "vrid": io.cfg.virtual_router_id,
        "interface": io.link.ifname,
        "family": family,
        "master": socket.inet_ntop(socket.AF_INET if family == 4 else socket.AF_INET6, ms) if ms else None,
    }


class ControlServer:
    """Serves the control socket on the daemon's loop (`serve`), given a listening socket from
    io.unix_socket.open_private_socket."""

    def __init__(self, daemon: Daemon, sock: socket.socket) -> None:
        self.daemon = daemon
        self.sock = sock
        self.server: asyncio.AbstractServer | None = None
        self.clients = 0

    async def serve(self) -> None:
        self.server = await asyncio.start_unix_server(self._client, sock=self.sock, limit=MAX_LINE)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        else:
            self.sock.close()

    # --- connections -------------------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = peer_credentials(writer.get_extra_info("socket"))
        except OSError as e:
            log.warning("control: cannot read the peer's credentials: %s", e)
            writer.close()
            return
        try:
            if peer.uid not in (0, os.geteuid()):
                log.warning("control: refused %s: only root may use the control socket", peer)
                await self._send(writer, _error(f"permission denied: uid {peer.uid} is not root"))
            elif self.clients >= MAX_CLIENTS:
                log.warning("control: refused %s: %d clients connected already", peer, self.clients)
                await self._send(writer, _error("busy: too many control connections, try again"))
            else:
                self.clients += 1
                try:
                    await self._serve_client(reader, writer, peer)
                finally:
                    self.clients -= 1
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer
    ) -> None:
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT_S)
            except ValueError:  # asyncio's LimitOverrunError, as readline reports it
                await self._send(writer, _error(f"request longer than {MAX_LINE} bytes"))
                return
            if not line:
                return
            if not line.strip():
                continue
            try:
                head, names = await self.request(line, peer)
                data = await self._encode(head, names)
            except RequestError as e:
                data = _encoded(_error(str(e)))
            except Exception as e:  # a bug must not take the daemon down: log it, answer, go on
                log.exception("control: internal error")
                data = _encoded(_error(f"internal error: {e}"))
            await self._write(writer, data)

    async def _send(self, writer: asyncio.StreamWriter, reply: dict[str, Any]) -> None:
        await self._write(writer, _encoded(reply))

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)

    async def _encode(self, head: dict[str, Any], names: list[str]) -> bytes:
        """`head` plus "instances": the rows of `names`, encoded CHUNK rows per turn of the loop (a thousand
        rows at once would hold the loop for milliseconds)."""
        parts: list[str] = []
        for i in range(0, len(names), CHUNK):
            if i:
                await asyncio.sleep(0)
            parts.extend(json.dumps(r, separators=_SEP) for r in self._rows(names[i : i + CHUNK]))
        text = json.dumps(head, separators=_SEP)
        return (text[:-1] + ',"instances":[' + ",".join(parts) + "]}\n").encode()

    # --- requests ------------------------------------------------------------------------------------------

    async def request(self, line: bytes, peer: Peer) -> tuple[dict[str, Any], list[str]]:
        """Carry out one request line: the reply's head and the instances whose rows go with it."""
        req = _parse(line)
        op = req["op"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RELOAD_WAIT_S
        while self.daemon.reloader.running:  # the instances are being rebuilt: wait for the new set
            if loop.time() > deadline:
                raise RequestError("a reload is still running; try again")
            await asyncio.sleep(0.05)
        d = self.daemon
        if op == "status":
            return {"ok": True, "pid": os.getpid(), "config": d.config_path}, list(d.insts)
        names = self.resolve(req["names"], op in GROUP_WIDE)
        delta = req.get("delta", 0)
        log.info(
            "control: %s%s %s by %s", op, f" {delta:+d}" if op == "priority" else "", _short(names), peer
        )
        for i in range(0, len(names), CHUNK):
            if i:
                await asyncio.sleep(0)  # let the loop send what is due before the next chunk
            self._apply(op, names[i : i + CHUNK], delta)
        d.status.write(force=True)
        return {"ok": True}, [n for n in names if n in d.insts]

    def _apply(self, op: str, names: list[str], delta: int) -> None:
        d = self.daemon
        op_state = d.operator
        now = time.monotonic_ns() // 1000  # the daemon's clock (service.now_us)
        for name in names:
            inst = d.insts.get(name)
            if inst is None:
                continue  # removed by a reload meanwhile
            if op in ("drain", "undrain", "reset"):
                drain = op == "drain"
                if drain:
                    op_state.drained.add(name)
                else:
                    op_state.drained.discard(name)
                d.driver.set_drain(inst, drain, now)
            if op in ("priority", "reset"):
                if delta:
                    op_state.offsets[name] = delta
                else:
                    op_state.offsets.pop(name, None)
                if inst.io.started:
                    d.on_effective(name, d.tracking.effective(name))
        d._after(now)

    def _rows(self, names: Iterable[str]) -> list[dict[str, Any]]:
        insts = self.daemon.insts
        op = self.daemon.operator
        return [row(insts[n], op) for n in list(names) if n in insts]

    def resolve(self, names: list[str], whole_groups: bool) -> list[str]:
        """Instance names for the request's names (module docstring); RequestError naming the unknown ones."""
        insts = self.daemon.insts
        groups = {g: [m for m in sg.group if m in insts] for g, sg in self.daemon.cfg.sync_groups.items()}
        group_of = {m: g for g, members in groups.items() for m in members}
        out: dict[str, None] = {}  # ordered set
        unknown = []
        for n in names:
            if n == "all":
                out.update(dict.fromkeys(insts))
            elif n in insts:
                g = group_of.get(n) if whole_groups else None
                out.update(dict.fromkeys(groups[g] if g else [n]))
            elif n in groups:
                out.update(dict.fromkeys(groups[n]))
            else:
                unknown.append(n)
        if unknown:
            raise RequestError(
                f"unknown instance or sync group: {', '.join(unknown)} "
                f"({len(insts)} instances, {len(groups)} sync groups; `fastvrrp ctl status` lists them)"
            )
        return list(out)


def _parse(line: bytes) -> dict[str, Any]:
    """A checked request; RequestError saying what is wrong."""
    try:
        req = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise RequestError(f"not a JSON object: {e}") from e
    if not isinstance(req, dict):
        raise RequestError("a request is a JSON object with an op")
    op = req.get("op")
    if op not in OPS:
        raise RequestError(f"unknown op {op!r}: one of {', '.join(OPS)}")
    if op == "status":
        return req
    names = req.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise RequestError(f"{op} needs names: a non-empty list of instance names, sync group names or 'all'")
    if op == "priority":
        delta = req.get("delta")
        if not isinstance(delta, int) or isinstance(delta, bool) or not -MAX_OFFSET <= delta <= MAX_OFFSET:
            raise RequestError(f"priority needs delta: an integer from -{MAX_OFFSET} to {MAX_OFFSET}")
    return req


def _error(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}


_SEP = (",", ":")


def _encoded(reply: dict[str, Any]) -> bytes:
    return json.dumps(reply, separators=_SEP).encode() + b"\n"


def _short(names: list[str], most: int = 8) -> str:
    if len(names) <= most:
        return ", ".join(names)
    return f"{', '.join(names[:most])} and {len(names) - most} more"
