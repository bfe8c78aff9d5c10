"""Test-only writer of `torch.save`-style zip checkpoints, built from raw pickle opcodes.

It lets the tests craft valid, broken and hostile checkpoints without torch.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

from sandseg.weights import HostTensor

STORAGE_TYPES = {
    "F32": "FloatStorage",
    "F64": "DoubleStorage",
    "F16": "HalfStorage",
    "BF16": "BFloat16Storage",
    "I64": "LongStorage",
    "I32": "IntStorage",
    "I16": "ShortStorage",
    "I8": "CharStorage",
    "U8": "ByteStorage",
    "BOOL": "BoolStorage",
}


class Pickle:
    """Appends protocol-2 opcodes; every method returns self so that calls chain."""

    def __init__(self) -> None:
        self.buf = bytearray(b"\x80\x02")

    def raw(self, data: bytes) -> Pickle:
        self.buf += data
        return self

    def glob(self, module: str, name: str) -> Pickle:
        return self.raw(b"c" + f"{module}\n{name}\n".encode())

    def str(self, text: str) -> Pickle:
        data = text.encode()
        return self.raw(b"X" + struct.pack("<I", len(data)) + data)

    def int(self, value: int) -> Pickle:
        if -(2**31) <= value < 2**31:
            return self.raw(b"J" + struct.pack("<i", value))
        data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        return self.raw(b"\x8a" + bytes([len(data)]) + data)

    def bool(self, value: bool) -> Pickle:
        return self.raw(b"\x88" if value else b"\x89")

    def ints(self, values: tuple[int, ...]) -> Pickle:
        self.mark()
        for value in values:
            self.int(value)
        return self.tuple()

    def mark(self) -> Pickle:
        return self.raw(b"(")

    def tuple(self) -> Pickle:
        return self.raw(b"t")

    def empty_tuple(self) -> Pickle:
        return self.raw(b")")

    def empty_dict(self) -> Pickle:
        return self.raw(b"}")

    def reduce(self) -> Pickle:
        return self.raw(b"R")

    def setitem(self) -> Pickle:
        return self.raw(b"s")

    def ordered_dict(self) -> Pickle:
        return self.glob("collections", "OrderedDict").empty_tuple().reduce()

    def storage(self, storage_type: str, key: str, numel: int, module: str = "torch") -> Pickle:
        self.mark().str("storage").glob(module, storage_type).str(key).str("cpu").int(numel)
        return self.tuple().raw(b"Q")

    def tensor(
        self,
        storage_type: str,
        key: str,
        numel: int,
        offset: int,
        size: tuple[int, ...],
        stride: tuple[int, ...],
    ) -> Pickle:
        self.glob("torch._utils", "_rebuild_tensor_v2").mark()
        self.storage(storage_type, key, numel).int(offset).ints(size).ints(stride)
        return self.bool(False).ordered_dict().tuple().reduce()

    def stop(self) -> bytes:
        return bytes(self.buf + b".")


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def state_dict_pickle(
    tensors: dict[str, HostTensor], *, wrap: str | None = None
) -> tuple[bytes, dict[str, bytes]]:
    """Pickle `tensors` as an OrderedDict of contiguous tensors, one storage each.

    With `wrap`, the state dict is nested as {wrap: state_dict}. Returns (data.pkl, storages).
    """
    p = Pickle()
    if wrap is not None:
        p.empty_dict().str(wrap)
    p.ordered_dict()
    storages = {}
    for index, (name, tensor) in enumerate(tensors.items()):
        key = str(index)
        storages[key] = tensor.data
        p.str(name).tensor(
            STORAGE_TYPES[tensor.dtype],
            key,
            tensor.numel,
            0,
            tensor.shape,
            contiguous_strides(tensor.shape),
        ).setitem()
    if wrap is not None:
        p.setitem()
    return p.stop(), storages


def write_archive(
    path: Path,
    pkl: bytes,
    storages: dict[str, bytes],
    *,
    prefix: str = "archive",
    byteorder: bytes | None = b"little",
) -> Path:
    """Write a torch.save-style zip: <prefix>/data.pkl, data/<key>, byteorder, version."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{prefix}/data.pkl", pkl)
        if byteorder is not None:
            archive.writestr(f"{prefix}/byteorder", byteorder)
        for key, data in storages.items():
            archive.writestr(f"{prefix}/data/{key}", data)
        archive.writestr(f"{prefix}/version", b"3\n")
    return path


def write_checkpoint(
    path: Path, tensors: dict[str, HostTensor], *, wrap: str | None = None
) -> Path:
    """Write `tensors` as a checkpoint the way torch.save(state_dict) lays it out."""
    pkl, storages = state_dict_pickle(tensors, wrap=wrap)
    return write_archive(path, pkl, storages)
