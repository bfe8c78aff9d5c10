"""The weights as a safetensors file held in a JS Uint8Array (the worker downloads and
verifies them): the Python heap holds the header and the tensor being uploaded, never the
whole file. The page's weights are float16-stored (weights/half.py); each tensor is upcast
to float32 as it is read."""

from __future__ import annotations

from typing import Any, cast

from ..weights import HostTensor, check_layout, mobile_sam_layout
from ..weights.half import to_float32
from ..weights.st_header import MAX_HEADER_BYTES, header_length, parse_header


class JsSafetensors:
    """data: a JS Uint8Array; calling the object with a tensor's name reads that tensor."""

    def __init__(self, data: Any) -> None:
        self._data = data
        total = int(data.length)
        length = header_length(data.subarray(0, 8).to_bytes(), total, MAX_HEADER_BYTES)
        self._start = 8 + length
        raw = data.subarray(8, self._start).to_bytes()
        entries, _ = parse_header(raw, total - self._start)
        self.entries = {entry.name: entry for entry in entries}
        # check_layout only looks at .shape and .dtype, which header entries have too.
        check_layout(cast(dict[str, HostTensor], self.entries), mobile_sam_layout())

    def __call__(self, name: str) -> HostTensor:
        entry = self.entries[name]
        begin, end = self._start + entry.begin, self._start + entry.end
        data = self._data.subarray(begin, end).to_bytes()
        return to_float32(HostTensor(entry.dtype, entry.shape, data))
