# cython: language_level=3
"""TCP connect probes in bulk: the compiled half of fastvrrp.health.tcpfast.

A TCP check is "does a connect to ip:port complete". Per probe the kernel does the handshake and, at the end,
one RST; what is left for user space is a handful of system calls. Doing them here, from C, with no socket
object, no Future and no per-socket epoll registration is most of what makes a thousand checks per second
cheap:

    socket(SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC), SO_LINGER {1, 0}, [bind(bind_ip:0)]   open_socket()
    connect() -> 0 / EINPROGRESS / an error                                               Prober.start()
    one poll() over every connect in flight, SO_ERROR of the finished ones               Prober.collect()
    close() (SO_LINGER 0: an RST, never TIME_WAIT)                                         close_fd()

The Prober keeps the connects in flight as a C array of pollfd with each one's deadline and owner; the
scheduler in fastvrrp.health.tcpfast calls collect() once per tick and gets back [(owner, errno), ...] for
the connects that finished (0: connected) or whose deadline passed (ETIMEDOUT). Sockets are closed here as
soon as their probe ends, so the number of descriptors held is the number of probes in flight.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.errno cimport EINPROGRESS, EINTR, ETIMEDOUT, errno
from libc.stdint cimport uint16_t
from libc.string cimport memcpy, memset

from fastvrrp._sys cimport AF_INET, AF_INET6, sockaddr, sockaddr_in, sockaddr_in6, socklen_t


cdef extern from "<sys/socket.h>" nogil:
    enum:
        SOCK_STREAM
        SOCK_NONBLOCK
        SOCK_CLOEXEC
        SOL_SOCKET
        SO_LINGER
        SO_ERROR

    struct linger:
        int l_onoff
        int l_linger

    int socket(int domain, int type, int protocol)
    int setsockopt(int fd, int level, int optname, const void *optval, socklen_t optlen)
    int getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen)
    int bind(int fd, const sockaddr *addr, socklen_t addrlen)
    int connect(int fd, const sockaddr *addr, socklen_t addrlen)


cdef extern from "<unistd.h>" nogil:
    int close(int fd)


cdef extern from "<arpa/inet.h>" nogil:
    uint16_t htons(uint16_t x)


cdef extern from "<poll.h>" nogil:
    ctypedef unsigned long nfds_t

    struct pollfd:
        int fd
        short events
        short revents

    enum:
        POLLOUT
        POLLERR
        POLLHUP

    int poll(pollfd *fds, nfds_t nfds, int timeout)


def sockaddr_bytes(int family, bytes packed, int port):
    """The struct sockaddr_in / sockaddr_in6 for an address (4 or 16 packed bytes, as from inet_pton) and a
    port, built once per check and handed to open_socket() / Prober.start() for every probe."""
    cdef sockaddr_in a4
    cdef sockaddr_in6 a6
    if port < 0 or port > 65535:
        raise ValueError(f"port {port} out of range")
    if family == AF_INET and len(packed) == 4:
        memset(&a4, 0, sizeof(a4))
        a4.sin_family = AF_INET
        a4.sin_port = htons(<uint16_t>port)
        memcpy(&a4.sin_addr, <const char *>packed, 4)
        return (<char *>&a4)[:sizeof(a4)]
    if family == AF_INET6 and len(packed) == 16:
        memset(&a6, 0, sizeof(a6))
        a6.sin6_family = AF_INET6
        a6.sin6_port = htons(<uint16_t>port)
        memcpy(&a6.sin6_addr, <const char *>packed, 16)
        return (<char *>&a6)[:sizeof(a6)]
    raise ValueError(f"family {family} does not take a {len(packed)}-byte address")


def open_socket(int family, bytes bind_sa=None):
    """A non-blocking TCP socket that resets on close (SO_LINGER 0), bound to bind_sa (a sockaddr_bytes
    with port 0) if given. Returns the descriptor, or -errno (nothing left open)."""
    cdef linger lg
    cdef int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
    cdef int err
    if fd < 0:
        return -errno
    lg.l_onoff = 1
    lg.l_linger = 0
    if setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) != 0:
        err = errno
        close(fd)
        return -err
    if bind_sa is not None:
        if bind(fd, <const sockaddr *><const char *>bind_sa, <socklen_t>len(bind_sa)) != 0:
            err = errno
            close(fd)
            return -err
    return fd


def close_fd(int fd):
    """Close a socket from open_socket() (with SO_LINGER 0 the kernel sends an RST if it was connected)."""
    if fd >= 0:
        close(fd)


cdef int _so_error(int fd) noexcept nogil:
    cdef int err = 0
    cdef socklen_t n = sizeof(err)
    if getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &n) != 0:
        return errno
    return err


cdef class Prober:
    """The connects in flight: a pollfd array with each one's deadline (loop time, seconds) and owner."""

    cdef pollfd *pfds
    cdef double *deadlines
    cdef list owners
    cdef Py_ssize_t n
    cdef Py_ssize_t cap
    cdef readonly unsigned long long polls  # poll() calls made (one per collect with connects in flight)

    def __cinit__(self, Py_ssize_t capacity=64):
        self.cap = max(capacity, 8)
        self.n = 0
        self.owners = []
        self.polls = 0
        self.pfds = <pollfd *>PyMem_Malloc(self.cap * sizeof(pollfd))
        self.deadlines = <double *>PyMem_Malloc(self.cap * sizeof(double))
        if self.pfds == NULL or self.deadlines == NULL:
            raise MemoryError()

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.pfds != NULL:
            for i in range(self.n):
                close(self.pfds[i].fd)
            PyMem_Free(self.pfds)
        PyMem_Free(self.deadlines)

    def __len__(self):
        return self.n

    cdef int _grow(self) except -1:
        cdef Py_ssize_t cap = self.cap * 2
        cdef pollfd *p = <pollfd *>PyMem_Realloc(self.pfds, cap * sizeof(pollfd))
        if p == NULL:
            raise MemoryError()
        self.pfds = p
        cdef double *d = <double *>PyMem_Realloc(self.deadlines, cap * sizeof(double))
        if d == NULL:
            raise MemoryError()
        self.deadlines = d
        self.cap = cap
        return 0

    def start(self, object owner, int family, bytes dest_sa, bytes bind_sa, double deadline):
        """Open a socket and connect it to dest_sa. Returns 0 if connected at once, a positive errno if the
        probe already failed (the socket is closed either way), or -1 if the connect is in flight: collect()
        reports (owner, errno) for it later."""
        cdef int fd = open_socket(family, bind_sa)
        cdef int err
        if fd < 0:
            return -fd
        if connect(fd, <const sockaddr *><const char *>dest_sa, <socklen_t>len(dest_sa)) == 0:
            close(fd)
            return 0
        err = errno
        if err != EINPROGRESS and err != EINTR:  # EINTR: the connect goes on in the background
            close(fd)
            return err
        if self.n == self.cap:
            self._grow()
        self.pfds[self.n].fd = fd
        self.pfds[self.n].events = POLLOUT
        self.pfds[self.n].revents = 0
        self.deadlines[self.n] = deadline
        self.owners.append(owner)
        self.n += 1
        return -1

    cdef void _drop(self, Py_ssize_t i):
        # swap-remove: the last entry moves into slot i (callers walk the array backwards)
        cdef Py_ssize_t last = self.n - 1
        close(self.pfds[i].fd)
        if i != last:
            self.pfds[i] = self.pfds[last]
            self.deadlines[i] = self.deadlines[last]
            self.owners[i] = self.owners[last]
        self.owners.pop()
        self.n = last

    def collect(self, double now):
        """One poll() over every connect in flight; returns [(owner, errno), ...] for those that finished
        (errno 0: connected) and for those past their deadline (ETIMEDOUT), and forgets them."""
        cdef list out = []
        cdef Py_ssize_t i
        cdef int r, err
        if self.n == 0:
            return out
        with nogil:
            r = poll(self.pfds, <nfds_t>self.n, 0)
        self.polls += 1
        if r < 0:
            r = 0  # EINTR / ENOMEM: nothing learnt this tick, the deadlines below still apply
        i = self.n - 1
        while i >= 0:
            if self.pfds[i].revents != 0:
                # POLLOUT alone: the handshake completed. POLLERR/POLLHUP: SO_ERROR says why (refused,
                # unreachable ...); 0 there means it connected and the peer already closed (a FIN).
                err = _so_error(self.pfds[i].fd) if self.pfds[i].revents & (POLLERR | POLLHUP) else 0
                out.append((self.owners[i], err))
                self._drop(i)
            elif self.deadlines[i] <= now:
                out.append((self.owners[i], ETIMEDOUT))
                self._drop(i)
            i -= 1
        return out

    def cancel(self, object owner):
        """Forget (and close) the connect in flight for owner, if any; returns whether there was one."""
        cdef Py_ssize_t i
        for i in range(self.n - 1, -1, -1):
            if self.owners[i] is owner:
                self._drop(i)
                return True
        return False

    def next_deadline(self):
        """The earliest deadline in flight (None when nothing is)."""
        cdef Py_ssize_t i
        cdef double d
        if self.n == 0:
            return None
        d = self.deadlines[0]
        for i in range(1, self.n):
            if self.deadlines[i] < d:
                d = self.deadlines[i]
        return d
