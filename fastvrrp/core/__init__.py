"""The sans-I/O VRRP protocol core: no clock, no socket, no asyncio. Every call takes now_us
(integer monotonic microseconds)."""

from .errors import LocalProtocolError
from .instance import TRANSITIONS, Transition, VrrpInstance
from .timers import master_down_interval_us, skew_us
from .types import (
    Action,
    AddAddresses,
    Advert,
    Announce,
    InstanceParams,
    RemoveAddresses,
    SendAdvert,
    State,
    StateChanged,
    Stats,
)

__all__ = [
    "TRANSITIONS",
    "Action",
    "AddAddresses",
    "Advert",
    "Announce",
    "InstanceParams",
    "LocalProtocolError",
    "RemoveAddresses",
    "SendAdvert",
    "State",
    "StateChanged",
    "Stats",
    "Transition",
    "VrrpInstance",
    "master_down_interval_us",
    "skew_us",
]
