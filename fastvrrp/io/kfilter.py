"""The backup's fast path in the kernel: an eBPF socket filter on an IPv4 receive socket that absorbs the
adverts a backup would only count as heard (docs/costs.md#kernel-fast-path).

A backup that follows its master reads, at 10 ms intervals, one advert per instance per interval, and every
one of them is byte for byte the one before: the same master, priority, interval, addresses and checksum.
For each VRID of the socket the engine writes here the advert it last accepted on its fast path (IP source and
destination, the VRRP message). The filter, run by the kernel for each datagram before it is queued, compares
the datagram with that entry; when they are equal it stores the time (CLOCK_MONOTONIC, ns), counts the
advert and drops it, so the daemon is not woken, no datagram is queued, copied or freed by a system call of
the daemon. Anything else (another master, a changed priority, a malformed or foreign datagram, a VRID
without an entry) is passed to the socket and takes the normal path, where it is validated and counted.
The engine reads the time when a backup's Master_Down deadline comes near and pushes the deadline as the
advert would have (`_engine.pyx`, `set_kernel_table`).

The table is a BPF array map of 256 entries (one per VRID) that the daemon maps into its memory
(BPF_F_MMAPABLE): no system call to read or write it. An entry:

    offset  0  u32  words   the words to compare, 0: the entry is off (the filter passes the VRID)
    offset  4  u32  seq     odd while the engine rewrites the entry; the filter passes a datagram when it
                            is odd or changed while the filter compared (a sequence lock)
    offset  8  u64  heard   CLOCK_MONOTONIC ns of the last advert absorbed (written by the filter; the
                            host's clock: a time namespace's offset is added by the engine)
    offset 16  u64  count   adverts absorbed (atomic add by the filter)
    offset 24  u32  word[MAX_WORDS]  the datagram from its IP source address on, as 32-bit words in host
                                     order (what the filter's packet loads return)

Only an IPv4 header without options (0x45), TTL 255 and a datagram of exactly 12 + 4 * words bytes can
match. The filter is attached with SO_ATTACH_BPF; where the kernel refuses (no CAP_BPF, no eBPF) the daemon
runs without it and nothing else changes.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import socket
import struct

ENTRIES = 256
MAX_WORDS = 14  # IP source and destination + a VRRP message of up to 48 bytes (v3: 10 IPv4 addresses)
ENTRY_SIZE = 24 + 4 * MAX_WORDS
TABLE_BYTES = ENTRIES * ENTRY_SIZE

_SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine())  # elsewhere: unavailable
_BPF_MAP_CREATE, _BPF_PROG_LOAD = 0, 5
_BPF_MAP_TYPE_ARRAY = 2
_BPF_F_MMAPABLE = 1 << 10
_BPF_PROG_TYPE_SOCKET_FILTER = 1
_BPF_PSEUDO_MAP_FD = 1
_SO_ATTACH_BPF = 50
_ATTR_SIZE = 144
_HELPER_MAP_LOOKUP, _HELPER_KTIME = 1, 5
LICENSE = b"Apache-2.0"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd: int, attr: bytes) -> int:
    if _SYS_BPF is None:
        raise OSError(errno.ENOSYS, f"bpf() is not known on {platform.machine()}")
    buf = ctypes.create_string_buffer(attr, _ATTR_SIZE)
    fd = _libc.syscall(_SYS_BPF, cmd, buf, _ATTR_SIZE)
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return int(fd)


# --- a minimal eBPF assembler: 8-byte instructions (opcode, dst | src << 4, offset, immediate) ------------
def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | (src << 4), off, imm)


R0, R1, R2, R6, R7, R8, R9, R10 = 0, 1, 2, 6, 7, 8, 9, 10
PASS, MATCH = "pass", "match"


def program(map_fd: int) -> bytes:
    """The filter's instructions (see the module docstring); jumps to the labels are resolved here."""
    code: list[tuple[int, int, int, int | str, int] | str] = []

    def op(c: int, dst: int = 0, src: int = 0, off: int | str = 0, imm: int = 0) -> None:
        code.append((c, dst, src, off, imm))

    op(0xBF, R6, R1)  # r6 = ctx (the packet loads below need it there)
    op(0x61, R0, R6, 0)  # r0 = skb->len
    op(0xA5, R0, 0, PASS, 28)  # shorter than an IP header + a VRRP header: not ours to judge
    op(0x30, imm=0)  # r0 = byte 0 (version, header length)
    op(0x55, R0, 0, PASS, 0x45)
    op(0x30, imm=8)  # TTL
    op(0x55, R0, 0, PASS, 255)
    op(0x30, imm=21)  # VRID
    op(0x63, R10, R0, -4)  # *(u32 *)(fp - 4) = vrid: the map key
    op(0x18, R1, _BPF_PSEUDO_MAP_FD, 0, map_fd)
    op(0x00)  # second half of the 64-bit load
    op(0xBF, R2, R10)
    op(0x07, R2, imm=-4)
    op(0x85, imm=_HELPER_MAP_LOOKUP)
    op(0x15, R0, 0, PASS, 0)  # no entry (cannot happen for 0..255, but the verifier asks)
    op(0xBF, R7, R0)  # r7 = the entry
    op(0x61, R8, R7, 0)  # r8 = words
    op(0x15, R8, 0, PASS, 0)
    op(0x25, R8, 0, PASS, MAX_WORDS)  # more than an entry holds (the engine never writes that)
    op(0xBF, R9, R8)  # (the packet loads clobber r1-r5)
    op(0x67, R9, imm=2)
    op(0x07, R9, imm=12)  # the datagram's length when it matches: 12 + 4 * words
    op(0x61, R0, R6, 0)
    op(0x5D, R0, R9, PASS)
    op(0x28, imm=2)  # IP total length (ntohs)
    op(0x5D, R0, R9, PASS)
    op(0x61, R9, R7, 4)  # r9 = seq (the sequence lock, see the module docstring)
    op(0x45, R9, 0, PASS, 1)  # odd: being rewritten
    for i in range(MAX_WORDS):
        op(0xB5, R8, 0, MATCH, i)  # words <= i: all compared
        op(0x20, imm=12 + 4 * i)  # r0 = word i of the datagram (ntohl)
        op(0x61, R1, R7, 24 + 4 * i)
        op(0x5D, R0, R1, PASS)
    code.append(MATCH)
    op(0x61, R1, R7, 4)
    op(0x5D, R1, R9, PASS)  # rewritten while compared
    op(0x85, imm=_HELPER_KTIME)
    op(0x7B, R7, R0, 8)  # entry.heard = now
    op(0xB7, R1, imm=1)
    op(0xDB, R7, R1, 16, 0)  # atomic entry.count += 1
    op(0xB7, R0, imm=0)  # drop: absorbed
    op(0x95)
    code.append(PASS)
    op(0xB4, R0, imm=-1)  # keep the whole datagram
    op(0x95)
    labels: dict[str, int] = {}
    pos = 0
    for item in code:
        if isinstance(item, str):
            labels[item] = pos
        else:
            pos += 1
    out = []
    pos = 0
    for item in code:
        if isinstance(item, str):
            continue
        c, dst, src, off, imm = item
        rel = labels[off] - pos - 1 if isinstance(off, str) else off
        out.append(_insn(c, dst, src, rel, imm))
        pos += 1
    return b"".join(out)


def _load(insns: bytes, lic: bytes) -> int:
    """BPF_PROG_LOAD of a socket filter; a refusal by the verifier raises with the verifier's log."""
    buf = ctypes.create_string_buffer(insns, len(insns))
    lic_buf = ctypes.create_string_buffer(lic)
    log = ctypes.create_string_buffer(65536)

    def attr(log_level: int) -> bytes:
        return struct.pack(
            "=IIQQIIQ",
            _BPF_PROG_TYPE_SOCKET_FILTER,
            len(insns) // 8,
            ctypes.addressof(buf),
            ctypes.addressof(lic_buf),
            log_level,
            len(log) if log_level else 0,
            ctypes.addressof(log) if log_level else 0,
        )

    try:
        return _bpf(_BPF_PROG_LOAD, attr(0))
    except OSError as exc:
        if exc.errno != errno.EACCES:
            raise
        try:
            return _bpf(_BPF_PROG_LOAD, attr(1))  # again, with the verifier's log
        except OSError:
            why = log.value.decode(errors="replace")[-2000:]
            raise OSError(exc.errno, f"the verifier refused the filter: {why}") from exc


def monotonic_offset_ns() -> int:
    """How far this process's CLOCK_MONOTONIC is ahead of the host's (a time namespace's offset; 0 outside
    one): the filter's times are the host's."""
    try:
        with open("/proc/self/timens_offsets") as f:
            for line in f:
                name, sec, nsec = line.split()
                if name == "monotonic":
                    return int(sec) * 1_000_000_000 + int(nsec)
    except (OSError, ValueError):
        pass
    return 0


class KernelTable:
    """The map, its mapping into this process and the loaded filter of one receive socket."""

    def __init__(self) -> None:
        self.map_fd = _bpf(
            _BPF_MAP_CREATE,
            struct.pack("=IIIII", _BPF_MAP_TYPE_ARRAY, 4, ENTRY_SIZE, ENTRIES, _BPF_F_MMAPABLE),
        )
        self.prog_fd = -1
        try:
            size = -(-TABLE_BYTES // mmap.PAGESIZE) * mmap.PAGESIZE
            self.mem = mmap.mmap(self.map_fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            self.prog_fd = _load(program(self.map_fd), LICENSE)
        except BaseException:
            self.close()
            raise

    def attach(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_BPF, self.prog_fd)

    def close(self) -> None:
        mem: mmap.mmap | None = getattr(self, "mem", None)
        if mem is not None and not mem.closed:
            mem.close()
        for fd in (self.prog_fd, self.map_fd):
            if fd >= 0:
                os.close(fd)
        self.prog_fd = self.map_fd = -1
