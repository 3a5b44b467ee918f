"""fastvrrp: a VRRP daemon for Linux load balancers with a compiled hot path."""

__version__ = "0.1.0"
