# cython: language_level=3
"""The steady-state hot loop: batched receive and send, demux, the deadline heap and the VRRP fast path.

One Engine per daemon holds every VRRP instance as a numbered *slot*. Per packet and per periodic advert
nothing here creates a Python object unless Python has to decide something (docs/DESIGN.md#the-fast-path):

- receive(rx, now_us): recvmmsg in batches until the queue is empty, parse + validate with _wire, demux by
  (rx socket, VRID) through a flat C array, drop and count by reason, and on the fast path let a backup's
  unchanged master push its Master_Down deadline (RFC 5798 6.4.2) without waking Python.
- run(now_us): fire every deadline due within SLACK_US (uvloop rounds timers to 1 ms,
  docs/kernel-notes.md#uvloop-timers); a master slot queues its pre-rendered adverts and re-arms itself
  (RFC 5798 6.4.3 Adver_Timer); everything else becomes an EV_TIMER event, but only after every open rx
  socket was read once (an advert waiting unread counts as heard: docs/costs.md#stalls).
- flush(): one sendmmsg per tx socket for everything queued.
- advert copies (fastvrrp's advert_copies / advert_copy_delay, docs/rfc-checklist.md#advert-copies): a slot
  set to N copies sends every advert it queues (periodic or send_now with a time) N times, the copies at
  +delay, +2 delay ... from a second small heap of their own; the slot's own deadline and the interval
  schedule do not move. A later send restarts the copies, cancel_copies() drops them.
- send_due(now_us): the masters' due adverts alone, flushed; safe from another thread while no other engine
  call has let go of the GIL (docs/costs.md#advert-precedence).

Time is integer microseconds on a clock the caller owns (the driver passes CLOCK_MONOTONIC): no clock is read
here, so tests drive the engine with a virtual clock. With fast_path=False the engine decides nothing: every
due deadline and every valid packet goes up, which is the reference for the differential test.

The deadline structure is a 4-ary min-heap of (key_us, slot) in C arrays with a position index per slot.
Keys are allowed to lag behind a slot's real deadline when the deadline only moved *later* (a backup pushed
by its master's advert): the per-packet cost is then one store, and the stale key is repaired when it reaches
the top of the heap within the horizon the caller asks about (`run`: what is due; `next_deadline`: the
daemon passes its next read, so a backup's key is repaired about once per Master_Down_Interval, not once per
advert). A deadline that moves earlier is sifted up at once, so the heap top is never later than the true
earliest deadline.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.errno cimport EAGAIN, EBADF, EINTR, ENOTSOCK, errno
from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from fastvrrp._sys cimport (
    AF_INET,
    AF_INET6,
    CMSG_DATA,
    CMSG_FIRSTHDR,
    CMSG_NXTHDR,
    IPPROTO_IPV6,
    IPV6_HOPLIMIT,
    IPV6_PKTINFO,
    MSG_DONTWAIT,
    MSG_TRUNC,
    cmsghdr,
    getsockopt,
    in6_pktinfo,
    iovec,
    mmsghdr,
    recvmmsg,
    sendmmsg,
    sockaddr_in,
    sockaddr_in6,
    socklen_t,
)
from fastvrrp._wire cimport (
    R_AUTH_MISMATCH,
    R_COUNT,
    R_LENGTH,
    R_NO_INSTANCE,
    R_OK,
    R_OWN,
    R_PEER,
    R_VERSION_MISMATCH,
    Advert,
    make_packet,
    parse_ipv4,
    parse_ipv6,
)

import os as _os

from fastvrrp._wire import DROP_REASONS as _WIRE_REASONS

EV_TIMER = 1
EV_ADVERT = 2
# The names of the drop counters engine.drops() returns, by index: the codec's reasons, then the engine's own
# (rx_overflow: datagrams the kernel dropped for want of receive buffer space: sk_drops, by SO_MEMINFO).
DROP_REASONS = (*_WIRE_REASONS, "rx_overflow")

cdef enum:
    # fire what is due within 0.5 ms: the loop timer has 1 ms resolution (docs/kernel-notes.md#uvloop-timers)
    SLACK_US = 500
    LATE_US = 1000         # a fire more than 1 ms after its deadline counts as late
    RXBUF = 4160           # > the largest VRRP datagram: IPv6 8 + 255*16 = 4088; IPv4 60 + 8 + 1020 + 8
    CMSGBUF = 128          # room for IPV6_HOPLIMIT + IPV6_PKTINFO
    SEND_CHUNK = 256       # messages per sendmmsg call (the kernel caps vlen at UIO_MAXIOV = 1024)
    NDROPS = 32            # >= R_COUNT + 1
    R_RX_OVERFLOW = R_COUNT  # the kernel dropped datagrams: the socket's receive buffer was full
    SOL_SOCKET_ = 1        # <sys/socket.h>: SOL_SOCKET / SO_MEMINFO (the socket's memory counters and drops)
    SO_MEMINFO_ = 55
    SK_MEMINFO_DROPS_ = 8  # <linux/sock_diag.h>: index of sk_drops in SO_MEMINFO's u32 array
    SK_MEMINFO_VARS_ = 16  # room for the array (9 entries on current kernels)
    # the kernel fast path's table (io/kfilter.py): per VRID an entry of KT_ENTRY bytes
    KT_SEQ_AT = 4          # u32: odd while the engine rewrites the entry (the filter then passes)
    KT_HEARD_AT = 8        # u64: CLOCK_MONOTONIC ns (the host's) of the last advert the filter absorbed
    KT_COUNT_AT = 16       # u64: adverts absorbed
    KT_DATA_AT = 24        # u32 words from the IP source address on, host order; the u32 at 0 says how many
    KT_MAX_WORDS = 14
    KT_ENTRY = 80          # KT_DATA_AT + 4 * KT_MAX_WORDS
    KT_ENTRIES = 256
    MODE_IDLE = 0          # the deadline (if any) belongs to Python: firing it is an EV_TIMER
    MODE_MASTER = 1        # fast path: send adverts at each deadline and re-arm
    MODE_BACKUP = 2        # fast path: the current master's unchanged adverts push the deadline


cdef struct Out:
    # One pre-rendered datagram and where it goes: sa is a sockaddr_in or a sockaddr_in6.
    uint8_t *msg
    uint32_t len
    uint8_t dst[16]
    uint8_t alen
    sockaddr_in6 sa
    socklen_t salen


cdef struct QItem:
    Out *out
    int32_t slot           # -1 for send_raw
    bint owned             # out (and its msg) belong to the queue and are freed after flush


cdef struct Slot:
    bint used
    int32_t rx
    int32_t tx             # -1: no adverts set
    uint8_t vrid
    uint8_t version
    uint8_t alen           # 4 or 16
    uint8_t mode
    uint8_t auth_type
    uint8_t auth_data[8]
    uint8_t master_src[16]
    uint8_t master_prio
    uint32_t master_adver_int_ms
    int64_t deadline_us    # -1: none
    int64_t interval_us
    int64_t down_us
    int32_t hpos           # index in the heap, -1 when absent
    Out *outs
    int32_t nout
    uint8_t *peers         # npeers * alen bytes; npeers > 0 means unicast
    int32_t npeers
    uint64_t sent
    uint64_t rx_fast
    uint64_t events
    uint64_t fires
    uint64_t late
    uint64_t max_late_us
    uint64_t skipped
    # advert copies (see the module docstring): the copies of each advert and their spacing, how many of
    # the current advert's copies are still to go, and when the next one is due (-1: none)
    uint8_t copies
    uint8_t copies_left
    int64_t copy_delay_us
    int64_t copy_at_us
    uint64_t copies_sent
    # the kernel fast path (set_kernel_table): the slot's entry while the filter absorbs its master's
    # adverts (NULL: off), and the entry's count when it was turned on
    uint8_t *kent
    uint64_t kseen


cdef struct RxSock:
    int fd
    uint8_t alen
    bint check_ttl
    int policy
    uint8_t *own
    int32_t nown
    uint64_t drops[NDROPS]
    uint64_t datagrams
    uint64_t batches
    uint64_t drains        # reads by run() before a non-master deadline fired
    uint8_t *ktab          # the kernel fast path's table of this socket (IPv4), NULL: none


cdef struct TxSock:
    int fd
    uint8_t alen
    QItem *q
    int32_t qn
    int32_t qcap
    uint64_t sent
    uint64_t errors
    uint64_t calls
    int last_errno


cdef inline int _alen_of(family) except -1:
    if family in (4, AF_INET):
        return 4
    if family in (6, AF_INET6):
        return 16
    raise ValueError(f"family must be 4 or 6, not {family!r}")


cdef extern from *:
    void __sync_synchronize() nogil  # a full barrier: the filter may read an entry while it is rewritten


cdef inline void _kernel_off(Slot *sl) noexcept nogil:
    # The filter passes the slot's VRID from now on; what it absorbed counts as read by the fast path.
    (<uint32_t *>sl.kent)[0] = 0
    __sync_synchronize()
    sl.rx_fast += (<uint64_t *>(sl.kent + KT_COUNT_AT))[0] - sl.kseen
    sl.kent = NULL


cdef inline void _kernel_heard(Slot *sl, int64_t offset_us) noexcept nogil:
    # An advert the filter absorbed pushes the deadline as one read at that time would (RFC 5798 6.4.2).
    # offset_us: the time namespace's CLOCK_MONOTONIC offset (the filter's clock is the host's).
    cdef uint64_t ns = (<uint64_t *>(sl.kent + KT_HEARD_AT))[0]
    cdef int64_t d
    if ns:
        d = <int64_t>(ns // 1000) + offset_us + sl.down_us
        if d > sl.deadline_us:
            sl.deadline_us = d


cdef void _kernel_learn(Slot *sl, uint8_t *e, const uint8_t *pkt, Py_ssize_t n) noexcept nogil:
    # The fast path absorbed this IPv4 datagram for sl: let the filter absorb the same bytes from now on.
    cdef int nw, i
    cdef uint32_t v[KT_MAX_WORDS]
    cdef uint32_t *w = <uint32_t *>(e + KT_DATA_AT)
    cdef bint same
    if pkt[0] != 0x45 or n < 28 or n > 12 + 4 * KT_MAX_WORDS or (n & 3) != 0:
        return  # IP options, or more addresses than an entry holds: the socket keeps them
    nw = <int>((n - 12) >> 2)
    same = (<uint32_t *>e)[0] == <uint32_t>nw
    for i in range(nw):
        # the words as the filter's packet loads see them (network order read into a host integer)
        v[i] = (<uint32_t>pkt[12 + 4 * i] << 24) | (<uint32_t>pkt[13 + 4 * i] << 16) | \
            (<uint32_t>pkt[14 + 4 * i] << 8) | pkt[15 + 4 * i]
        same = same and w[i] == v[i]
    if sl.kent != e:
        sl.kseen = (<uint64_t *>(e + KT_COUNT_AT))[0]  # before the filter can count for this slot
        sl.kent = e
    if not same:
        # a sequence lock: the filter passes while the count is odd, and when it changed under its compare
        (<uint32_t *>(e + KT_SEQ_AT))[0] += 1
        __sync_synchronize()
        (<uint32_t *>e)[0] = 0
        memcpy(w, v, nw * sizeof(uint32_t))
        (<uint32_t *>e)[0] = <uint32_t>nw
        __sync_synchronize()
        (<uint32_t *>(e + KT_SEQ_AT))[0] += 1


cdef class Engine:
    """See the module docstring and docs/DESIGN.md "_engine"."""

    cdef Slot *slots
    cdef int32_t max_slots
    cdef int32_t nslots_hint       # slots [0, nslots_hint) may be in use
    cdef RxSock *rxs
    cdef int32_t nrx
    cdef TxSock *txs
    cdef int32_t ntx
    cdef int32_t max_sockets
    cdef int32_t *demux            # [rx * 256 + vrid] -> slot, -1 = none
    cdef int64_t *hk               # heap keys
    cdef int32_t *hs               # heap slots
    cdef int32_t hn
    cdef int64_t *ck               # copy heap keys (a binary min-heap; entries go stale, see _run_copies)
    cdef int32_t *cs               # copy heap slots
    cdef int32_t cn
    cdef int32_t ccap
    cdef int32_t *dfs             # send_due(): the heap nodes still to visit
    cdef bint busy                # inside run / receive / feed / flush / set_adverts: send_due() stays out
    cdef bint rescuing            # inside send_due(): its sends keep the GIL, so no loop call starts inside
    cdef readonly int batch
    cdef readonly bint fast_path
    cdef readonly bint capture
    cdef readonly bint rx_clock
    # Read by the daemon once per wake-up without building a dict (docs/costs.md#receive-dwell): datagrams
    # read from every rx socket, and the slots in master mode (the advert watchdog sleeps without any).
    cdef readonly unsigned long long rx_datagrams
    cdef readonly int masters
    cdef mmsghdr *rmsgs
    cdef iovec *riov
    cdef uint8_t *rbuf
    cdef uint8_t *rctl
    cdef sockaddr_in6 *rnames
    cdef mmsghdr *smsgs
    cdef iovec *siov
    cdef list _sent
    cdef dict _ktabs              # rx -> the buffer its ktab points into (kept exported while in use)
    cdef int64_t koffset_us       # the time namespace's CLOCK_MONOTONIC offset (set_kernel_table)

    def __cinit__(self, int max_slots=4096, int batch=64, bint fast_path=True, bint capture=False,
                  int max_sockets=256, bint rx_clock=False):
        if max_slots < 1 or batch < 1 or batch > 1024 or max_sockets < 1:
            raise ValueError("max_slots >= 1, 1 <= batch <= 1024, max_sockets >= 1")
        self.max_slots = max_slots
        self.max_sockets = max_sockets
        self.batch = batch
        self.fast_path = fast_path
        self.capture = capture
        # rx_clock: a batch read from a socket is timed by CLOCK_MONOTONIC read after recvmmsg returned (never
        # earlier than the caller's now_us), so a loop held between reading the clock and reading the socket
        # (a stall, a long callback) still counts the adverts it finds as heard when it reads them.
        self.rx_clock = rx_clock
        self._sent = []
        self._ktabs = {}
        self.slots = <Slot *>calloc(max_slots, sizeof(Slot))
        self.rxs = <RxSock *>calloc(max_sockets, sizeof(RxSock))
        self.txs = <TxSock *>calloc(max_sockets, sizeof(TxSock))
        self.demux = <int32_t *>malloc(max_sockets * 256 * sizeof(int32_t))
        self.hk = <int64_t *>malloc(max_slots * sizeof(int64_t))
        self.hs = <int32_t *>malloc(max_slots * sizeof(int32_t))
        self.dfs = <int32_t *>malloc(max_slots * sizeof(int32_t))
        self.rmsgs = <mmsghdr *>calloc(batch, sizeof(mmsghdr))
        self.riov = <iovec *>calloc(batch, sizeof(iovec))
        self.rbuf = <uint8_t *>malloc(batch * RXBUF)
        self.rctl = <uint8_t *>malloc(batch * CMSGBUF)
        self.rnames = <sockaddr_in6 *>calloc(batch, sizeof(sockaddr_in6))
        self.smsgs = <mmsghdr *>calloc(SEND_CHUNK, sizeof(mmsghdr))
        self.siov = <iovec *>calloc(SEND_CHUNK, sizeof(iovec))
        if (self.slots == NULL or self.rxs == NULL or self.txs == NULL or self.demux == NULL
                or self.hk == NULL or self.hs == NULL or self.dfs == NULL
                or self.rmsgs == NULL or self.riov == NULL or self.rbuf == NULL
                or self.rctl == NULL or self.rnames == NULL or self.smsgs == NULL or self.siov == NULL):
            raise MemoryError()
        cdef int i
        for i in range(max_sockets * 256):
            self.demux[i] = -1
        for i in range(max_slots):
            self.slots[i].hpos = -1
            self.slots[i].deadline_us = -1
        for i in range(batch):
            self.riov[i].iov_base = self.rbuf + i * RXBUF
            self.riov[i].iov_len = RXBUF
            self.rmsgs[i].msg_hdr.msg_iov = &self.riov[i]
            self.rmsgs[i].msg_hdr.msg_iovlen = 1
            self.rmsgs[i].msg_hdr.msg_name = &self.rnames[i]
            self.rmsgs[i].msg_hdr.msg_control = self.rctl + i * CMSGBUF
        for i in range(SEND_CHUNK):
            self.smsgs[i].msg_hdr.msg_iov = &self.siov[i]
            self.smsgs[i].msg_hdr.msg_iovlen = 1

    def __dealloc__(self):
        cdef int i
        if self.slots != NULL:
            for i in range(self.nslots_hint):
                if self.slots[i].used and self.slots[i].kent != NULL:
                    _kernel_off(&self.slots[i])  # the filter stops absorbing for an engine that is gone
        if self.txs != NULL:
            for i in range(self.ntx):
                self._drop_queue(i)
                free(self.txs[i].q)
        if self.slots != NULL:
            for i in range(self.nslots_hint):
                self._free_slot_mem(i)
        if self.rxs != NULL:
            for i in range(self.nrx):
                free(self.rxs[i].own)
        free(self.slots)
        free(self.rxs)
        free(self.txs)
        free(self.demux)
        free(self.hk)
        free(self.hs)
        free(self.ck)
        free(self.cs)
        free(self.dfs)
        free(self.rmsgs)
        free(self.riov)
        free(self.rbuf)
        free(self.rctl)
        free(self.rnames)
        free(self.smsgs)
        free(self.siov)

    # --- sockets ---
    def add_rx_socket(self, int fd, family, bint check_ttl=True, int policy=0, own=()):
        """Register a raw VRRP receive socket (non-blocking; the caller keeps it open). `own`: our addresses
        on that link, whose packets are dropped as R_OWN. Returns the rx id."""
        cdef int alen = _alen_of(family)
        if self.nrx >= self.max_sockets:
            raise ValueError("too many rx sockets (max_sockets)")
        own = [bytes(a) for a in own]
        for a in own:
            if len(a) != alen:
                raise ValueError(f"own address {a!r} is not {alen} bytes")
        cdef RxSock *r = &self.rxs[self.nrx]
        memset(r, 0, sizeof(RxSock))
        r.fd = fd
        r.alen = alen
        r.check_ttl = check_ttl
        r.policy = policy
        self._set_addrs(&r.own, &r.nown, own, alen)
        self.nrx += 1
        return self.nrx - 1

    def set_own(self, int rx, own):
        """Replace the own-address list of an rx socket (addresses come and go)."""
        self._check_rx(rx)
        cdef RxSock *r = &self.rxs[rx]
        own = [bytes(a) for a in own]
        for a in own:
            if len(a) != r.alen:
                raise ValueError(f"own address {a!r} is not {r.alen} bytes")
        free(r.own)
        r.own = NULL
        self._set_addrs(&r.own, &r.nown, own, r.alen)

    def add_tx_socket(self, int fd, family):
        """Register a send socket (the caller keeps it open). Returns the tx id."""
        cdef int alen = _alen_of(family)
        if self.ntx >= self.max_sockets:
            raise ValueError("too many tx sockets (max_sockets)")
        cdef TxSock *t = &self.txs[self.ntx]
        memset(t, 0, sizeof(TxSock))
        t.fd = fd
        t.alen = alen
        self.ntx += 1
        return self.ntx - 1

    cdef int _set_addrs(self, uint8_t **dst, int32_t *n, list addrs, int alen) except -1:
        cdef int i
        n[0] = 0
        dst[0] = NULL
        if not addrs:
            return 0
        dst[0] = <uint8_t *>malloc(len(addrs) * alen)
        if dst[0] == NULL:
            raise MemoryError()
        for i in range(len(addrs)):
            memcpy(dst[0] + i * alen, PyBytes_AS_STRING(addrs[i]), alen)
        n[0] = len(addrs)
        return 0

    cdef int _check_rx(self, int rx) except -1:
        if rx < 0 or rx >= self.nrx:
            raise ValueError(f"no rx socket {rx}")
        return 0

    cdef int _check_tx(self, int tx) except -1:
        if tx < 0 or tx >= self.ntx:
            raise ValueError(f"no tx socket {tx}")
        return 0

    cdef Slot *_slot(self, int s) except NULL:
        if s < 0 or s >= self.max_slots or not self.slots[s].used:
            raise ValueError(f"no slot {s}")
        return &self.slots[s]

    # --- slots ---
    def add_slot(self, int rx, int vrid, int version, int auth_type=0, auth_data=b"", peers=None):
        """A VRRP instance listening on rx for vrid. peers: the unicast sources accepted (None = multicast).
        Returns the slot id. The slot starts idle with no deadline."""
        self._check_rx(rx)
        cdef RxSock *r = &self.rxs[rx]
        if not 1 <= vrid <= 255:
            raise ValueError("vrid must be 1..255")  # RFC 5798 5.2.3
        if version not in (2, 3) or (version == 2 and r.alen != 4):
            raise ValueError("version must be 3, or 2 on IPv4")  # RFC 3768 is IPv4 only
        if self.demux[rx * 256 + vrid] >= 0:
            raise ValueError(f"vrid {vrid} already has slot {self.demux[rx * 256 + vrid]} on rx {rx}")
        auth_data = bytes(auth_data)
        if len(auth_data) > 8:
            raise ValueError("auth_data is at most 8 bytes")
        plist = [bytes(p) for p in (peers or ())]
        for p in plist:
            if len(p) != r.alen:
                raise ValueError(f"peer {p!r} is not {r.alen} bytes")
        cdef int s = 0
        while s < self.max_slots and self.slots[s].used:
            s += 1
        if s == self.max_slots:
            raise ValueError("no free slot (max_slots)")
        cdef Slot *sl = &self.slots[s]
        memset(sl, 0, sizeof(Slot))
        sl.used = True
        sl.rx = rx
        sl.tx = -1
        sl.vrid = vrid
        sl.version = version
        sl.alen = r.alen
        sl.mode = MODE_IDLE
        sl.auth_type = auth_type
        # RFC 2338 5.3.6: the password is zero-padded to 8 bytes.
        memcpy(sl.auth_data, PyBytes_AS_STRING(auth_data), len(auth_data))
        sl.deadline_us = -1
        sl.hpos = -1
        sl.copies = 1
        sl.copy_at_us = -1
        self._set_addrs(&sl.peers, &sl.npeers, plist, r.alen)
        self.demux[rx * 256 + vrid] = s
        if s >= self.nslots_hint:
            self.nslots_hint = s + 1
        return s

    def remove_slot(self, int s):
        """Forget a slot. Adverts it already queued still go out at the next flush."""
        cdef Slot *sl = self._slot(s)
        self._set_deadline(s, -1)
        self._set_mode(sl, MODE_IDLE)
        sl.copy_at_us = -1
        self._detach_queued(s)
        self._free_slot_mem(s)
        self.demux[sl.rx * 256 + sl.vrid] = -1
        sl.used = False

    cdef void _free_slot_mem(self, int s) noexcept:
        cdef Slot *sl = &self.slots[s]
        cdef int i
        for i in range(sl.nout):
            free(sl.outs[i].msg)
        free(sl.outs)
        sl.outs = NULL
        sl.nout = 0
        free(sl.peers)
        sl.peers = NULL
        sl.npeers = 0

    cdef int _detach_queued(self, int s) except -1:
        # Queued items point into the slot's Out array: give them their own copy before it changes.
        cdef int t, i
        cdef QItem *q
        cdef Out *o
        for t in range(self.ntx):
            for i in range(self.txs[t].qn):
                q = &self.txs[t].q[i]
                if q.slot == s and not q.owned:
                    o = _copy_out(q.out)
                    if o == NULL:
                        raise MemoryError()
                    q.out = o
                    q.owned = True
        return 0

    def set_adverts(self, int s, int tx, adverts):
        """What slot s sends: [(dest_packed, ifindex, msg_bytes), ...], one per unicast peer or one multicast.
        ifindex is the IPv6 scope (sin6_scope_id); IPv4 leaves the interface to the socket
        (IP_MULTICAST_IF)."""
        cdef Slot *sl = self._slot(s)
        self._check_tx(tx)
        cdef TxSock *t = &self.txs[tx]
        items = [(bytes(d), int(ifx), bytes(m)) for d, ifx, m in adverts]
        for d, _ifx, _m in items:
            if len(d) != t.alen:
                raise ValueError(f"destination {d!r} does not match tx socket {tx}'s family")
        cdef Out *outs = NULL
        cdef int i
        if items:
            outs = <Out *>calloc(len(items), sizeof(Out))
            if outs == NULL:
                raise MemoryError()
            for i in range(len(items)):
                d, ifx, m = items[i]
                if _fill_out(&outs[i], d, ifx, m) < 0:
                    for j in range(i):
                        free(outs[j].msg)
                    free(outs)
                    raise MemoryError()
        self._detach_queued(s)  # (no call below lets go of the GIL: send_due() cannot step in)
        for i in range(sl.nout):
            free(sl.outs[i].msg)
        free(sl.outs)
        sl.outs = outs
        sl.nout = len(items)
        sl.tx = tx

    def master(self, int s, long long interval_us, long long next_us):
        """Fast path: s sends its adverts at next_us and every interval_us after (RFC 5798 6.4.3).
        Without the fast path this is timer(s, next_us)."""
        cdef Slot *sl = self._slot(s)
        if interval_us <= 0:
            raise ValueError("interval_us must be > 0")
        sl.interval_us = interval_us
        self._set_mode(sl, MODE_MASTER if self.fast_path else MODE_IDLE)
        self._set_deadline(s, next_us)

    def backup(self, int s, src, int prio, int adver_int_ms, long long down_us, long long deadline_us):
        """Fast path: while the master at src keeps advertising prio and adver_int_ms, each of its adverts
        pushes the deadline to now + down_us (RFC 5798 6.4.2).
        Without the fast path: timer(s, deadline_us)."""
        cdef Slot *sl = self._slot(s)
        src = bytes(src)
        if len(src) != sl.alen:
            raise ValueError(f"master source must be {sl.alen} bytes")
        if not 1 <= prio <= 255:
            raise ValueError("prio must be 1..255")  # priority 0 always goes to Python (RFC 5798 6.4.2)
        if down_us <= 0 or adver_int_ms <= 0:
            raise ValueError("down_us and adver_int_ms must be > 0")
        memcpy(sl.master_src, PyBytes_AS_STRING(src), sl.alen)
        sl.master_prio = prio
        sl.master_adver_int_ms = adver_int_ms
        sl.down_us = down_us
        self._set_mode(sl, MODE_BACKUP if self.fast_path else MODE_IDLE)
        self._set_deadline(s, deadline_us)

    def timer(self, int s, long long deadline_us):
        """A deadline owned by Python (-1 = none): firing it is an EV_TIMER; the slot is idle
        (no fast path)."""
        cdef Slot *sl = self._slot(s)
        self._set_mode(sl, MODE_IDLE)
        self._set_deadline(s, deadline_us)

    cdef inline void _set_mode(self, Slot *sl, uint8_t mode) noexcept nogil:
        self.masters += (mode == MODE_MASTER) - (sl.mode == MODE_MASTER)
        sl.mode = mode
        if sl.kent != NULL:
            _kernel_off(sl)  # any new mode (or master: backup()) is learnt again from the adverts read

    # --- the kernel fast path (io/kfilter.py, docs/costs.md#kernel-fast-path) ---
    def set_kernel_table(self, int rx, table, long long clock_offset_ns=0):
        """Let the eBPF filter on IPv4 socket rx absorb the adverts of the masters its backups follow:
        `table` is the filter's map, mapped writable (KT_ENTRIES entries of KT_ENTRY bytes). A backup's
        entry is written when its fast path absorbs an advert read from the socket, and turned off when the
        slot leaves that state; the time the filter stores pushes the slot's deadline as a read advert
        would. clock_offset_ns: what this process's CLOCK_MONOTONIC is ahead of the host's, whose time the
        filter stores (a time namespace's offset, io/kfilter.py). None: stop using the table (before the
        caller unmaps it)."""
        self._check_rx(rx)
        cdef RxSock *r = &self.rxs[rx]
        cdef unsigned char[::1] view
        cdef int s
        for s in range(self.nslots_hint):
            if self.slots[s].used and self.slots[s].rx == rx and self.slots[s].kent != NULL:
                _kernel_off(&self.slots[s])
        r.ktab = NULL
        self._ktabs.pop(rx, None)
        if table is None:
            return
        if r.alen != 4:
            raise ValueError("the kernel fast path is for IPv4 sockets")
        view = table
        if view.shape[0] < KT_ENTRY * KT_ENTRIES:
            raise ValueError(f"the table needs {KT_ENTRY * KT_ENTRIES} bytes")
        self._ktabs[rx] = view
        self.koffset_us = clock_offset_ns // 1000
        r.ktab = &view[0]

    def deadline(self, int s):
        """The slot's current deadline in us (after fast-path pushes and re-arms), -1 if none."""
        cdef Slot *sl = self._slot(s)
        if sl.kent != NULL:
            _kernel_heard(sl, self.koffset_us)
        return sl.deadline_us

    def mode(self, int s):
        """'idle', 'master' or 'backup'."""
        return ("idle", "master", "backup")[self._slot(s).mode]

    def send_now(self, int s, long long now_us=-1):
        """Queue s's adverts for the next flush (S7, the S9 reply, a takeover). Does not move the deadline.
        With now_us, the slot's advert copies follow at now_us + delay ... (set_copies)."""
        self._slot(s)
        self._queue_slot(s)
        if now_us >= 0:
            self._arm_copies(s, now_us)

    # --- advert copies (module docstring; docs/rfc-checklist.md#advert-copies) ---
    def set_copies(self, int s, int copies, long long delay_us):
        """Send each of s's adverts `copies` times (1..255), `delay_us` apart (> 0 when copies > 1)."""
        cdef Slot *sl = self._slot(s)
        if not 1 <= copies <= 255 or (copies > 1 and delay_us <= 0):
            raise ValueError("copies must be 1..255 and delay_us > 0 with copies > 1")
        sl.copies = copies
        sl.copy_delay_us = delay_us
        if copies == 1:
            sl.copy_at_us = -1

    def cancel_copies(self, int s):
        """Drop the copies still to send (the instance left MASTER)."""
        self._slot(s).copy_at_us = -1

    cdef int _arm_copies(self, int s, int64_t base) except -1:
        # The advert just queued at `base`: its copies go at base + delay, base + 2 delay ...
        cdef Slot *sl = &self.slots[s]
        if sl.copies <= 1 or sl.tx < 0 or sl.nout == 0:
            return 0
        sl.copies_left = sl.copies - 1
        sl.copy_at_us = base + sl.copy_delay_us
        return self._copy_push(sl.copy_at_us, s)

    cdef int _copy_push(self, int64_t k, int32_t s) except -1:
        cdef int i = self.cn, p
        cdef int32_t cap
        cdef int64_t *nk
        cdef int32_t *ns
        if self.cn == self.ccap:
            cap = self.ccap * 2 if self.ccap else 64
            nk = <int64_t *>realloc(self.ck, cap * sizeof(int64_t))
            if nk == NULL:
                raise MemoryError()
            self.ck = nk
            ns = <int32_t *>realloc(self.cs, cap * sizeof(int32_t))
            if ns == NULL:
                raise MemoryError()
            self.cs = ns
            self.ccap = cap
        self.cn += 1
        while i > 0:
            p = (i - 1) >> 1
            if self.ck[p] <= k:
                break
            self.ck[i] = self.ck[p]
            self.cs[i] = self.cs[p]
            i = p
        self.ck[i] = k
        self.cs[i] = s
        return 0

    cdef void _copy_pop(self) noexcept nogil:
        cdef int i = 0, c
        cdef int64_t k
        cdef int32_t s
        self.cn -= 1
        if self.cn == 0:
            return
        k = self.ck[self.cn]
        s = self.cs[self.cn]
        while True:
            c = 2 * i + 1
            if c >= self.cn:
                break
            if c + 1 < self.cn and self.ck[c + 1] < self.ck[c]:
                c += 1
            if self.ck[c] >= k:
                break
            self.ck[i] = self.ck[c]
            self.cs[i] = self.cs[c]
            i = c
        self.ck[i] = k
        self.cs[i] = s

    cdef int64_t _copy_next(self) noexcept nogil:
        # The earliest copy still wanted, -1 if none. An entry is stale when its slot was removed, its
        # copies cancelled or restarted (the slot's copy_at_us is no longer the entry's key): dropped here.
        cdef Slot *sl
        while self.cn > 0:
            sl = &self.slots[self.cs[0]]
            if sl.used and sl.copy_at_us == self.ck[0]:
                return self.ck[0]
            self._copy_pop()
        return -1

    cdef int _run_copies(self, int64_t limit) except -1:
        # Queue every copy due by limit (returns how many); the next copy of one advert is one delay later.
        cdef int32_t s, queued = 0
        cdef int64_t k = self._copy_next()
        cdef Slot *sl
        while 0 <= k <= limit:
            s = self.cs[0]
            sl = &self.slots[s]
            self._copy_pop()
            self._queue_slot(s)
            queued += 1
            sl.copies_sent += sl.nout
            sl.copies_left -= 1
            if sl.copies_left > 0:
                sl.copy_at_us = k + sl.copy_delay_us
                self._copy_push(sl.copy_at_us, s)
            else:
                sl.copy_at_us = -1
            k = self._copy_next()
        return queued

    def send_raw(self, int tx, dest, int ifindex, msg):
        """Queue one datagram (e.g. the priority-0 advert of a shutdown) for the next flush."""
        self._check_tx(tx)
        dest = bytes(dest)
        msg = bytes(msg)
        if len(dest) != self.txs[tx].alen:
            raise ValueError(f"destination {dest!r} does not match tx socket {tx}'s family")
        cdef Out *o = <Out *>calloc(1, sizeof(Out))
        if o == NULL or _fill_out(o, dest, ifindex, msg) < 0:
            free(o)
            raise MemoryError()
        if self._enqueue(tx, o, -1, True) < 0:
            free(o.msg)
            free(o)
            raise MemoryError()

    # --- deadlines ---
    def next_deadline(self, long long horizon_us=INT64_MAX):
        """The earliest deadline over all slots in us, -1 if none. Exact up to horizon_us; past it the value
        may be early (a lower bound): a backup's key that its master's adverts have since pushed later is
        repaired only once it comes within the horizon (see the module docstring)."""
        self._fix_top(horizon_us)
        cdef int64_t c = self._copy_next() if self.cn > 0 else -1
        if self.hn > 0 and (c < 0 or self.hk[0] < c):
            return self.hk[0]
        return c

    def run(self, long long now_us, bint drain=True):
        """Fire every deadline due by now_us + 0.5 ms. Master slots on the fast path queue their adverts and
        re-arm; every other fire clears the slot's deadline, idles it and returns
        (EV_TIMER, slot, deadline_us) in deadline order.

        Before the first non-master deadline is acted on, every open rx socket is read once (drain=True):
        a backup never fires Master_Down while its master's advert waits unread (a stalled or held loop).
        The adverts read count as heard at now_us; those the fast path does not absorb come first in the
        returned list as (EV_ADVERT, slot, packet)."""
        cdef list events = []
        cdef bint was_busy = self.busy
        self.busy = True
        try:
            self._run(now_us, now_us + SLACK_US, not drain, events)
        finally:
            self.busy = was_busy
        return events

    cdef int _run(self, int64_t now_us, int64_t limit, bint drained, list events) except -1:
        cdef int64_t d
        cdef int32_t s
        cdef Slot *sl
        if self.cn > 0:
            self._run_copies(limit)  # advert copies first: the same order as when Python sends the advert
        while True:
            self._fix_top(limit)
            if self.hn == 0 or self.hk[0] > limit:
                break
            s = self.hs[0]
            sl = &self.slots[s]
            if sl.mode != MODE_MASTER and not drained:
                drained = True
                self._drain_all(now_us, events)
                continue  # the drain may have pushed this deadline (and others): look at the top again
            d = sl.deadline_us
            if sl.mode == MODE_MASTER:
                self.hk[0] = self._fire_master(s, now_us, limit)
                self._sift_down(0)
            else:
                _count_fire(sl, now_us)
                self._heap_remove(s)
                sl.deadline_us = -1
                self._set_mode(sl, MODE_IDLE)
                sl.events += 1
                events.append((EV_TIMER, s, d))
        return 0

    cdef int64_t _fire_master(self, int s, int64_t now_us, int64_t limit) except -1:
        # A master slot's deadline is due: queue its adverts and return its next deadline (stored in the slot;
        # the caller keeps the heap key).
        cdef Slot *sl = &self.slots[s]
        cdef int64_t d = sl.deadline_us, nd, k
        _count_fire(sl, now_us)
        self._queue_slot(s)
        if sl.copies > 1:
            self._arm_copies(s, now_us)
        # RFC 5798 6.4.3: re-arm Adver_Timer. When we are late, skip to the next future multiple instead of
        # sending the missed adverts in a burst.
        nd = d + sl.interval_us
        if nd <= limit:
            k = (limit - nd) // sl.interval_us + 1
            sl.skipped += k
            nd += k * sl.interval_us
        sl.deadline_us = nd
        return nd

    def send_due(self, long long now_us):
        """Send the adverts of every master slot due by now_us + 0.5 ms and flush, touching nothing else: the
        rescue path of a loop held in other work (the daemon calls it from its advert thread). A fired slot
        keeps its heap key (earlier than its new deadline: repaired lazily). Returns the number of slots
        fired, or -1 without doing anything while another engine call that may let go of the GIL (run,
        receive, feed, flush) is in progress."""
        if self.busy:
            return -1
        cdef int64_t limit = now_us + SLACK_US
        cdef int32_t top = 0, i, c, end, s, n = 0, copies = 0
        cdef Slot *sl
        self.busy = True
        self.rescuing = True
        try:
            if self.cn > 0:
                copies = self._run_copies(limit)
            if self.hn > 0:
                self.dfs[top] = 0
                top = 1
            while top > 0:
                top -= 1
                i = self.dfs[top]
                if self.hk[i] > limit:
                    continue  # keys never run later than deadlines: nothing below is due
                s = self.hs[i]
                sl = &self.slots[s]
                if sl.mode == MODE_MASTER and sl.deadline_us <= limit:
                    self._fire_master(s, now_us, limit)
                    n += 1
                c = 4 * i + 1
                end = c + 4 if c + 4 < self.hn else self.hn
                while c < end:
                    self.dfs[top] = c
                    top += 1
                    c += 1
            if n or copies:
                self.flush()
        finally:
            self.busy = False
            self.rescuing = False
        return n

    cdef inline bint _less(self, int i, int j) noexcept nogil:
        return self.hk[i] < self.hk[j] or (self.hk[i] == self.hk[j] and self.hs[i] < self.hs[j])

    cdef inline void _swap(self, int i, int j) noexcept nogil:
        cdef int64_t k = self.hk[i]
        cdef int32_t s = self.hs[i]
        self.hk[i] = self.hk[j]
        self.hs[i] = self.hs[j]
        self.hk[j] = k
        self.hs[j] = s
        self.slots[self.hs[i]].hpos = i
        self.slots[self.hs[j]].hpos = j

    cdef void _sift_up(self, int i) noexcept nogil:
        cdef int p
        while i > 0:
            p = (i - 1) >> 2
            if not self._less(i, p):
                break
            self._swap(i, p)
            i = p

    cdef void _sift_down(self, int i) noexcept nogil:
        cdef int c, m, end
        while True:
            c = 4 * i + 1
            if c >= self.hn:
                break
            m = c
            end = c + 4 if c + 4 < self.hn else self.hn
            c += 1
            while c < end:
                if self._less(c, m):
                    m = c
                c += 1
            if not self._less(m, i):
                break
            self._swap(i, m)
            i = m

    cdef void _heap_remove(self, int s) noexcept nogil:
        cdef int i = self.slots[s].hpos
        if i < 0:
            return
        self.hn -= 1
        self.slots[s].hpos = -1
        if i == self.hn:
            return
        self.hk[i] = self.hk[self.hn]
        self.hs[i] = self.hs[self.hn]
        self.slots[self.hs[i]].hpos = i
        self._sift_up(i)
        self._sift_down(self.slots[self.hs[i]].hpos)

    cdef void _set_deadline(self, int s, int64_t d) noexcept nogil:
        cdef Slot *sl = &self.slots[s]
        cdef int i
        if d < 0:
            self._heap_remove(s)
            sl.deadline_us = -1
            return
        sl.deadline_us = d
        i = sl.hpos
        if i < 0:
            i = self.hn
            self.hn += 1
            self.hk[i] = d
            self.hs[i] = s
            sl.hpos = i
            self._sift_up(i)
        elif d < self.hk[i]:
            self.hk[i] = d
            self._sift_up(i)
        # else: later than the key; repaired lazily by _fix_top (see the module docstring)

    cdef inline void _fix_top(self, int64_t horizon) noexcept nogil:
        # Repair stale keys at the top while it is within the horizon: a key is never later than its slot's
        # deadline, so a top key past the horizon means no deadline falls within it.
        cdef int64_t d
        cdef Slot *sl
        while self.hn > 0 and self.hk[0] <= horizon:
            sl = &self.slots[self.hs[0]]
            if sl.kent != NULL:
                _kernel_heard(sl, self.koffset_us)
            d = sl.deadline_us
            if d == self.hk[0]:
                return
            self.hk[0] = d
            self._sift_down(0)

    def _check_heap(self):
        """Test hook: verify the heap invariants (raises AssertionError)."""
        cdef int i, p
        for i in range(self.hn):
            assert self.slots[self.hs[i]].hpos == i
            assert self.hk[i] <= self.slots[self.hs[i]].deadline_us
            if i > 0:
                p = (i - 1) >> 2
                assert not self._less(i, p), (i, p)
        n = 0
        for i in range(self.nslots_hint):
            if self.slots[i].used and self.slots[i].deadline_us >= 0:
                n += 1
                assert self.slots[i].hpos >= 0
        assert n == self.hn

    # --- receive ---
    cdef int _handle(self, int rx, const uint8_t *pkt, Py_ssize_t n, const uint8_t *src6, const uint8_t *dst6,
                     int hoplimit, int64_t now, list events) except -1:
        cdef RxSock *r = &self.rxs[rx]
        cdef Advert adv
        cdef int reason, i, alen = r.alen
        cdef int32_t s
        cdef Slot *sl
        if alen == 4:
            reason = parse_ipv4(pkt, n, r.check_ttl, r.policy, &adv)
        else:
            reason = parse_ipv6(pkt, n, src6, dst6, hoplimit, r.check_ttl, &adv)
        if reason != R_OK:
            r.drops[reason if 0 < reason < NDROPS else R_LENGTH] += 1
            return 0
        for i in range(r.nown):
            if memcmp(adv.src, r.own + i * alen, alen) == 0:
                r.drops[<int>R_OWN] += 1  # our own advert looped back (another socket on the same link)
                return 0
        s = self.demux[rx * 256 + adv.vrid]
        if s < 0:
            r.drops[<int>R_NO_INSTANCE] += 1  # RFC 5798 7.1: VRID not configured on this interface
            return 0
        sl = &self.slots[s]
        if adv.version != sl.version:
            r.drops[<int>R_VERSION_MISMATCH] += 1  # RFC 5798 7.1 / RFC 3768 7.1: version must match ours
            return 0
        if sl.version == 2 and (adv.auth_type != sl.auth_type or (
                sl.auth_type == 1 and memcmp(adv.auth_data, sl.auth_data, 8) != 0)):
            r.drops[<int>R_AUTH_MISMATCH] += 1  # RFC 3768 7.1 / RFC 2338 5.3.6.1: auth type and password
            return 0
        if sl.npeers > 0:
            for i in range(sl.npeers):
                if memcmp(adv.src, sl.peers + i * alen, alen) == 0:
                    break
            else:
                r.drops[<int>R_PEER] += 1  # unicast: only configured peers (keepalived check_unicast_src)
                return 0
        if (sl.mode == MODE_BACKUP and adv.priority == sl.master_prio and adv.priority != 0
                and adv.adver_int_ms == sl.master_adver_int_ms and memcmp(adv.src, sl.master_src, alen) == 0):
            # RFC 5798 6.4.2: the current master, unchanged: reset Master_Down_Timer, nothing else changes.
            sl.deadline_us = now + sl.down_us
            if sl.kent != NULL:
                _kernel_heard(sl, self.koffset_us)  # never earlier than an absorbed advert set it
            if sl.hpos < 0:
                self._set_deadline(s, sl.deadline_us)
            sl.rx_fast += 1
            if r.ktab != NULL:
                _kernel_learn(sl, r.ktab + <int>sl.vrid * KT_ENTRY, pkt, n)
            return 0
        sl.events += 1
        events.append((EV_ADVERT, s, make_packet(&adv, R_OK)))
        return 0

    def receive(self, int rx, long long now_us, int max_events=0):
        """Drain rx with recvmmsg (MSG_DONTWAIT) and run every datagram through the receive path.
        Returns [(EV_ADVERT, slot, _wire.Packet), ...]. Raises OSError only for real socket errors.
        max_events > 0: stop reading after the batch that brought the events to that many (the rest waits
        in the socket), so Python settles those - a backup starting to follow its master goes on the fast
        path - before a backlog of the same adverts is read."""
        self._check_rx(rx)
        cdef list events = []
        cdef bint was_busy = self.busy
        self.busy = True
        try:
            e = self._recv(rx, now_us, events, max_events)
        finally:
            self.busy = was_busy
        if e != 0:
            raise OSError(e, _os.strerror(e))
        return events

    def close_rx(self, int rx):
        """The caller is closing rx's socket: never read it again (run() drains every open rx socket)."""
        self._check_rx(rx)
        self.set_kernel_table(rx, None)
        self._read_overflow(rx)  # the socket's last count of kernel drops stays in the counters
        self.rxs[rx].fd = -1

    cdef void _read_overflow(self, int rx) noexcept:
        # rx_overflow: the kernel's count of datagrams it dropped on this socket for want of buffer space
        # (sk_drops, from SO_MEMINFO), read when the counters are asked for rather than carried by every
        # datagram (docs/kernel-notes.md#receive-overflow-count).
        cdef RxSock *r = &self.rxs[rx]
        cdef uint32_t mem[SK_MEMINFO_VARS_]
        cdef socklen_t n = sizeof(mem)
        if r.fd < 0:
            return
        memset(mem, 0, sizeof(mem))
        if getsockopt(r.fd, SOL_SOCKET_, SO_MEMINFO_, mem, &n) == 0 and n > SK_MEMINFO_DROPS_ * 4:
            if mem[SK_MEMINFO_DROPS_] > r.drops[<int>R_RX_OVERFLOW]:
                r.drops[<int>R_RX_OVERFLOW] = mem[SK_MEMINFO_DROPS_]

    cdef int _recv(self, int rx, int64_t now_us, list events, int max_events) except -1:
        # Read rx until the kernel has nothing more (or a short batch). Returns 0, or the errno of a real
        # socket error (EAGAIN and EINTR are not errors).
        cdef RxSock *r = &self.rxs[rx]
        cdef int fd = r.fd, batch = self.batch, got, i, e, hop
        cdef timespec ts
        cdef int64_t t
        cdef mmsghdr *m
        cdef cmsghdr *c
        cdef in6_pktinfo pi
        cdef uint8_t dst[16]
        if fd < 0:
            return 0
        while True:
            for i in range(batch):
                # IPv4 datagrams carry their IP header (the source is read there): no address to copy out
                self.rmsgs[i].msg_hdr.msg_name = NULL if r.alen == 4 else &self.rnames[i]
                self.rmsgs[i].msg_hdr.msg_namelen = 0 if r.alen == 4 else sizeof(sockaddr_in6)
                # IPv4 asks for no cmsg at all (the kernel then skips its per-datagram cmsg work)
                self.rmsgs[i].msg_hdr.msg_controllen = 0 if r.alen == 4 else CMSGBUF
                self.rmsgs[i].msg_hdr.msg_flags = 0
            with nogil:
                got = recvmmsg(fd, self.rmsgs, batch, MSG_DONTWAIT, NULL)
            if got < 0:
                e = errno
                if e == EAGAIN:  # == EWOULDBLOCK on Linux
                    return 0
                if e == EINTR:
                    continue
                return e
            if got == 0:
                return 0
            if self.rx_clock:
                clock_gettime(CLOCK_MONOTONIC, &ts)
                t = <int64_t>ts.tv_sec * 1000000 + ts.tv_nsec // 1000
                if t > now_us:
                    now_us = t
            r.batches += 1
            r.datagrams += got
            self.rx_datagrams += got
            for i in range(got):
                m = &self.rmsgs[i]
                # IPv6 raw sockets deliver no IP header: hop limit and destination come from cmsgs.
                hop = -1
                memset(dst, 0, 16)
                c = CMSG_FIRSTHDR(&m.msg_hdr) if m.msg_hdr.msg_controllen > 0 else NULL
                while c != NULL:
                    if c.cmsg_level == IPPROTO_IPV6:
                        if c.cmsg_type == IPV6_HOPLIMIT:
                            memcpy(&hop, CMSG_DATA(c), sizeof(int))
                        elif c.cmsg_type == IPV6_PKTINFO:
                            memcpy(&pi, CMSG_DATA(c), sizeof(in6_pktinfo))
                            memcpy(dst, pi.ipi6_addr.s6_addr, 16)
                    c = CMSG_NXTHDR(&m.msg_hdr, c)
                if m.msg_hdr.msg_flags & MSG_TRUNC:
                    r.drops[<int>R_LENGTH] += 1
                    continue
                if r.alen == 4:
                    self._handle(rx, self.rbuf + i * RXBUF, m.msg_len, NULL, NULL, -1, now_us, events)
                else:
                    self._handle(rx, self.rbuf + i * RXBUF, m.msg_len, self.rnames[i].sin6_addr.s6_addr,
                                 dst, hop, now_us, events)
            if got < batch:
                return 0  # the queue was empty when the kernel answered; add_reader wakes us for more
            if 0 < max_events <= len(events):
                return 0

    cdef int _drain_all(self, int64_t now_us, list events) except -1:
        # Before a backup's Master_Down_Timer is acted on: read what waits in every open rx socket, so an
        # advert that arrived while the loop was held (a stall, a long callback) counts as heard now.
        cdef int rx
        for rx in range(self.nrx):
            if self.rxs[rx].fd >= 0:
                self.rxs[rx].drains += 1
                self._recv(rx, now_us, events, 0)  # a socket error here is left for its own reader to report
        return 0

    def feed(self, int rx, long long now_us, packets):
        """The receive path on a list instead of recvmmsg: IPv4 rx takes whole IP packets (bytes); IPv6 rx
        takes (msg, src16, dst16, hoplimit) tuples. Counts one batch."""
        self._check_rx(rx)
        cdef list events = []
        cdef list lst = packets if type(packets) is list else list(packets)
        cdef bint was_busy = self.busy
        self.busy = True
        try:
            self._feed(rx, now_us, lst, events)
        finally:
            self.busy = was_busy
        return events

    cdef int _feed(self, int rx, int64_t now_us, list lst, list events) except -1:
        cdef RxSock *r = &self.rxs[rx]
        cdef bytes b, src, dst
        cdef object item
        r.batches += 1
        if r.alen == 4:
            for item in lst:
                b = <bytes?>item
                r.datagrams += 1
                self.rx_datagrams += 1
                self._handle(rx, <const uint8_t *>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), NULL, NULL, -1,
                             now_us, events)
        else:
            for item in lst:
                b, src, dst, hop = item
                if PyBytes_GET_SIZE(src) != 16 or PyBytes_GET_SIZE(dst) != 16:
                    raise ValueError("IPv6 src and dst must be 16 bytes")
                r.datagrams += 1
                self.rx_datagrams += 1
                self._handle(rx, <const uint8_t *>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b),
                             <const uint8_t *>PyBytes_AS_STRING(src), <const uint8_t *>PyBytes_AS_STRING(dst),
                             hop, now_us, events)
        return 0

    # --- send ---
    cdef int _enqueue(self, int tx, Out *o, int32_t s, bint owned) noexcept:
        cdef TxSock *t = &self.txs[tx]
        cdef QItem *q
        cdef int32_t cap
        if t.qn == t.qcap:
            cap = t.qcap * 2 if t.qcap else 64
            q = <QItem *>realloc(t.q, cap * sizeof(QItem))
            if q == NULL:
                return -1
            t.q = q
            t.qcap = cap
        t.q[t.qn].out = o
        t.q[t.qn].slot = s
        t.q[t.qn].owned = owned
        t.qn += 1
        return 0

    cdef int _queue_slot(self, int s) except -1:
        cdef Slot *sl = &self.slots[s]
        cdef int i
        if sl.tx < 0:
            return 0
        for i in range(sl.nout):
            if self._enqueue(sl.tx, &sl.outs[i], s, False) < 0:
                raise MemoryError()
        sl.sent += sl.nout
        return 0

    cdef void _drop_queue(self, int tx) noexcept:
        cdef TxSock *t = &self.txs[tx]
        cdef int i
        for i in range(t.qn):
            if t.q[i].owned:
                free(t.q[i].out.msg)
                free(t.q[i].out)
        t.qn = 0

    def queued(self):
        """How many datagrams wait for flush()."""
        return sum([self.txs[t].qn for t in range(self.ntx)])

    def flush(self):
        """Send everything queued: sendmmsg per tx socket (MSG_DONTWAIT). A datagram the kernel refuses is
        counted (tx_stats errors/last_errno) and skipped; only EBADF/ENOTSOCK (our bug) raise OSError.
        In capture mode nothing is sent: take_sent() returns it. Returns the number of datagrams handled."""
        cdef bint was_busy = self.busy
        self.busy = True
        try:
            return self._flush()
        finally:
            self.busy = was_busy

    cdef int _flush(self) except -1:
        cdef int t, i, base, cnt, got, e, fatal = 0
        cdef TxSock *tx
        cdef Out *o
        cdef int total = 0
        for t in range(self.ntx):
            tx = &self.txs[t]
            if tx.qn == 0:
                continue
            if self.capture:
                for i in range(tx.qn):
                    o = tx.q[i].out
                    self._sent.append((tx.q[i].slot, t, PyBytes_FromStringAndSize(<char *>o.dst, o.alen),
                                       PyBytes_FromStringAndSize(<char *>o.msg, o.len)))
                tx.sent += tx.qn
                total += tx.qn
                self._drop_queue(t)
                continue
            base = 0
            while base < tx.qn and not fatal:
                cnt = tx.qn - base if tx.qn - base < SEND_CHUNK else SEND_CHUNK
                for i in range(cnt):
                    o = tx.q[base + i].out
                    self.siov[i].iov_base = o.msg
                    self.siov[i].iov_len = o.len
                    self.smsgs[i].msg_hdr.msg_name = &o.sa
                    self.smsgs[i].msg_hdr.msg_namelen = o.salen
                    self.smsgs[i].msg_hdr.msg_control = NULL
                    self.smsgs[i].msg_hdr.msg_controllen = 0
                    self.smsgs[i].msg_hdr.msg_flags = 0
                i = 0
                while i < cnt:
                    if self.rescuing:
                        # The advert thread (send_due) keeps the GIL: a loop call started while it sends would
                        # share these buffers and queues, and restore a busy flag this call then clears.
                        got = sendmmsg(tx.fd, &self.smsgs[i], cnt - i, MSG_DONTWAIT)
                    else:
                        with nogil:
                            got = sendmmsg(tx.fd, &self.smsgs[i], cnt - i, MSG_DONTWAIT)
                    tx.calls += 1
                    if got < 0:
                        e = errno
                        if e == EINTR:
                            continue
                        if e == EBADF or e == ENOTSOCK:
                            fatal = e
                            break
                        # The first datagram was refused (ENOBUFS, EAGAIN, ENETUNREACH ...): skip it.
                        tx.errors += 1
                        tx.last_errno = e
                        i += 1
                    else:
                        tx.sent += got
                        total += got
                        i += got
                base += cnt
            self._drop_queue(t)
        if fatal:
            for t in range(self.ntx):
                self._drop_queue(t)
            raise OSError(fatal, _os.strerror(fatal))
        return total

    def take_sent(self):
        """Capture mode: [(slot, tx, dest_packed, msg), ...] flushed since the last call
        (slot -1: send_raw)."""
        out = self._sent
        self._sent = []
        return out

    # --- counters ---
    def drops(self, int rx):
        """Drops on rx by reason: a list indexed like DROP_REASONS (_wire.Reason, then rx_overflow)."""
        self._check_rx(rx)
        self._read_overflow(rx)
        return [self.rxs[rx].drops[i] for i in range(<int>R_COUNT + 1)]

    def rx_stats(self, int rx):
        self._check_rx(rx)
        self._read_overflow(rx)
        cdef RxSock *r = &self.rxs[rx]
        cdef uint64_t kernel = 0
        cdef int v
        if r.ktab != NULL:
            for v in range(KT_ENTRIES):
                kernel += (<uint64_t *>(r.ktab + v * KT_ENTRY + KT_COUNT_AT))[0]
        # datagrams: read by the daemon or absorbed by the kernel fast path (kernel)
        return {"datagrams": r.datagrams + kernel, "kernel": kernel, "batches": r.batches, "drains": r.drains,
                "dropped": sum([r.drops[i] for i in range(<int>R_COUNT + 1)])}

    def tx_stats(self, int tx):
        self._check_tx(tx)
        cdef TxSock *t = &self.txs[tx]
        return {"sent": t.sent, "errors": t.errors, "calls": t.calls, "last_errno": t.last_errno,
                "queued": t.qn}

    def slot_stats(self, int s):
        """Counters of slot s: adverts queued for sending, adverts absorbed by the fast path, events raised,
        deadline fires, late fires (> 1 ms), the max lateness in us, master intervals skipped and the advert
        copies among the adverts sent."""
        cdef Slot *sl = self._slot(s)
        cdef uint64_t kernel = 0
        if sl.kent != NULL:
            kernel = (<uint64_t *>(sl.kent + KT_COUNT_AT))[0] - sl.kseen
        return {"sent": sl.sent, "rx_fast": sl.rx_fast + kernel, "events": sl.events, "fires": sl.fires,
                "late": sl.late, "max_late_us": sl.max_late_us, "skipped": sl.skipped,
                "copies": sl.copies_sent}

    def slot_ids(self):
        """The ids of the slots in use."""
        return [i for i in range(self.nslots_hint) if self.slots[i].used]


cdef inline void _count_fire(Slot *sl, int64_t now_us) noexcept nogil:
    cdef int64_t late = now_us - sl.deadline_us
    sl.fires += 1
    if late > 0:
        if <uint64_t>late > sl.max_late_us:
            sl.max_late_us = late
        if late > LATE_US:
            sl.late += 1


cdef Out *_copy_out(const Out *src) noexcept:
    cdef Out *o = <Out *>malloc(sizeof(Out))
    if o == NULL:
        return NULL
    memcpy(o, src, sizeof(Out))
    o.msg = <uint8_t *>malloc(src.len if src.len else 1)
    if o.msg == NULL:
        free(o)
        return NULL
    memcpy(o.msg, src.msg, src.len)
    return o


cdef int _fill_out(Out *o, bytes dest, int ifindex, bytes msg) except? -1:
    cdef Py_ssize_t n = PyBytes_GET_SIZE(msg)
    cdef sockaddr_in *sin
    o.msg = <uint8_t *>malloc(n if n else 1)
    if o.msg == NULL:
        return -1
    memcpy(o.msg, PyBytes_AS_STRING(msg), n)
    o.len = n
    o.alen = PyBytes_GET_SIZE(dest)
    memcpy(o.dst, PyBytes_AS_STRING(dest), o.alen)
    memset(&o.sa, 0, sizeof(sockaddr_in6))
    if o.alen == 4:
        sin = <sockaddr_in *>&o.sa
        sin.sin_family = AF_INET
        memcpy(&sin.sin_addr, o.dst, 4)
        o.salen = sizeof(sockaddr_in)
    else:
        o.sa.sin6_family = AF_INET6
        memcpy(o.sa.sin6_addr.s6_addr, o.dst, 16)
        o.sa.sin6_scope_id = ifindex
        o.salen = sizeof(sockaddr_in6)
    return 0
