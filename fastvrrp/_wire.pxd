# C-level contract of fastvrrp._wire, cimported by fastvrrp._engine.
# Everything here is nogil and never raises: the result of a parse is a drop reason code.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

# Drop reasons. The order is the index into _wire.DROP_REASONS (the names decode --json prints).
cpdef enum Reason:
    R_OK = 0
    R_LENGTH = 1          # shorter than its headers, or than 8 + count*addrlen (+8 for v2 auth)
    R_IP = 2              # bad IPv4 header: ihl, total length, fragment, protocol not 112
    R_TTL = 3             # TTL / hop limit not 255 (multicast)
    R_VERSION = 4         # not 2 or 3, or v2 over IPv6
    R_TYPE = 5            # type != 1
    R_CHECKSUM = 6
    R_VRID = 7            # VRID 0
    R_ADVER_INT = 8       # interval 0
    R_AUTH = 9            # v2 auth type unknown (not 0, 1, 2)
    R_NO_INSTANCE = 10    # engine: no instance for (socket, VRID)
    R_VERSION_MISMATCH = 11  # engine: valid packet, but the instance runs the other version
    R_AUTH_MISMATCH = 12  # engine: v2 auth type or password differs from the instance's
    R_INTERVAL_MISMATCH = 13  # core: v2 advert interval differs from ours (RFC 3768 7.1)
    R_OWN = 14            # engine: our own packet looped back
    R_PEER = 15           # engine: unicast source is not a configured peer
    R_FAMILY = 16         # engine: address family of the packet differs from the instance
    R_COUNT = 17

cpdef enum ChecksumForm:
    CS_NONE = 0           # not verified (invalid before the checksum check)
    CS_PSEUDO = 1         # v3 IPv4 with the IPv4 pseudo-header (keepalived, FRR default), and every v3 IPv6
    CS_MESSAGE = 2        # VRRP message only (v2; v3 IPv4 per RFC 9568 5.2.8)

# The v3 IPv4 checksum policy (receive side) and form (transmit side).
cpdef enum ChecksumPolicy:
    CSP_ACCEPT_BOTH = 0
    CSP_PSEUDO_ONLY = 1
    CSP_MESSAGE_ONLY = 2

cdef struct Advert:
    uint8_t family            # 4 or 6
    uint8_t version
    uint8_t type
    uint8_t vrid
    uint8_t priority
    uint8_t count
    uint8_t auth_type         # v2 only, else 0
    uint8_t ttl               # TTL or hop limit
    uint8_t checksum_form     # ChecksumForm
    uint16_t checksum         # as received
    uint32_t adver_int_ms     # v2 seconds * 1000, v3 centiseconds * 10
    uint8_t src[16]           # IPv4 uses the first 4 bytes
    uint8_t dst[16]
    const uint8_t *msg        # start of the VRRP message inside the caller's buffer
    uint32_t msg_len          # bytes of VRRP message the header and count account for (padding excluded)
    const uint8_t *addrs      # first address inside msg
    const uint8_t *auth_data  # v2: 8 bytes inside msg, else NULL

# RFC 1071 one's-complement sum: accumulate 16-bit big-endian words into a wide accumulator, fold at the end.
cdef uint64_t csum_add(uint64_t acc, const uint8_t *p, Py_ssize_t n) noexcept nogil
cdef uint16_t csum_fold(uint64_t acc) noexcept nogil

# Parse and validate a whole IPv4 packet (IP header included, as an AF_INET raw socket delivers it).
# check_ttl=0 skips the TTL rule (unicast mode). Returns a Reason; on R_OK every field of out is set, and on
# failure the fields decoded before the failing check are set.
cdef int parse_ipv4(const uint8_t *pkt, Py_ssize_t n, bint check_ttl, int policy, Advert *out) noexcept nogil

# Parse and validate a VRRP message received on an AF_INET6 raw socket (no IP header): src/dst are 16 bytes,
# hoplimit comes from the IPV6_HOPLIMIT cmsg (-1 if unknown: the TTL rule is then skipped).
cdef int parse_ipv6(const uint8_t *msg, Py_ssize_t n, const uint8_t *src, const uint8_t *dst, int hoplimit,
                    bint check_ttl, Advert *out) noexcept nogil

# Write the checksum of a VRRP message in place (field at offset 6), for the given family/version/form.
cdef void fill_checksum(uint8_t *msg, Py_ssize_t n, int family, int version, int form,
                        const uint8_t *src, const uint8_t *dst) noexcept nogil

# ---- additions (keep the declarations above stable: fastvrrp._engine cimports them) ----------------------
# Checksum convention, as in the Linux kernel: csum_fold returns the one's complement of the folded sum, i.e.
# the value to store in a checksum field; over a message that already carries a correct checksum it returns 0.
# csum_add reads big-endian words; call it in chunks of even length (only the last chunk may be odd).

# Sum of the IPv4 / IPv6 pseudo-header for protocol 112 and a VRRP message of msg_len bytes (RFC 5798 5.2.8).
cdef uint64_t pseudo4_sum(const uint8_t *src, const uint8_t *dst, Py_ssize_t msg_len) noexcept nogil
cdef uint64_t pseudo6_sum(const uint8_t *src, const uint8_t *dst, Py_ssize_t msg_len) noexcept nogil

# Patch priority and interval of a built advert in place and update its checksum incrementally (RFC 1624
# eqn 3). The interval is already in wire units: centiseconds (v3) or seconds (v2). No range checks.
cdef void patch_advert(uint8_t *msg, int version, uint8_t priority, uint16_t interval) noexcept nogil

# The Python view of a decoded advert (see DESIGN.md "_wire"). make_packet copies everything out of the
# Advert (no pointer into the caller's buffer survives), so the buffer may be reused right after.
cdef class Packet:
    cdef readonly int family
    cdef readonly int version
    cdef readonly int type
    cdef readonly int vrid
    cdef readonly int priority
    cdef readonly int count
    cdef readonly int adver_int_ms
    cdef readonly int auth_type
    cdef readonly bytes auth_data
    cdef readonly int ttl
    cdef readonly int checksum
    cdef readonly object checksum_form
    cdef readonly bytes src
    cdef readonly bytes dst
    cdef readonly tuple addresses
    cdef readonly int msg_len
    cdef readonly bint valid
    cdef readonly object reason
    cdef readonly int reason_code

cdef Packet make_packet(const Advert *a, int reason)
