"""Structure-aware mutations of `.pt` checkpoints: edit the zip members (the data.pkl opcodes,
the storage records, names, byteorder) and re-zip, or mutate the archive's raw bytes.
"""

from __future__ import annotations

import io
import itertools
import pickletools
import struct
import warnings
import zipfile
from collections.abc import Sequence
from random import Random

from .mutate_bytes import MAX_INPUT_BYTES, mutate_bytes

Members = list[tuple[str, bytes]]
MAX_OPCODES = 2000
COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
GLOBALS = (
    *("torch._utils\n_rebuild_tensor_v2", "torch._utils\n_rebuild_parameter"),
    *("torch._utils\n_rebuild_parameter_with_state", "collections\nOrderedDict"),
    *("torch\nFloatStorage", "torch\nLongStorage", "torch\nBoolStorage", "torch\nfloat16"),
    *("torch\nUntypedStorage", "torch.storage\nUntypedStorage", "torch\nbfloat16"),
    *("os\nsystem", "builtins\neval", "builtins\ngetattr", "torch\nTensor", "collections\ndeque"),
)
INTEGERS = (
    *(0, 1, 2, 3, 4, 8, 255, 256, 65535, 2**31 - 1, -1, -(2**31), 2**32, 2**63, 2**64),
    *(10**30, 10**5000),
)
STRINGS = ("storage", "cpu", "cuda:0", "0", "1", "model", "state_dict", "", "../x", "a" * 100)
# Single opcodes (with arguments) to insert: structure, memo, persistent ids, calls.
SNIPPETS = (
    *(b"(", b"0", b"1", b"2", b"R", b"b", b"s", b"u", b"t", b")", b"}", b"]", b"a", b"e"),
    *(b"N", b"\x88", b"\x89", b"Q", b"\x94", b"h\x00", b"h\xff", b"q\x00", b"q\x05"),
    *(b"K\x00", b"J\xff\xff\xff\xff", b"\x85", b"\x86", b"\x87", b".", b"\x93", b"l", b"d"),
    *(b"\x95\x00\x00\x00\x00\x00\x00\x00\x00", b"\x80\x05", b"X\x00\x00\x00\x00", b"C\x01a"),
)


def read_members(data: bytes) -> Members | None:
    """The archive's members in order, or None when zipfile cannot read it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [(info.filename, archive.read(info)) for info in archive.infolist()]
    except Exception:
        return None


def write_members(members: Members, compression: int = zipfile.ZIP_STORED) -> bytes:
    """A deterministic zip (fixed timestamps) of `members`, duplicates allowed."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": wanted here
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in members:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                archive.writestr(info, data, compress_type=compression)
    return buffer.getvalue()


def _opcode_spans(pkl: bytes) -> list[tuple[int, int]]:
    # The first MAX_OPCODES only: walking a deeply nested pickle each time would be slow.
    starts: list[int] = []
    try:
        for _, _, pos in itertools.islice(pickletools.genops(pkl), MAX_OPCODES):
            starts.append(pos or 0)
    except Exception:
        pass  # a broken stream still has the opcodes before the damage
    return list(zip(starts, [*starts[1:], len(pkl)], strict=False))


def _integer(value: int, rng: Random) -> bytes:
    if 0 <= value < 256 and rng.random() < 0.5:
        return b"K" + bytes([value])
    if -(2**31) <= value < 2**31 and rng.random() < 0.7:
        return b"J" + struct.pack("<i", value)
    if value.bit_length() < 64 and rng.random() < 0.2:
        return b"I" + str(value).encode() + b"\n"
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    if len(raw) < 256:
        return b"\x8a" + bytes([len(raw)]) + raw
    return b"\x8b" + struct.pack("<i", len(raw)) + raw


def _nested(rng: Random) -> bytes:
    # Deep containers: a tuple nested in tuples (NONE, TUPLE1...), or lists (EMPTY_LIST, APPEND).
    depth = rng.choice((10, 1000, 10_000))
    if rng.random() < 0.5:
        return b"N" + b"\x85" * depth
    return b"]" * depth + b"a" * (depth - 1)


def _opcode(rng: Random) -> bytes:
    choice = rng.randrange(5)
    if choice == 4:
        return _nested(rng)
    if choice == 0:
        return _integer(rng.choice(INTEGERS), rng)
    if choice == 1:
        return b"c" + rng.choice(GLOBALS).encode() + b"\n"
    if choice == 2:
        text = rng.choice(STRINGS).encode()
        return b"X" + struct.pack("<I", len(text)) + text
    return rng.choice(SNIPPETS)


def mutate_pickle(pkl: bytes, rng: Random) -> bytes:
    """Edit whole opcodes: replace, insert, delete, duplicate or move one; or flip bytes."""
    spans = _opcode_spans(pkl)
    if not spans or rng.random() < 0.15:
        return mutate_bytes(pkl, rng, [pkl])
    begin, end = rng.choice(spans)
    choice = rng.randrange(5)
    if choice == 0:
        return pkl[:begin] + _opcode(rng) + pkl[end:]
    if choice == 1:
        return pkl[:begin] + _opcode(rng) + pkl[begin:]
    if choice == 2:
        return pkl[:begin] + pkl[end:]
    if choice == 3:
        return pkl[:end] + pkl[begin:end] + pkl[end:]
    at = rng.choice(spans)[0]
    moved = pkl[:begin] + pkl[end:]
    at = min(at, len(moved))
    return moved[:at] + pkl[begin:end] + moved[at:]


def _mutate_member(name: str, data: bytes, rng: Random, pool: Sequence[bytes]) -> bytes:
    if name.endswith("data.pkl"):
        for _ in range(rng.randint(1, 3)):
            data = mutate_pickle(data, rng)
        return data
    if name.endswith("byteorder"):
        return rng.choice((b"big", b"little", b"", b"little\n", b"x" * 20))
    choice = rng.randrange(4)
    if choice == 0:
        return data[: rng.randrange(len(data) + 1)]
    if choice == 1:
        return data + bytes(rng.choice((1, 2, 4, 8)))
    return mutate_bytes(data, rng, pool)


def _rename(name: str, names: list[str], rng: Random) -> str:
    prefix, _, rest = name.partition("/")
    nested = f"{prefix}/{prefix}/{rest}"
    return rng.choice((rest, f"other/{rest}", nested, f"../{name}", rng.choice(names), name + "x"))


def mutate_members(members: Members, rng: Random, pool: Sequence[bytes]) -> Members:
    """One edit of the member list: a member's bytes, a name, or which members exist."""
    members = list(members)
    index = rng.randrange(len(members))
    name, data = members[index]
    choice = rng.randrange(8)
    if choice <= 3:
        members[index] = (name, _mutate_member(name, data, rng, pool))
    elif choice == 4:
        members[index] = (_rename(name, [n for n, _ in members], rng), data)
    elif choice == 5 and len(members) > 1:
        del members[index]
    elif choice == 6:
        members.insert(rng.randrange(len(members) + 1), (name, data))
    else:
        extra = rng.choice(("archive/data/9", "archive/byteorder", "x/data.pkl", "archive/extra"))
        members.append((extra, rng.choice((b"", b"big", data))))
    return members


def mutate_pt(data: bytes, rng: Random, pool: Sequence[bytes]) -> bytes:
    """Edit the archive's members and re-zip (mostly), or mutate its raw bytes."""
    members = read_members(data) if rng.random() < 0.8 else None
    if not members:
        return mutate_bytes(data, rng, pool)
    for _ in range(rng.randint(1, 3)):
        members = mutate_members(members, rng, pool)
    compression = zipfile.ZIP_STORED if rng.random() < 0.7 else rng.choice(COMPRESSIONS)
    out = write_members(members, compression)
    if rng.random() < 0.1:
        out = mutate_bytes(out, rng, pool)
    return out[:MAX_INPUT_BYTES]
