# Extern declarations of the Linux socket API that Cython's bundled .pxd files lack
# (docs/kernel-notes.md#recvmmsg-and-sendmmsg): recvmmsg/sendmmsg, mmsghdr, the cmsg macros, sockaddr_in6 and
# in6_pktinfo, getsockopt. Python.h defines _GNU_SOURCE, which glibc needs to expose mmsghdr and in6_pktinfo.
from libc.stdint cimport uint8_t, uint16_t, uint32_t


cdef extern from "<time.h>" nogil:
    struct timespec:
        long tv_sec
        long tv_nsec


cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t

    struct iovec:
        void *iov_base
        size_t iov_len

    struct sockaddr:
        sa_family_t sa_family

    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags

    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len

    struct cmsghdr:
        size_t cmsg_len
        int cmsg_level
        int cmsg_type

    cmsghdr *CMSG_FIRSTHDR(msghdr *mhdr)
    cmsghdr *CMSG_NXTHDR(msghdr *mhdr, cmsghdr *cmsg)
    unsigned char *CMSG_DATA(cmsghdr *cmsg)
    size_t CMSG_SPACE(size_t length)

    int recvmmsg(int fd, mmsghdr *msgvec, unsigned int vlen, int flags, timespec *timeout)
    int sendmmsg(int fd, mmsghdr *msgvec, unsigned int vlen, int flags)
    int getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen)

    enum:
        AF_INET
        AF_INET6
        MSG_DONTWAIT
        MSG_TRUNC
        MSG_CTRUNC


cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        uint32_t s_addr

    struct sockaddr_in:
        sa_family_t sin_family
        uint16_t sin_port
        in_addr sin_addr

    struct in6_addr:
        uint8_t s6_addr[16]

    struct sockaddr_in6:
        sa_family_t sin6_family
        uint16_t sin6_port
        uint32_t sin6_flowinfo
        in6_addr sin6_addr
        uint32_t sin6_scope_id

    struct in6_pktinfo:
        in6_addr ipi6_addr
        unsigned int ipi6_ifindex

    enum:
        IPPROTO_IP
        IPPROTO_IPV6
        IPV6_HOPLIMIT
        IPV6_PKTINFO
