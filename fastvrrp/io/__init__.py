"""The I/O layer: raw VRRP sockets, netlink (addresses, link events), GARP/NA announcements, sysctls,
and the kernel plumbing the trackers use (inotify, the process events connector).

Everything here is usable from a uvloop event loop: nothing blocks the loop thread for long, and pyroute2 is
only used the way verified in docs/kernel-notes.md#uvloop-and-pyroute2 (an `IPRoute` owned by a one-thread
executor, made on first use); link and address events and the failover batches are raw netlink sockets.
"""
