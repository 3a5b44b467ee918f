"""The vocabulary of the protocol core: states, configuration, received adverts and actions.

Configured and advertised intervals are integer milliseconds (`_ms`: what keepalived.conf and the codec give);
the instance converts them once and keeps every time in integer microseconds (`_us`, `now_us`). Addresses are
packed bytes (4 or 16). Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class State(IntEnum):
    """Instance states; the values are what the Prometheus state gauge exports."""

    INIT = 0
    BACKUP = 1
    MASTER = 2
    FAULT = 3


@dataclass(frozen=True, slots=True)
class InstanceParams:
    """What the core needs to know about one VRRP instance (a subset of a vrrp_instance block)."""

    name: str
    vrid: int
    priority: int = 100  # configured base priority; 255 = address owner
    version: int = 3
    family: int = 4
    adver_int_ms: int = 1000  # v3: a multiple of 10 ms (centiseconds); v2: a multiple of 1000 ms
    preempt: bool = True
    preempt_delay_ms: int = 0  # keepalived extension
    start_master: bool = False  # keepalived `state MASTER`
    primary_ip: bytes = b"\0\0\0\0"  # our source address, for the equal-priority tie-break (RFC 5798 6.4.3)
    addresses: tuple[bytes, ...] = ()  # VIPs carried in adverts
    auth_type: int = 0  # v2 only: 0 none, 1 simple password
    auth_data: bytes = b""
    lower_prio_no_advert: bool = False  # keepalived: do not answer a lower-priority advert (pre-RFC 9568)
    higher_prio_send_advert: bool = False  # keepalived: send one advert before yielding to a higher priority
    s9_reply_min_ms: int = 0  # the least time between two RFC 9568 S9 replies; 0 = one Adver_Interval
    # Emit HeardLowerPriority: keepalived notify_master_rx_lower_pri, or garp_lower_prio_repeat.
    notify_lower_prio: bool = False
    skip_check_adv_addr: bool = False  # keepalived: no address-list check on adverts from the current master
    down_timer_adverts: int = 3  # keepalived: adverts missed before Master_Down (RFC 5798 6.1 says 3)
    owner_ignore_adverts: bool = (
        False  # keepalived: an address owner discards every advert (RFC 5798 7.1 as written)
    )


@dataclass(frozen=True, slots=True)
class Advert:
    """A received advert that passed wire validation (the codec); the core judges its meaning."""

    src: bytes
    vrid: int
    priority: int
    adver_int_ms: int
    version: int = 3
    addresses: tuple[bytes, ...] = ()
    auth_type: int = 0


# --- actions: what the driver must do, in order ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendAdvert:
    """Send one advert now with this priority (0 = resigning)."""

    priority: int


@dataclass(frozen=True, slots=True)
class AddAddresses:
    """Install the virtual addresses (and routes/rules) of the instance."""


@dataclass(frozen=True, slots=True)
class RemoveAddresses:
    """Remove the virtual addresses of the instance."""


@dataclass(frozen=True, slots=True)
class Announce:
    """Send gratuitous ARP / unsolicited NA for every VIP (the driver applies the garp_* settings)."""


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: State
    new: State
    reason: str


@dataclass(frozen=True, slots=True)
class HeardLowerPriority:
    """A master heard a lower priority (keepalived notify_master_rx_lower_pri); once per S9 interval."""

    priority: int


Action = SendAdvert | AddAddresses | RemoveAddresses | Announce | StateChanged | HeardLowerPriority


@dataclass(slots=True)
class Stats:
    """Plain integer counters, read by the metrics collector at scrape time."""

    adverts_rx: int = 0
    adverts_tx: int = 0
    priority_zero_rx: int = 0
    priority_zero_tx: int = 0
    became_master: int = 0
    became_backup: int = 0
    became_fault: int = 0
    released_master: int = 0  # left MASTER (to BACKUP, FAULT or INIT): keepalived's release_master
    interval_mismatch: int = 0
    auth_mismatch: int = 0
    address_list_mismatch: int = 0
    s9_replies: int = 0
    s9_suppressed: int = 0
    # Adverts the core discarded for their meaning (the codec already proved them valid on the wire).
    vrid_mismatch: int = 0  # RFC 5798 7.1: VRID not ours (the engine demuxes; the core checks again)
    version_mismatch: int = 0  # RFC 5798 7.1: not the configured version
    owner_discard: int = 0  # RFC 5798 7.1: we own the addresses and owner_ignore_adverts is set
    preempt_discard: int = 0  # RFC 5798 6.4.2: backup with preemption discards a lower-priority advert
    preempt_delayed: int = 0  # keepalived preempt_delay: a lower-priority advert accepted while waiting
    ignored_not_running: int = 0  # adverts received in INIT or FAULT
    lower_prio_rx: int = 0  # master heard a lower priority (RFC 5798 6.4.3, the S9 case)
    priority_changes: int = 0  # set_priority calls that changed the effective priority
    lower_master_held: int = 0  # backup: a lower second master's advert did not shorten the timer
    extra: dict[str, int] = field(default_factory=dict)
