"""Strict safetensors reading and writing, standard library only.

Format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping each tensor
name to {"dtype", "shape", "data_offsets": [begin, end]} (plus an optional "__metadata__"
object of strings), then the tensor data, packed from offset 0 with no gaps or trailing bytes.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from typing import BinaryIO, Self

from .errors import SafetensorsError
from .files import atomic_writer
from .st_header import MAX_HEADER_BYTES, METADATA_KEY, TensorEntry, header_length, parse_header
from .tensor import HostTensor

__all__ = [
    "MAX_HEADER_BYTES",
    "SafetensorsReader",
    "dump_safetensors",
    "load_safetensors",
    "save_safetensors",
]


class SafetensorsReader:
    """Lazy reader: validates the header on construction, reads each tensor on demand.

    `source` is a path or a seekable binary file whose current position is the start of the
    safetensors data. Use as a context manager; a file object passed in is not closed.
    """

    def __init__(
        self, source: str | os.PathLike[str] | BinaryIO, *, max_header_bytes: int = MAX_HEADER_BYTES
    ) -> None:
        self._file: BinaryIO
        if isinstance(source, str | os.PathLike):
            self._file, self._owns = open(source, "rb"), True  # noqa: SIM115 (see close())
        else:
            self._file, self._owns = source, False
        try:
            self._base = self._file.tell()
            total = self._file.seek(0, os.SEEK_END) - self._base
            self._file.seek(self._base)
            length = header_length(self._file.read(8), total, max_header_bytes)
            raw = self._file.read(length)
            if len(raw) != length:
                raise SafetensorsError("safetensors: file shrank while reading the header")
            self._data_start = self._base + 8 + length
            entries, self.metadata = parse_header(raw, total - 8 - length)
        except BaseException:
            self.close()
            raise
        self._entries = {entry.name: entry for entry in entries}

    def keys(self) -> list[str]:
        """Tensor names in data-offset order."""
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def _entry(self, name: str) -> TensorEntry:
        entry = self._entries.get(name)
        if entry is None:
            raise SafetensorsError(
                f"safetensors: no tensor named {name!r} in this file ({len(self)} tensors): "
                "check the name against keys()"
            )
        return entry

    def info(self, name: str) -> tuple[str, tuple[int, ...], int, int]:
        """Return (dtype, shape, begin, end) of `name`; offsets are relative to the data."""
        entry = self._entry(name)
        return entry.dtype, entry.shape, entry.begin, entry.end

    def read(self, name: str) -> HostTensor:
        """Read only the bytes of tensor `name`."""
        entry = self._entry(name)
        self._file.seek(self._data_start + entry.begin)
        size = entry.end - entry.begin
        data = self._file.read(size)
        if len(data) != size:
            raise SafetensorsError(
                f"safetensors: file shrank while reading {name!r}: it changed after opening"
            )
        return HostTensor(entry.dtype, entry.shape, data)

    def read_all(self) -> dict[str, HostTensor]:
        """Read every tensor, in data-offset order."""
        return {name: self.read(name) for name in self._entries}

    def close(self) -> None:
        if self._owns:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def load_safetensors(
    data: bytes | bytearray | memoryview, *, max_header_bytes: int = MAX_HEADER_BYTES
) -> tuple[dict[str, HostTensor], dict[str, str]]:
    """Parse an in-memory safetensors buffer into (tensors in offset order, metadata).

    Memory bound (ST-5): the input is never copied as a whole. Beyond it, parsing allocates
    one copy of each tensor's bytes (together at most the data section) plus the header and
    its parsed JSON, whose size is limited by `max_header_bytes`.
    """
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    total = view.nbytes
    length = header_length(view[:8], total, max_header_bytes)
    start = 8 + length
    entries, metadata = parse_header(bytes(view[8:start]), total - start)
    tensors = {
        entry.name: HostTensor(
            entry.dtype, entry.shape, bytes(view[start + entry.begin : start + entry.end])
        )
        for entry in entries
    }
    return tensors, metadata


def _check_inputs(tensors: dict[str, HostTensor], metadata: dict[str, str] | None) -> None:
    for name, tensor in tensors.items():
        if not isinstance(name, str) or name == METADATA_KEY:
            raise SafetensorsError(f"safetensors: invalid tensor name {name!r}: use another name")
        if not isinstance(tensor, HostTensor):
            raise SafetensorsError(
                f"safetensors: {name!r} is not a HostTensor but {type(tensor).__name__}"
            )
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise SafetensorsError(
                f"safetensors: metadata {key!r}: {value!r} is not str -> str: convert it first"
            )


def _header(tensors: dict[str, HostTensor], metadata: dict[str, str] | None) -> bytes:
    _check_inputs(tensors, metadata)
    header: dict[str, object] = {}
    if metadata:
        header[METADATA_KEY] = dict(metadata)
    offset = 0
    # Insertion order decides the layout, so equal inputs always give equal bytes.
    for name, tensor in tensors.items():
        end = offset + len(tensor.data)
        header[name] = {
            "dtype": tensor.dtype,
            "shape": list(tensor.shape),
            "data_offsets": [offset, end],
        }
        offset = end
    try:
        raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SafetensorsError(
            f"safetensors: a name or metadata string is not valid Unicode ({exc.reason}): "
            "remove lone surrogates"
        ) from None
    # Pad with spaces (valid JSON whitespace) so that the data starts 8-byte aligned.
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def dump_safetensors(
    tensors: dict[str, HostTensor], metadata: dict[str, str] | None = None
) -> bytes:
    """Serialise `tensors` (laid out in insertion order) and `metadata` to safetensors bytes."""
    return b"".join([_header(tensors, metadata), *(t.data for t in tensors.values())])


def save_safetensors(
    path: str | os.PathLike[str],
    tensors: dict[str, HostTensor],
    metadata: dict[str, str] | None = None,
) -> None:
    """Write `tensors` to `path` atomically: either the whole new file appears or nothing."""
    # Built first so that invalid input fails before any file is created.
    header = _header(tensors, metadata)
    with atomic_writer(path) as f:
        f.write(header)
        for tensor in tensors.values():
            f.write(tensor.data)
