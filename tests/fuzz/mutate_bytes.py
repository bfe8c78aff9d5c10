"""Format-blind byte mutations: bit flips, interesting bytes, chunk edits and splices."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from random import Random

INTERESTING_BYTES = (0x00, 0xFF, 0x7F, 0x80)
# Kept small so that every input stays fast for an honest reader.
MAX_INPUT_BYTES = 1 << 16


def _span(data: bytes, rng: Random) -> tuple[int, int]:
    begin = rng.randrange(len(data) + 1)
    return begin, min(len(data), begin + rng.choice((1, 2, 4, 8, rng.randrange(1, 257))))


def flip_bit(data: bytes, rng: Random, pool: Sequence[bytes]) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    out = bytearray(data)
    out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def set_interesting_byte(data: bytes, rng: Random, pool: Sequence[bytes]) -> bytes:
    if not data:
        return bytes([rng.choice(INTERESTING_BYTES)])
    out = bytearray(data)
    out[rng.randrange(len(out))] = rng.choice(INTERESTING_BYTES)
    return bytes(out)


def insert_chunk(data: bytes, rng: Random, pool: Sequence[bytes]) -> bytes:
    at = rng.randrange(len(data) + 1)
    size = rng.choice((1, 2, 4, 8, rng.randrange(1, 513)))
    chunk = rng.choice((bytes(size), b"\xff" * size, rng.randbytes(size)))
    return data[:at] + chunk + data[at:]


def delete_chunk(data: bytes, rng: Random, pool: Sequence[bytes]) -> bytes:
    begin, end = _span(data, rng)
    return data[:begin] + data[end:]


def duplicate_chunk(data: bytes, rng: Random, pool: Sequence[bytes]) -> bytes:
    begin, end = _span(data, rng)
    at = rng.randrange(len(data) + 1)
    return data[:at] + data[begin:end] * rng.choice((1, 2, 16)) + data[at:]


def splice(data: bytes, rng: Random, pool: Sequence[bytes]) -> bytes:
    other = rng.choice(pool)
    return data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1) :]


def truncate(data: bytes, rng: Random, pool: Sequence[bytes]) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


ByteMutator = Callable[[bytes, Random, Sequence[bytes]], bytes]
BYTE_MUTATORS: tuple[ByteMutator, ...] = (
    flip_bit,
    set_interesting_byte,
    insert_chunk,
    delete_chunk,
    duplicate_chunk,
    splice,
    truncate,
)


def mutate_bytes(data: bytes, rng: Random, pool: Sequence[bytes]) -> bytes:
    """One to four random byte-level mutations of `data`, capped at MAX_INPUT_BYTES."""
    for _ in range(rng.randint(1, 4)):
        data = rng.choice(BYTE_MUTATORS)(data, rng, pool)
    return data[:MAX_INPUT_BYTES]
