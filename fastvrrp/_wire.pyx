# cython: language_level=3
"""The VRRP wire codec: parse + validate, RFC 1071 checksums, advert templates, GARP / unsolicited NA frames.

Everything that touches a received byte is a `noexcept nogil` C function that returns a drop reason
(`Reason` in _wire.pxd) and never raises; the Python wrappers below are thin and only raise on misuse of
their own arguments (wrong types, out-of-range values for something we build).

VRRPv3 (RFC 5798 5.1 / RFC 9568 5.1), IPv4 or IPv6, 8 + Count * (4 | 16) bytes:

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version| Type  |     VRID      |   Priority    |  Count Addrs  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    | rsvd  |  Max Adver Int (cs)   |           Checksum            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |          IPv4 (4 bytes) or IPv6 (16 bytes) address 1          |
    +                              ...                              +
    |                      address Count                            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

VRRPv2 (RFC 3768 5.1), IPv4 only, 16 + Count * 4 bytes:

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version| Type  |     VRID      |   Priority    |  Count Addrs  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |   Auth Type   | Adver Int (s) |           Checksum            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                     IPv4 address 1 .. Count                   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |              Authentication Data (8 bytes, RFC 2338)          |
    +                                                               +
    |                                                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Checksums (RFC 5798 5.2.8, RFC 3768 5.3.8): the 16-bit one's complement of the one's complement sum of the
message with the checksum field zeroed. v2: message only. v3 IPv6: plus the pseudo-header of RFC 8200 8.1
(src, dst, 32-bit length, 3 zero bytes, next header 112). v3 IPv4: ambiguous in practice
(docs/rfc-checklist.md#v3-ipv4-checksum): keepalived / FRR / scapy add the IPv4 pseudo-header (src, dst, 0,
112, 16-bit length), RFC 9568 5.2.8 and Cisco / Juniper do not. We accept both by default and report which one
a packet used.

Validation order (the reference codec in tests/refcodec.py follows the same order, so both report the same
reason for the same bytes): IPv4 header (R_LENGTH, R_IP) -> fixed 8-byte VRRP header present (R_LENGTH) ->
TTL / hop limit (R_TTL) -> version (R_VERSION) -> type (R_TYPE) -> length against Count (R_LENGTH) ->
checksum (R_CHECKSUM) -> VRID (R_VRID) -> interval (R_ADVER_INT) -> v2 auth type (R_AUTH).
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

import socket as _socket

DROP_REASONS = (
    "ok", "length", "ip", "ttl", "version", "type", "checksum", "vrid", "adver_int", "auth",
    "no_instance", "version_mismatch", "auth_mismatch", "interval_mismatch", "own", "peer", "family",
)
assert len(DROP_REASONS) == R_COUNT

cdef tuple _REASONS = DROP_REASONS
cdef tuple _FORMS = (None, "pseudo", "message")


# ---------------------------------------------------------------------------------------------------------
# RFC 1071 checksum


cdef inline uint32_t _rd32(const uint8_t *p) noexcept nogil:
    return ((<uint32_t>p[0]) << 24) | ((<uint32_t>p[1]) << 16) | ((<uint32_t>p[2]) << 8) | p[3]


cdef inline uint16_t _rd16(const uint8_t *p) noexcept nogil:
    return <uint16_t>(((<uint16_t>p[0]) << 8) | p[1])


cdef inline void _wr16(uint8_t *p, uint16_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 8)
    p[1] = <uint8_t>(v & 0xff)


cdef uint64_t csum_add(uint64_t acc, const uint8_t *p, Py_ssize_t n) noexcept nogil:
    # Summing 32-bit big-endian words is the same as summing 16-bit ones modulo 0xffff (2**16 == 1 there),
    # and halves the loop. A 64-bit accumulator cannot overflow for any buffer we can hold.
    cdef Py_ssize_t i = 0
    while i + 4 <= n:
        acc += _rd32(p + i)
        i += 4
    if i + 2 <= n:
        acc += _rd16(p + i)
        i += 2
    if i < n:
        acc += (<uint64_t>p[i]) << 8  # RFC 1071 4.1: an odd last byte is the high half of a zero-padded word
    return acc


cdef uint16_t csum_fold(uint64_t acc) noexcept nogil:
    while acc >> 16:
        acc = (acc & 0xffff) + (acc >> 16)
    return <uint16_t>(~acc & 0xffff)


cdef uint64_t pseudo4_sum(const uint8_t *src, const uint8_t *dst, Py_ssize_t msg_len) noexcept nogil:
    # src(4) dst(4) zero(1) protocol(1) length(2)
    return <uint64_t>_rd32(src) + _rd32(dst) + 112 + ((<uint64_t>msg_len) & 0xffff)


cdef uint64_t pseudo6_sum(const uint8_t *src, const uint8_t *dst, Py_ssize_t msg_len) noexcept nogil:
    # src(16) dst(16) upper-layer length(4) zero(3) next header(1)   (RFC 8200 8.1)
    cdef uint64_t acc = csum_add(0, src, 16)
    acc = csum_add(acc, dst, 16)
    return acc + ((<uint64_t>msg_len) & (<uint64_t>0xffffffffUL)) + 112


cdef void fill_checksum(uint8_t *msg, Py_ssize_t n, int family, int version, int form,
                        const uint8_t *src, const uint8_t *dst) noexcept nogil:
    cdef uint64_t acc = 0
    if n < 8:
        return
    msg[6] = 0
    msg[7] = 0
    if version == 3:
        if family == 6:
            acc = pseudo6_sum(src, dst, n)
        elif form == CS_PSEUDO:
            acc = pseudo4_sum(src, dst, n)
    _wr16(msg + 6, csum_fold(csum_add(acc, msg, n)))


cdef void patch_advert(uint8_t *msg, int version, uint8_t priority, uint16_t interval) noexcept nogil:
    # RFC 1624 eqn 3: HC' = ~(~HC + ~m + m') for each changed 16-bit word m -> m'.
    cdef uint16_t old1 = _rd16(msg + 2)
    cdef uint16_t old2 = _rd16(msg + 4)
    cdef uint16_t new1 = <uint16_t>((<uint16_t>priority << 8) | (old1 & 0x00ff))  # priority | count
    cdef uint16_t new2
    if version == 3:
        new2 = interval & 0x0fff  # rsvd is sent as 0 (RFC 5798 5.2.6)
    else:
        new2 = <uint16_t>((old2 & 0xff00) | (interval & 0xff))
    cdef uint64_t acc = <uint64_t>(~_rd16(msg + 6) & 0xffff)
    acc += (~old1 & 0xffff) + new1 + (~old2 & 0xffff) + new2
    _wr16(msg + 2, new1)
    _wr16(msg + 4, new2)
    _wr16(msg + 6, csum_fold(acc))


# ---------------------------------------------------------------------------------------------------------
# Parse + validate


cdef int _parse_vrrp(const uint8_t *msg, Py_ssize_t n, int family, bint check_ttl, int policy,
                     Advert *out) noexcept nogil:
    """The VRRP message part, shared by both families; out.family/ttl/src/dst are already set."""
    cdef int ver, alen
    cdef Py_ssize_t need
    cdef uint64_t acc
    out.msg = msg
    if n < 8:
        return R_LENGTH
    ver = msg[0] >> 4
    out.version = <uint8_t>ver
    out.type = msg[0] & 0x0f
    out.vrid = msg[1]
    out.priority = msg[2]
    out.count = msg[3]
    out.checksum = _rd16(msg + 6)
    if ver == 3:
        out.adver_int_ms = ((<uint32_t>(msg[4] & 0x0f) << 8) | msg[5]) * 10  # rsvd ignored (5.2.6)
    elif ver == 2:
        out.auth_type = msg[4]
        out.adver_int_ms = (<uint32_t>msg[5]) * 1000
    # RFC 5798 7.1 / RFC 3768 7.1: TTL / hop limit must be 255 (skipped in unicast mode, keepalived ext.)
    if check_ttl and out.ttl != 255:
        return R_TTL
    # RFC 5798 7.1: version must be ours; v2 exists only over IPv4 (RFC 3768)
    if not (ver == 3 or (ver == 2 and family == 4)):
        return R_VERSION
    if out.type != 1:  # 5.2.2: only ADVERTISEMENT (1) is defined
        return R_TYPE
    # 7.1: the length must cover Count addresses (and the 8 auth bytes in v2); anything after that is
    # padding (Ethernet minimum frame), tolerated and excluded from msg_len and the checksum.
    alen = 4 if family == 4 else 16
    need = 8 + <Py_ssize_t>out.count * alen
    if ver == 2:
        need += 8
    if n < need:
        return R_LENGTH
    out.msg_len = <uint32_t>need
    out.addrs = msg + 8
    if ver == 2:
        out.auth_data = msg + need - 8
    # 7.1: checksum (forms: see the module docstring)
    acc = csum_add(0, msg, need)
    if ver == 2:
        if csum_fold(acc) != 0:
            return R_CHECKSUM
        out.checksum_form = CS_MESSAGE
    elif family == 6:
        if csum_fold(acc + pseudo6_sum(out.src, out.dst, need)) != 0:
            return R_CHECKSUM
        out.checksum_form = CS_PSEUDO
    else:
        if policy != CSP_MESSAGE_ONLY and csum_fold(acc + pseudo4_sum(out.src, out.dst, need)) == 0:
            out.checksum_form = CS_PSEUDO
        elif policy != CSP_PSEUDO_ONLY and csum_fold(acc) == 0:
            out.checksum_form = CS_MESSAGE
        else:
            return R_CHECKSUM
    if out.vrid == 0:  # 5.2.3: VRID is 1-255
        return R_VRID
    if out.adver_int_ms == 0:  # an interval of 0 would make Master_Down_Interval 0 (RFC 5798 6.1)
        return R_ADVER_INT
    if ver == 2 and out.auth_type > 2:  # RFC 3768 5.3.6 / RFC 2338: 0 none, 1 password, 2 AH
        return R_AUTH
    return R_OK


cdef int parse_ipv4(const uint8_t *pkt, Py_ssize_t n, bint check_ttl, int policy, Advert *out) noexcept nogil:
    cdef Py_ssize_t hl, tot
    memset(out, 0, sizeof(Advert))
    out.family = 4
    if n < 20:
        return R_LENGTH
    hl = (pkt[0] & 0x0f) * 4
    tot = _rd16(pkt + 2)
    if (pkt[0] >> 4) != 4 or hl < 20 or tot < hl or tot > n:
        return R_IP
    if _rd16(pkt + 6) & 0x3fff:  # MF set or a non-zero fragment offset: we never reassemble
        return R_IP
    if pkt[9] != 112:  # RFC 5798 5.2.4 (an AH-wrapped v2 advert has protocol 51: not supported)
        return R_IP
    out.ttl = pkt[8]
    memcpy(out.src, pkt + 12, 4)
    memcpy(out.dst, pkt + 16, 4)
    # bytes past the IP total length (Ethernet padding in a capture) are not part of the packet
    return _parse_vrrp(pkt + hl, tot - hl, 4, check_ttl, policy, out)


cdef int parse_ipv6(const uint8_t *msg, Py_ssize_t n, const uint8_t *src, const uint8_t *dst, int hoplimit,
                    bint check_ttl, Advert *out) noexcept nogil:
    memset(out, 0, sizeof(Advert))
    out.family = 6
    memcpy(out.src, src, 16)
    memcpy(out.dst, dst, 16)
    if 0 <= hoplimit <= 255:
        out.ttl = <uint8_t>hoplimit
    else:
        check_ttl = False  # no IPV6_HOPLIMIT cmsg: nothing to check (ttl reads 0)
    return _parse_vrrp(msg, n, 6, check_ttl, CSP_PSEUDO_ONLY, out)


# ---------------------------------------------------------------------------------------------------------
# Python level: Packet, decode_*


cdef class Packet:
    """A decoded advert (valid or not). Addresses are packed bytes; fields not reached before a failed check
    read 0 / b"" / ()."""

    def __init__(self):
        raise TypeError("Packet objects are made by decode_ipv4 / decode_ipv6")

    @property
    def src_text(self) -> str:
        return _ntop(self.family, self.src)

    @property
    def dst_text(self) -> str:
        return _ntop(self.family, self.dst)

    @property
    def address_texts(self) -> tuple:
        return tuple([_ntop(self.family, a) for a in self.addresses])

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in PACKET_FIELDS}

    def __repr__(self):
        if not self.valid:
            return (f"<Packet invalid reason={self.reason} v{self.version} vrid={self.vrid} "
                    f"src={self.src_text}>")
        return (f"<Packet v{self.version} IPv{self.family} vrid={self.vrid} prio={self.priority} "
                f"int={self.adver_int_ms}ms src={self.src_text} addrs={list(self.address_texts)} "
                f"csum={self.checksum_form}>")


PACKET_FIELDS = (
    "family", "version", "type", "vrid", "priority", "count", "adver_int_ms", "auth_type", "auth_data", "ttl",
    "checksum", "checksum_form", "src", "dst", "addresses", "msg_len", "valid", "reason",
)


cdef str _ntop(int family, bytes b):
    if family == 4 and len(b) == 4:
        return _socket.inet_ntop(_socket.AF_INET, b)
    if family == 6 and len(b) == 16:
        return _socket.inet_ntop(_socket.AF_INET6, b)
    return b.hex()


cdef Packet make_packet(const Advert *a, int reason):
    cdef Packet p = Packet.__new__(Packet)
    cdef int alen = 4 if a.family == 4 else 16
    cdef int i
    cdef list addrs
    p.family = a.family
    p.version = a.version
    p.type = a.type
    p.vrid = a.vrid
    p.priority = a.priority
    p.count = a.count
    p.adver_int_ms = a.adver_int_ms
    p.auth_type = a.auth_type
    p.ttl = a.ttl
    p.checksum = a.checksum
    p.checksum_form = _FORMS[a.checksum_form] if a.checksum_form <= 2 else None
    p.src = PyBytes_FromStringAndSize(<const char *>a.src, alen)
    p.dst = PyBytes_FromStringAndSize(<const char *>a.dst, alen)
    p.msg_len = a.msg_len
    if a.auth_data != NULL:
        p.auth_data = PyBytes_FromStringAndSize(<const char *>a.auth_data, 8)
    else:
        p.auth_data = b""
    if a.addrs != NULL and a.msg_len:
        addrs = []
        for i in range(a.count):
            addrs.append(PyBytes_FromStringAndSize(<const char *>(a.addrs + i * alen), alen))
        p.addresses = tuple(addrs)
    else:
        p.addresses = ()
    p.reason_code = reason
    p.valid = reason == R_OK
    p.reason = None if reason == R_OK else _REASONS[reason]
    return p


cdef inline int _check_policy(int policy) except -1:
    if policy < CSP_ACCEPT_BOTH or policy > CSP_MESSAGE_ONLY:
        raise ValueError(f"unknown checksum policy {policy}")
    return 0


def decode_ipv4(packet, bint check_ttl=True, int policy=CSP_ACCEPT_BOTH) -> Packet:
    """Parse and validate a whole IPv4 packet (IP header included). Never raises on bad bytes."""
    cdef Advert a
    cdef Py_buffer view
    cdef int r
    _check_policy(policy)
    if type(packet) is bytes:
        r = parse_ipv4(<const uint8_t *>PyBytes_AS_STRING(packet), len(<bytes>packet), check_ttl, policy, &a)
        return make_packet(&a, r)
    PyObject_GetBuffer(packet, &view, PyBUF_SIMPLE)
    try:
        r = parse_ipv4(<const uint8_t *>view.buf, view.len, check_ttl, policy, &a)
        return make_packet(&a, r)
    finally:
        PyBuffer_Release(&view)


def decode_ipv6(msg, src, dst, int hoplimit, bint check_ttl=True) -> Packet:
    """Parse and validate a VRRP message from an AF_INET6 raw socket; src/dst are 16 packed bytes, hoplimit
    the IPV6_HOPLIMIT cmsg value (-1 if unknown: the hop-limit rule is then skipped)."""
    cdef Advert a
    cdef Py_buffer view
    cdef int r
    cdef bytes s = bytes(src)
    cdef bytes d = bytes(dst)
    if len(s) != 16 or len(d) != 16:
        raise ValueError("src and dst must be 16 packed bytes")
    PyObject_GetBuffer(msg, &view, PyBUF_SIMPLE)
    try:
        r = parse_ipv6(<const uint8_t *>view.buf, view.len, <const uint8_t *>PyBytes_AS_STRING(s),
                       <const uint8_t *>PyBytes_AS_STRING(d), hoplimit, check_ttl, &a)
        return make_packet(&a, r)
    finally:
        PyBuffer_Release(&view)


def checksum(data, uint64_t initial=0) -> int:
    """RFC 1071: the one's complement of the one's complement sum of data, starting from the partial sum
    `initial` (e.g. a pseudo-header's). Over data that carries a correct checksum the result is 0."""
    cdef Py_buffer view
    if initial > 0xffffffffffff:
        raise ValueError("initial must be a partial sum below 2**48")
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        return csum_fold(csum_add(initial, <const uint8_t *>view.buf, view.len))
    finally:
        PyBuffer_Release(&view)


# ---------------------------------------------------------------------------------------------------------
# Building adverts


cdef bytes _packed(object value, int alen, str what):
    cdef bytes b = bytes(value)
    if len(b) != alen:
        raise ValueError(f"{what} must be {alen} packed bytes, got {len(b)}")
    return b


cdef uint16_t _interval_units(int version, object adver_int_ms) except? 0xffff:
    """Milliseconds -> wire units: centiseconds 0-4095 (v3, RFC 5798 5.2.7) or seconds 0-255 (v2)."""
    cdef long long ms = adver_int_ms
    if version == 3:
        if ms < 0 or ms % 10 or ms // 10 > 4095:
            raise ValueError(f"v3 adver_int_ms must be a multiple of 10 in 0..40950, got {ms}")
        return <uint16_t>(ms // 10)
    if ms < 0 or ms % 1000 or ms // 1000 > 255:
        raise ValueError(f"v2 adver_int_ms must be a multiple of 1000 in 0..255000, got {ms}")
    return <uint16_t>(ms // 1000)


cdef bytes _build(int version, int family, int vrid, int priority, object adver_int_ms, object addresses,
                  object src, object dst, int auth_type, object auth_data, int checksum_form):
    if version not in (2, 3):
        raise ValueError(f"version must be 2 or 3, got {version}")
    if family not in (4, 6):
        raise ValueError(f"family must be 4 or 6, got {family}")
    if version == 2 and family != 4:
        raise ValueError("VRRPv2 is IPv4 only (RFC 3768)")
    if not 0 <= vrid <= 255 or not 0 <= priority <= 255:
        raise ValueError("vrid and priority must be 0..255")
    if checksum_form != CS_PSEUDO and checksum_form != CS_MESSAGE:
        raise ValueError(f"checksum_form must be CS_PSEUDO or CS_MESSAGE, got {checksum_form}")
    cdef int alen = 4 if family == 4 else 16
    cdef uint16_t units = _interval_units(version, adver_int_ms)
    cdef list addrs = [_packed(a, alen, "address") for a in addresses]
    if len(addrs) > 255:
        raise ValueError("at most 255 addresses")
    cdef bytes s = _packed(src, alen, "src")
    cdef bytes d = _packed(dst, alen, "dst")
    cdef bytes auth = bytes(auth_data)
    if version == 3:
        if auth_type != 0 or auth:
            raise ValueError("VRRPv3 has no authentication")
    elif not 0 <= auth_type <= 255 or len(auth) > 8:
        raise ValueError("auth_type must be 0..255 and auth_data at most 8 bytes")
    cdef bytearray out = bytearray(8)
    out[0] = (version << 4) | 1
    out[1] = vrid
    out[2] = priority
    out[3] = len(addrs)
    if version == 3:
        out[4] = units >> 8
        out[5] = units & 0xff
    else:
        out[4] = auth_type
        out[5] = units
    for a in addrs:
        out += a
    if version == 2:
        out += auth + bytes(8 - len(auth))  # RFC 2338 5.3.10: zero-padded password
    cdef bytes msg = bytes(out)
    fill_checksum(<uint8_t *>PyBytes_AS_STRING(msg), len(msg), family, version, checksum_form,
                  <const uint8_t *>PyBytes_AS_STRING(s), <const uint8_t *>PyBytes_AS_STRING(d))
    return msg


def build_advert(*, int version, int family, int vrid, int priority, adver_int_ms, addresses, src, dst,
                 int auth_type=0, auth_data=b"", int checksum_form=CS_PSEUDO) -> bytes:
    """The VRRP message (no IP header) with its checksum filled. For unicast, dst is the peer
    (docs/rfc-checklist.md#unicast-checksum: the pseudo-header uses the unicast destination). checksum_form
    only matters for v3 over IPv4."""
    return _build(version, family, vrid, priority, adver_int_ms, addresses, src, dst, auth_type, auth_data,
                  checksum_form)


cdef class AdvertTemplate:
    """A built advert whose priority and interval are patched per send with an incremental checksum update
    (RFC 1624), so a render costs one copy and a few additions."""

    cdef bytes _msg
    cdef readonly int version
    cdef readonly int family
    cdef readonly Py_ssize_t size

    def __init__(self, *, int version, int family, int vrid, int priority, adver_int_ms, addresses, src,
                 dst, int auth_type=0, auth_data=b"", int checksum_form=CS_PSEUDO):
        self._msg = _build(version, family, vrid, priority, adver_int_ms, addresses, src, dst, auth_type,
                           auth_data, checksum_form)
        self.version = version
        self.family = family
        self.size = len(self._msg)

    @property
    def message(self) -> bytes:
        return self._msg

    cdef inline uint16_t _units(self, unsigned int adver_int_ms) except? 0xffff:
        if self.version == 3:
            if adver_int_ms % 10 == 0 and adver_int_ms <= 40950:
                return <uint16_t>(adver_int_ms // 10)
        elif adver_int_ms % 1000 == 0 and adver_int_ms <= 255000:
            return <uint16_t>(adver_int_ms // 1000)
        return _interval_units(self.version, adver_int_ms)  # raises with the message

    def render(self, unsigned int priority, unsigned int adver_int_ms) -> bytes:
        cdef uint16_t units = self._units(adver_int_ms)
        if priority > 255:
            raise ValueError("priority must be 0..255")
        cdef bytes out = PyBytes_FromStringAndSize(PyBytes_AS_STRING(self._msg), self.size)
        patch_advert(<uint8_t *>PyBytes_AS_STRING(out), self.version, <uint8_t>priority, units)
        return out

    def render_into(self, buf, unsigned int priority, unsigned int adver_int_ms) -> int:
        """Write the advert into a writable buffer (bytearray, memoryview ...); returns its size."""
        cdef uint16_t units = self._units(adver_int_ms)
        cdef Py_buffer view
        if priority > 255:
            raise ValueError("priority must be 0..255")
        PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
        try:
            if view.len < self.size:
                raise ValueError(f"buffer too small: {view.len} < {self.size}")
            memcpy(view.buf, PyBytes_AS_STRING(self._msg), self.size)
            patch_advert(<uint8_t *>view.buf, self.version, <uint8_t>priority, units)
        finally:
            PyBuffer_Release(&view)
        return self.size


# ---------------------------------------------------------------------------------------------------------
# Announcement frames (docs/rfc-checklist.md#announcements; RFC 5798 6.4.1 / 6.4.2 duties)


def vmac(int vrid, int family=4) -> bytes:
    """The virtual router MAC, 00-00-5E-00-01-{VRID} (IPv4) or 00-00-5E-00-02-{VRID} (IPv6), RFC 5798 7.3."""
    if not 0 <= vrid <= 255:
        raise ValueError("vrid must be 0..255")
    if family not in (4, 6):
        raise ValueError("family must be 4 or 6")
    return bytes((0, 0, 0x5E, 0, 1 if family == 4 else 2, vrid))


def garp_frame(vmac, vip) -> bytes:
    """Gratuitous ARP request (42 bytes, the NIC pads to 60): broadcast, sha=vmac, spa=tpa=vip
    (RFC 5227 3)."""
    cdef bytes m = vmac if type(vmac) is bytes else bytes(vmac)
    cdef bytes ip = vip if type(vip) is bytes else bytes(vip)
    if len(m) != 6 or len(ip) != 4:
        raise ValueError("vmac must be 6 bytes and vip 4 packed bytes")
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 42)
    cdef uint8_t *f = <uint8_t *>PyBytes_AS_STRING(out)
    cdef const uint8_t *pm = <const uint8_t *>PyBytes_AS_STRING(m)
    cdef const uint8_t *pi = <const uint8_t *>PyBytes_AS_STRING(ip)
    memset(f, 0xff, 6)  # Ethernet broadcast
    memcpy(f + 6, pm, 6)
    memcpy(f + 12, b"\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01", 10)  # ARP: Ethernet/IPv4, request
    memcpy(f + 22, pm, 6)  # sender hardware = VMAC
    memcpy(f + 28, pi, 4)  # sender protocol = VIP
    memset(f + 32, 0xff, 6)  # target hardware: broadcast, as keepalived and Linux arping send it
    memcpy(f + 38, pi, 4)  # target protocol = VIP
    return out


cdef const uint8_t *_ALL_NODES = b"\xff\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"


def unsolicited_na_frame(vmac, vip, bint router=True) -> bytes:
    """Unsolicited neighbour advertisement (86 bytes) to ff02::1, hop limit 255 (RFC 4861 4.4, 7.2.6),
    flags R (if router) and O, with a target link-layer address option carrying vmac."""
    cdef bytes m = vmac if type(vmac) is bytes else bytes(vmac)
    cdef bytes ip = vip if type(vip) is bytes else bytes(vip)
    if len(m) != 6 or len(ip) != 16:
        raise ValueError("vmac must be 6 bytes and vip 16 packed bytes")
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 86)
    cdef uint8_t *f = <uint8_t *>PyBytes_AS_STRING(out)
    cdef const uint8_t *pm = <const uint8_t *>PyBytes_AS_STRING(m)
    cdef const uint8_t *pi = <const uint8_t *>PyBytes_AS_STRING(ip)
    memcpy(f, b"\x33\x33\x00\x00\x00\x01", 6)  # all-nodes multicast MAC (RFC 2464 7)
    memcpy(f + 6, pm, 6)
    memcpy(f + 12, b"\x86\xdd\x60\x00\x00\x00\x00\x20\x3a\xff", 10)  # IPv6, plen 32, ICMPv6, hlim 255
    memcpy(f + 22, pi, 16)  # source = VIP
    memcpy(f + 38, _ALL_NODES, 16)
    cdef uint8_t *icmp = f + 54
    memcpy(icmp, b"\x88\x00\x00\x00", 4)  # type 136, code 0, checksum 0 for now
    memcpy(icmp + 4, b"\xa0\x00\x00\x00" if router else b"\x20\x00\x00\x00", 4)  # R|O or O
    memcpy(icmp + 8, pi, 16)  # target = VIP
    icmp[24] = 2  # option: target link-layer address
    icmp[25] = 1  # length in units of 8 bytes
    memcpy(icmp + 26, pm, 6)
    # pseudo-header (RFC 8200 8.1): src, dst, length 32, next header 58
    cdef uint64_t acc = csum_add(0, pi, 16)
    acc = csum_add(acc, _ALL_NODES, 16) + 32 + 58
    _wr16(icmp + 2, csum_fold(csum_add(acc, icmp, 32)))
    return out


# The cpdef enums exist in Python as classes (Reason, ChecksumForm, ChecksumPolicy); DESIGN.md also uses their
# members as module constants (CSP_ACCEPT_BOTH, CS_PSEUDO, R_CHECKSUM ...).
for _enum in (Reason, ChecksumForm, ChecksumPolicy):
    globals().update(_enum.__members__)
del _enum
