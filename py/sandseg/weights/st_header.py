"""Strict parsing and validation of a safetensors header (the JSON after the length prefix)."""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

from .errors import SafetensorsError
from .tensor import DTYPE_SIZES

# The reference parser's cap; callers that read untrusted network input pass a smaller one.
MAX_HEADER_BYTES = 100_000_000
METADATA_KEY = "__metadata__"
_FIELDS = frozenset({"dtype", "shape", "data_offsets"})


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as declared in the header; offsets are relative to the data section."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _json_kind(value: object) -> str:
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    kinds |= {list: "an array", dict: "an object", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def _fail(message: str) -> SafetensorsError:
    return SafetensorsError(f"safetensors: {message}")


def header_length(prefix: bytes | memoryview, total_size: int, max_header_bytes: int) -> int:
    """Validate the 8-byte length prefix against the cap and the file size; return N."""
    if total_size < 8 or len(prefix) < 8:
        raise _fail(
            f"file is {total_size} bytes, smaller than the 8-byte header length prefix; "
            "it is truncated or not a safetensors file: re-download or re-export it"
        )
    (length,) = struct.unpack("<Q", prefix[:8])
    # Checked before anything else is read or allocated: the length is attacker-controlled.
    if length > max_header_bytes:
        raise _fail(
            f"header length {length} exceeds the cap of {max_header_bytes} bytes; "
            "the file is corrupt or hostile (raise max_header_bytes only for trusted files)"
        )
    if length > total_size - 8:
        raise _fail(
            f"header length {length} is beyond the end of the file ({total_size - 8} bytes "
            "follow the prefix); the file is truncated: re-download or re-export it"
        )
    return length


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _fail(f"duplicate key {key!r} in the header JSON: each name must appear once")
        result[key] = value
    return result


def _reject_constant(name: str) -> None:
    raise _fail(f"header is not valid JSON ({name} is not a JSON value): re-export the file")


def _decode_json(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(
            f"header is not valid UTF-8 (byte {exc.start}): the file is corrupt, re-export it"
        ) from None
    try:
        obj = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except SafetensorsError:
        raise
    except (ValueError, RecursionError) as exc:
        raise _fail(
            f"header is not valid JSON ({exc}): the file is corrupt, re-export it"
        ) from None
    if not isinstance(obj, dict):
        raise _fail(f"header JSON is {_json_kind(obj)}, not an object: re-export the file")
    return obj


def _is_count(value: object) -> bool:
    # JSON true/false arrive as bool, an int subclass; never accept them as numbers.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _metadata(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _fail(f"{METADATA_KEY} must be an object of strings, got {_json_kind(value)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise _fail(
                f"metadata value for {key!r} is {_json_kind(item)}, not a string: "
                "safetensors metadata maps strings to strings"
            )
    return value


def _entry(name: str, value: object) -> TensorEntry:
    if not isinstance(value, dict):
        raise _fail(f"entry for tensor {name!r} is {_json_kind(value)}, not an object")
    missing = sorted(_FIELDS - value.keys())
    if missing:
        raise _fail(f"tensor {name!r} is missing field(s) {missing}: each needs {sorted(_FIELDS)}")
    extra = sorted(value.keys() - _FIELDS)
    if extra:
        raise _fail(f"tensor {name!r} has unknown field(s) {extra}: only {sorted(_FIELDS)}")
    dtype = value["dtype"]
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        raise _fail(f"tensor {name!r} has unknown dtype {dtype!r}: use one of {list(DTYPE_SIZES)}")
    shape = value["shape"]
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise _fail(f"tensor {name!r} has a bad shape {shape!r}: use a list of ints >= 0")
    offsets = value["data_offsets"]
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_is_count, offsets)):
        raise _fail(
            f"tensor {name!r} has bad data_offsets {offsets!r}: use [begin, end], ints >= 0"
        )
    begin, end = offsets
    if begin > end:
        raise _fail(f"tensor {name!r} has reversed data_offsets [{begin}, {end}] (begin > end)")
    expected = math.prod(shape) * DTYPE_SIZES[dtype]
    if end - begin != expected:
        raise _fail(
            f"tensor {name!r} spans {end - begin} bytes but {dtype} x {tuple(shape)} needs "
            f"{expected}: size does not match dtype x shape"
        )
    return TensorEntry(name, dtype, tuple(shape), begin, end)


def _check_contiguous(entries: list[TensorEntry], data_size: int) -> None:
    position = 0
    for entry in entries:
        if entry.begin < position:
            raise _fail(
                f"tensor {entry.name!r} at [{entry.begin}, {entry.end}] overlaps the previous "
                f"tensor ending at {position}: offsets must not overlap"
            )
        if entry.begin > position:
            if position == 0:
                raise _fail(
                    f"data offsets do not start at 0 (first tensor {entry.name!r} begins at "
                    f"{entry.begin}): tensors must be packed from the start of the data"
                )
            raise _fail(
                f"gap of {entry.begin - position} bytes before tensor {entry.name!r}: "
                "tensors must be packed with no gaps"
            )
        position = entry.end
    if position < data_size:
        raise _fail(
            f"{data_size - position} trailing bytes after the last tensor: the file has "
            "extra data appended; re-export it"
        )
    if position > data_size:
        raise _fail(
            f"tensor data needs {position} bytes but only {data_size} follow the header: "
            "the data section is truncated; re-download or re-export the file"
        )


def parse_header(raw: bytes, data_size: int) -> tuple[list[TensorEntry], dict[str, str]]:
    """Parse header bytes; return entries in offset order and the metadata.

    `data_size` is the number of bytes after the header, which the tensors must fill exactly.
    """
    obj = _decode_json(raw)
    metadata = _metadata(obj.pop(METADATA_KEY)) if METADATA_KEY in obj else {}
    entries = [_entry(name, value) for name, value in obj.items()]
    # Stable sort: zero-size tensors sharing an offset keep their header order.
    entries.sort(key=lambda e: (e.begin, e.end))
    _check_contiguous(entries, data_size)
    return entries, metadata
