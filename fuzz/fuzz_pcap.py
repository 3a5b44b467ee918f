"""Fuzz the capture reader behind `fastvrrp decode` (fastvrrp/tools/pcap.py: classic pcap and pcapng, link
layers; fastvrrp/tools/decode.py: the IPv4 / IPv6 walk to the VRRP message, the verdict, the text and JSON
output), on the whole file as bytes.

The documented answer: records and printed lines, then at most one PcapError (a damaged file is reported
with its offset, after the intact records); nothing else may escape, since `decode` would die with a
traceback instead of printing the packets and the damage.
"""

from __future__ import annotations

import io
import json

from _harness import check, instrumented, main

with instrumented():
    from fastvrrp.tools import decode, pcap


def one(data: bytes) -> None:
    records = pcap.read_stream(io.BytesIO(data), "fuzz.pcap")
    n = 0
    try:
        for found in decode.find_vrrp(records, check_ttl=bool(len(data) & 1), policy=len(data) % 3):
            text = decode.as_text(found)
            check(isinstance(text, str) and "\n" not in text, f"one packet, one line: {text!r}")
            json.dumps(decode.as_json(found, "fuzz.pcap"))
            n += 1
    except pcap.PcapError as e:
        check(str(e).startswith("fuzz.pcap: offset "), f"PcapError without the offset: {e}")


if __name__ == "__main__":
    main(one)
