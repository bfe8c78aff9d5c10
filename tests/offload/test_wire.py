"""The offload wire format's header cap (ST-1: 1 MiB on the offload endpoint), at its boundary:
a body whose header is exactly 1 MiB is parsed, one byte more is refused by the cap before
anything else is looked at."""

from __future__ import annotations

import json
import struct

import pytest

from sandseg.offload import messages
from sandseg.offload.wire import MAX_WIRE_HEADER_BYTES, WireError

DATA = struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)


def body_with_header_of(length: int) -> bytes:
    """A valid one-tensor body ("x", F32 2x2) whose JSON header is padded to `length` bytes."""
    header = json.dumps({"x": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}})
    padded = header.encode() + b" " * (length - len(header))
    assert len(padded) == length
    return struct.pack("<Q", length) + padded + DATA


@pytest.mark.requirement("ST-1")
def test_the_offload_header_cap_is_one_mib_exactly(evidence) -> None:
    assert MAX_WIRE_HEADER_BYTES == 1 << 20
    at_cap = body_with_header_of(MAX_WIRE_HEADER_BYTES)
    assert messages.decode_tensor(at_cap, "x", (2, 2)) == DATA
    with pytest.raises(
        WireError, match=f"header length {MAX_WIRE_HEADER_BYTES + 1} exceeds the cap"
    ):
        messages.decode_tensor(body_with_header_of(MAX_WIRE_HEADER_BYTES + 1), "x", (2, 2))
    evidence(
        "ST-1", "offload header of exactly 1,048,576 bytes parsed; 1,048,577 refused by the cap"
    )
