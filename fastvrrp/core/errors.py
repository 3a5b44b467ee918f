"""Blame in the error type (docs/DESIGN.md#blame-in-the-error-type).

A remote fault (a peer's advert that makes no sense for us) never raises: the core drops it and counts it in
`Stats`. Only a local fault - the driver calling the core wrongly, or a bug in the core itself - raises.
"""

from __future__ import annotations


class LocalProtocolError(Exception):
    """Our side broke the contract: a bad configuration, a call out of order, or a core bug."""
