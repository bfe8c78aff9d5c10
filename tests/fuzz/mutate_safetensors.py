"""Structure-aware mutations of safetensors files: the length prefix, the JSON header, the data.

Each mutation keeps the rest of the file intact and (usually) fixes the length prefix, so that
inputs get past the first check and reach the header validation and the data layout checks.
"""

from __future__ import annotations

import copy
import json
import re
import struct
from collections.abc import Sequence
from random import Random
from typing import Any

from sandseg.weights.st_header import MAX_HEADER_BYTES, METADATA_KEY
from sandseg.weights.tensor import DTYPE_SIZES

from .mutate_bytes import MAX_INPUT_BYTES, mutate_bytes

LENGTHS = (0, 1, 2, 7, 8, 2**31, 2**32, 2**63, 2**64 - 1, MAX_HEADER_BYTES, MAX_HEADER_BYTES + 1)
DTYPES = (*DTYPE_SIZES, "F128", "f32", "", "F4", "U1", "__metadata__")
VALUES: tuple[Any, ...] = (
    *(0, 1, 2, 3, 4, 7, 8, -1, 2**31 - 1, 2**32, 2**53 + 1, 2**63, 2**64, 10**30),
    *(1.0, 0.5, -0.0, 1e308, float("inf"), float("nan"), True, False, None),
    *("", "F32", "\ud800", "\x00", [], [0], [1, 2], {}, {"a": "b"}),
)
NUMBER_TEXTS = (
    *(b"0", b"-1", b"-0", b"1.5", b"1e400", b"1E2", b"01", b"0x10", b"NaN", b"Infinity"),
    *(b"18446744073709551616", b"9" * 5000, b"true", b"null", b'"1"'),
)
STRING_TEXTS = (
    *(b'"__metadata__"', b'"dtype"', b'"shape"', b'"data_offsets"', b'"F32"', b'""'),
    *(b'"\\ud800"', b'"\\u0000"', b'"\xff"', b'"\xc3\xa9"', b'"\\x41"', b'"a'),
)
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _value(rng: Random) -> Any:
    # A fresh copy: a shared list could end up inside itself.
    return copy.deepcopy(rng.choice(VALUES))


def split(data: bytes) -> tuple[bytes, bytes]:
    """(header, data section) by the declared length, or everything after the prefix."""
    if len(data) < 8:
        return data, b""
    (length,) = struct.unpack("<Q", data[:8])
    length = min(length, len(data) - 8)
    return data[8 : 8 + length], data[8 + length :]


def join(header: bytes, rest: bytes, rng: Random) -> bytes:
    """A file from its parts; the length prefix is right nine times in ten."""
    length = len(header) if rng.random() < 0.9 else rng.choice(LENGTHS)
    return struct.pack("<Q", length) + header + rest


def _replace_match(text: bytes, pattern: re.Pattern[bytes], new: bytes, rng: Random) -> bytes:
    matches = list(pattern.finditer(text))
    if not matches:
        return text + new
    match = rng.choice(matches)
    return text[: match.start()] + new + text[match.end() :]


def _text_mutation(header: bytes, rng: Random, pool: Sequence[bytes]) -> bytes:
    choice = rng.randrange(6)
    if choice == 0:
        return _replace_match(header, _NUMBER, rng.choice(NUMBER_TEXTS), rng)
    if choice == 1:
        return _replace_match(header, _STRING, rng.choice(STRING_TEXTS), rng)
    if choice == 2:
        depth = rng.choice((10, 1000, 100_000))
        return _replace_match(header, _NUMBER, b"[" * depth + b"]" * depth, rng)
    if choice == 3:
        return rng.choice((b"\xef\xbb\xbf", b" ", b"\x00")) + header
    if choice == 4:
        return header + rng.choice((b" " * rng.randrange(1, 9), b"\x00", b"\t\r\n", b"}", b"{}"))
    return mutate_bytes(header, rng, [split(rng.choice(pool))[0]])


def _entries(obj: dict[str, Any]) -> list[str]:
    return [k for k, v in obj.items() if k != METADATA_KEY and isinstance(v, dict)]


def _edit_entry(entry: dict[str, Any], rng: Random) -> None:
    field = rng.choice(("dtype", "shape", "data_offsets", "extra"))
    value = entry.get(field)
    if field == "dtype" and rng.random() < 0.8:
        entry[field] = rng.choice(DTYPES)
    elif isinstance(value, list) and value and rng.random() < 0.8:
        index = rng.randrange(len(value))
        if isinstance(value[index], int) and rng.random() < 0.5:
            value[index] += rng.choice((-8, -4, -2, -1, 1, 2, 4, 8))
        else:
            value[index] = _value(rng)
        if rng.random() < 0.2:
            value.insert(rng.randrange(len(value) + 1), _value(rng))
        if rng.random() < 0.2:
            del value[rng.randrange(len(value))]
    elif rng.random() < 0.3:
        entry.pop(field, None)
    else:
        entry[field] = _value(rng)


def _edit_object(obj: dict[str, Any], rng: Random) -> None:
    names = _entries(obj)
    choice = rng.randrange(5)
    if names and choice <= 1:
        _edit_entry(obj[rng.choice(names)], rng)
    elif names and choice == 2:
        name = rng.choice(names)
        entry = obj.pop(name) if rng.random() < 0.5 else json.loads(json.dumps(obj[name]))
        if rng.random() < 0.7:
            obj[rng.choice((name + "_copy", "", "\ud800", METADATA_KEY, "x" * 300))] = entry
    elif choice == 3:
        metadata = obj.setdefault(METADATA_KEY, {})
        if isinstance(metadata, dict) and rng.random() < 0.8:
            metadata[rng.choice(("k", "", "format", "\x00"))] = _value(rng)
        else:
            obj[METADATA_KEY] = _value(rng)
    else:
        obj[rng.choice(("new", *names))] = _value(rng)


def _dump(obj: dict[str, Any], rng: Random) -> bytes:
    items = list(obj.items())
    # Duplicate keys cannot be built through a dict: write the pairs by hand.
    if items and rng.random() < 0.15:
        key, value = rng.choice(items)
        if isinstance(value, dict) and value and rng.random() < 0.5:
            field = rng.choice(list(value.items()))
            value = _pairs([*value.items(), field])
        items.append((key, value))
    ascii_only = rng.random() < 0.5
    text = _pairs(items, ascii_only).encode("utf-8", "surrogatepass")
    return text + b" " * (-len(text) % 8 if rng.random() < 0.5 else 0)


class _Raw(str):
    """Already-serialised JSON inside `_pairs`."""


def _pairs(items: list[tuple[str, Any]], ascii_only: bool = True) -> str:
    def value(v: Any) -> str:
        return v if isinstance(v, _Raw) else json.dumps(v, ensure_ascii=ascii_only)

    body = ",".join(f"{json.dumps(k, ensure_ascii=ascii_only)}:{value(v)}" for k, v in items)
    return _Raw("{" + body + "}")


def _structure_mutation(header: bytes, rng: Random) -> bytes | None:
    try:
        obj = json.loads(header)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    for _ in range(rng.randint(1, 3)):
        _edit_object(obj, rng)
    return _dump(obj, rng)


def _data_mutation(rest: bytes, rng: Random, pool: Sequence[bytes]) -> bytes:
    choice = rng.randrange(4)
    if choice == 0:
        return rest[: rng.randrange(len(rest) + 1)]
    if choice == 1:
        return rest + bytes(rng.choice((1, 2, 4, 8, 64)))
    if choice == 2:
        return rng.randbytes(len(rest))
    return mutate_bytes(rest, rng, pool)


def mutate_safetensors(data: bytes, rng: Random, pool: Sequence[bytes]) -> bytes:
    """One structure-aware or byte-level mutation of a safetensors input."""
    header, rest = split(data)
    choice = rng.randrange(10)
    if choice < 4:
        new = _structure_mutation(header, rng)
        out = join(new if new is not None else _text_mutation(header, rng, pool), rest, rng)
    elif choice < 6:
        out = join(_text_mutation(header, rng, pool), rest, rng)
    elif choice == 6:
        length = rng.choice(
            (*LENGTHS, max(len(header) - 1, 0), len(header) + 1, rng.randrange(1 << 16))
        )
        out = struct.pack("<Q", length) + data[8:]
    elif choice == 7:
        out = data[:8] + header + _data_mutation(rest, rng, pool)
    else:
        out = mutate_bytes(data, rng, pool)
    return out[:MAX_INPUT_BYTES]
