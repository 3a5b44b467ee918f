"""The sans-I/O VRRP protocol core: no clock, no socket, no asyncio. Every call takes now_ms."""
