"""Typing stub for the compiled fastvrrp._wire (see _wire.pyx and docs/DESIGN.md "_wire")."""

from collections.abc import Iterable
from enum import IntEnum
from typing import Final

from typing_extensions import Buffer

class Reason(IntEnum):
    R_OK = 0
    R_LENGTH = 1
    R_IP = 2
    R_TTL = 3
    R_VERSION = 4
    R_TYPE = 5
    R_CHECKSUM = 6
    R_VRID = 7
    R_ADVER_INT = 8
    R_AUTH = 9
    R_NO_INSTANCE = 10
    R_VERSION_MISMATCH = 11
    R_AUTH_MISMATCH = 12
    R_INTERVAL_MISMATCH = 13
    R_OWN = 14
    R_PEER = 15
    R_FAMILY = 16
    R_COUNT = 17

class ChecksumForm(IntEnum):
    CS_NONE = 0
    CS_PSEUDO = 1
    CS_MESSAGE = 2

class ChecksumPolicy(IntEnum):
    CSP_ACCEPT_BOTH = 0
    CSP_PSEUDO_ONLY = 1
    CSP_MESSAGE_ONLY = 2

R_OK: Final = Reason.R_OK
R_LENGTH: Final = Reason.R_LENGTH
R_IP: Final = Reason.R_IP
R_TTL: Final = Reason.R_TTL
R_VERSION: Final = Reason.R_VERSION
R_TYPE: Final = Reason.R_TYPE
R_CHECKSUM: Final = Reason.R_CHECKSUM
R_VRID: Final = Reason.R_VRID
R_ADVER_INT: Final = Reason.R_ADVER_INT
R_AUTH: Final = Reason.R_AUTH
R_NO_INSTANCE: Final = Reason.R_NO_INSTANCE
R_VERSION_MISMATCH: Final = Reason.R_VERSION_MISMATCH
R_AUTH_MISMATCH: Final = Reason.R_AUTH_MISMATCH
R_INTERVAL_MISMATCH: Final = Reason.R_INTERVAL_MISMATCH
R_OWN: Final = Reason.R_OWN
R_PEER: Final = Reason.R_PEER
R_FAMILY: Final = Reason.R_FAMILY
R_COUNT: Final = Reason.R_COUNT
CS_NONE: Final = ChecksumForm.CS_NONE
CS_PSEUDO: Final = ChecksumForm.CS_PSEUDO
CS_MESSAGE: Final = ChecksumForm.CS_MESSAGE
CSP_ACCEPT_BOTH: Final = ChecksumPolicy.CSP_ACCEPT_BOTH
CSP_PSEUDO_ONLY: Final = ChecksumPolicy.CSP_PSEUDO_ONLY
CSP_MESSAGE_ONLY: Final = ChecksumPolicy.CSP_MESSAGE_ONLY

DROP_REASONS: tuple[str, ...]
PACKET_FIELDS: tuple[str, ...]

class Packet:
    """A decoded advert; made only by decode_ipv4 / decode_ipv6 (fields not reached read 0, b"", ())."""

    @property
    def family(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def type(self) -> int: ...
    @property
    def vrid(self) -> int: ...
    @property
    def priority(self) -> int: ...
    @property
    def count(self) -> int: ...
    @property
    def adver_int_ms(self) -> int: ...
    @property
    def auth_type(self) -> int: ...
    @property
    def auth_data(self) -> bytes: ...
    @property
    def ttl(self) -> int: ...
    @property
    def checksum(self) -> int: ...
    @property
    def checksum_form(self) -> str | None: ...
    @property
    def src(self) -> bytes: ...
    @property
    def dst(self) -> bytes: ...
    @property
    def addresses(self) -> tuple[bytes, ...]: ...
    @property
    def msg_len(self) -> int: ...
    @property
    def valid(self) -> bool: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def reason_code(self) -> int: ...
    @property
    def src_text(self) -> str: ...
    @property
    def dst_text(self) -> str: ...
    @property
    def address_texts(self) -> tuple[str, ...]: ...
    def as_dict(self) -> dict[str, object]: ...

def decode_ipv4(packet: Buffer, check_ttl: bool = True, policy: int = ...) -> Packet: ...
def decode_ipv6(msg: Buffer, src: bytes, dst: bytes, hoplimit: int, check_ttl: bool = True) -> Packet: ...
def checksum(data: Buffer, initial: int = 0) -> int: ...
def build_advert(
    *,
    version: int,
    family: int,
    vrid: int,
    priority: int,
    adver_int_ms: int,
    addresses: Iterable[bytes],
    src: bytes,
    dst: bytes,
    auth_type: int = 0,
    auth_data: bytes = b"",
    checksum_form: int = ...,
) -> bytes: ...

class AdvertTemplate:
    @property
    def version(self) -> int: ...
    @property
    def family(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def message(self) -> bytes: ...
    def __init__(
        self,
        *,
        version: int,
        family: int,
        vrid: int,
        priority: int,
        adver_int_ms: int,
        addresses: Iterable[bytes],
        src: bytes,
        dst: bytes,
        auth_type: int = 0,
        auth_data: bytes = b"",
        checksum_form: int = ...,
    ) -> None: ...
    def render(self, priority: int, adver_int_ms: int) -> bytes: ...
    def render_into(self, buf: Buffer, priority: int, adver_int_ms: int) -> int: ...

def vmac(vrid: int, family: int = 4) -> bytes: ...
def garp_frame(vmac: bytes, vip: bytes) -> bytes: ...
def unsolicited_na_frame(vmac: bytes, vip: bytes, router: bool = True) -> bytes: ...
