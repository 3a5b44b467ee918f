"""The I/O layer: raw VRRP sockets, netlink (addresses, link events), GARP/NA announcements, sysctls,
and the kernel plumbing the trackers use (inotify, the process events connector).

Everything here is usable from a uvloop event loop: nothing blocks the loop thread for long, and pyroute2 is
only used the ways verified in docs/kernel-notes.md#uvloop-and-pyroute2 (a one-thread executor owning an
`IPRoute`, an `IPRSocket` registered with `add_reader`, and pre-encoded netlink batches on a raw socket).
"""
