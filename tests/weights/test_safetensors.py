"""safetensors reader and writer: ST-1 (header cap), ST-3 (round trip), ST-5 (memory)."""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from sandseg.weights import (
    HostTensor,
    SafetensorsError,
    SafetensorsReader,
    dump_safetensors,
    load_safetensors,
    save_safetensors,
)

NETWORK_CAP = 1 << 20


def sample() -> dict[str, HostTensor]:
    rng = np.random.default_rng(0)
    return {
        "weight": HostTensor("F32", (2, 3), rng.standard_normal((2, 3), np.float32).tobytes()),
        "count": HostTensor("I64", (), np.int64(7).tobytes()),
        "empty": HostTensor("F16", (0, 4), b""),
        "mask": HostTensor("BOOL", (3,), bytes([1, 0, 1])),
    }


def header_of(data: bytes) -> tuple[int, bytes]:
    (length,) = struct.unpack("<Q", data[:8])
    return length, data[8 : 8 + length]


@pytest.mark.requirement("ST-3")
def test_writer_layout_is_deterministic_and_padded() -> None:
    data = dump_safetensors(sample(), {"format": "test"})
    length, header = header_of(data)
    assert length % 8 == 0
    parsed = json.loads(header)
    assert list(parsed) == ["__metadata__", "weight", "count", "empty", "mask"]
    assert parsed["weight"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    assert parsed["count"]["data_offsets"] == [24, 32]
    assert header.rstrip(b" ") == json.dumps(parsed, separators=(",", ":")).encode()
    assert data == dump_safetensors(sample(), {"format": "test"})


def test_load_returns_tensors_in_offset_order_and_metadata() -> None:
    tensors, metadata = load_safetensors(dump_safetensors(sample(), {"k": "v"}))
    assert tensors == sample()
    assert list(tensors) == list(sample())
    assert metadata == {"k": "v"}
    weight = np.frombuffer(tensors["weight"].data, "<f4").reshape(2, 3)
    assert tensors["weight"].to_floats() == weight.ravel().tolist()


def test_load_accepts_memoryview_and_bytearray() -> None:
    data = dump_safetensors(sample())
    assert load_safetensors(memoryview(data))[0] == sample()
    assert load_safetensors(bytearray(data))[0] == sample()
    padded = dump_safetensors({"a": HostTensor("U8", (8,), bytes(range(8)))})
    assert load_safetensors(memoryview(padded).cast("Q"))[0]["a"].data == bytes(range(8))


def test_reader_reads_single_tensors_lazily(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_safetensors(path, sample(), {"k": "v"})
    with SafetensorsReader(path) as reader:
        assert reader.keys() == list(sample())
        assert reader.metadata == {"k": "v"}
        assert reader.info("count") == ("I64", (), 24, 32)
        assert reader.read("mask") == sample()["mask"]
        assert reader.read_all() == sample()
        assert "weight" in reader and len(reader) == 4
        with pytest.raises(SafetensorsError, match="no tensor named 'nope'"):
            reader.read("nope")


def test_reader_on_file_object_starting_mid_stream() -> None:
    stream = io.BytesIO(b"prefix" + dump_safetensors(sample()))
    stream.seek(6)
    with SafetensorsReader(stream) as reader:
        assert reader.read_all() == sample()
    assert not stream.closed


def test_reader_detects_file_changed_after_open(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    # Larger than any read buffer, so that the truncation is seen by the reader.
    save_safetensors(path, {**sample(), "big": HostTensor("U8", (1 << 20,), bytes(1 << 20))})
    with SafetensorsReader(path) as reader:
        path.write_bytes(path.read_bytes()[:-10])
        with pytest.raises(SafetensorsError, match="shrank"):
            reader.read("big")


def test_save_is_atomic_on_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    with pytest.raises(SafetensorsError, match="not a HostTensor but bytes"):
        save_safetensors(path, {"a": b"raw"})  # type: ignore[dict-item]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("tensors", "metadata", "fragment"),
    [
        ({"__metadata__": HostTensor("U8", (0,), b"")}, None, "invalid tensor name"),
        ({}, {"k": 1}, "not str -> str"),
        ({"\ud800": HostTensor("U8", (0,), b"")}, None, "lone surrogates"),
    ],
)
def test_writer_rejects_bad_input(tensors: dict, metadata: dict | None, fragment: str) -> None:
    with pytest.raises(SafetensorsError, match=fragment):
        dump_safetensors(tensors, metadata)


# ST-1: the length prefix is checked against the cap before anything else is read.


class SpyFile(io.BytesIO):
    """A file that claims to be huge and records every read size."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int] = []

    def read(self, size: int | None = -1, /) -> bytes:
        self.reads.append(-1 if size is None else size)
        return super().read(size)

    def seek(self, offset: int, whence: int = 0, /) -> int:
        position = super().seek(offset, whence)
        return 1 << 62 if whence == io.SEEK_END else position


@pytest.mark.parametrize("length", [NETWORK_CAP + 1, 2**63, 2**64 - 1])
@pytest.mark.requirement("ST-1")
def test_header_length_over_cap_is_rejected_before_reading(length: int) -> None:
    spy = SpyFile(struct.pack("<Q", length) + b"{}")
    with pytest.raises(SafetensorsError, match="exceeds the cap"):
        SafetensorsReader(spy, max_header_bytes=NETWORK_CAP)
    assert spy.reads == [8]


@pytest.mark.parametrize("length", [NETWORK_CAP + 1, 2**63, 2**64 - 1])
@pytest.mark.requirement("ST-1")
def test_header_length_over_cap_allocates_nothing(length: int) -> None:
    # A file long enough that only the cap, not the file size, can stop it.
    data = struct.pack("<Q", length) + bytes(NETWORK_CAP + 8)
    tracemalloc.start()
    try:
        with pytest.raises(SafetensorsError, match="exceeds the cap"):
            load_safetensors(data, max_header_bytes=NETWORK_CAP)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 10


@pytest.mark.requirement("ST-1")
def test_header_at_the_cap_is_accepted() -> None:
    header = b"{}" + b" " * (NETWORK_CAP - 2)
    tensors, metadata = load_safetensors(
        struct.pack("<Q", NETWORK_CAP) + header, max_header_bytes=NETWORK_CAP
    )
    assert tensors == {} and metadata == {}


def test_deeply_nested_header_is_our_error() -> None:
    header = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(SafetensorsError, match="not valid JSON"):
        load_safetensors(struct.pack("<Q", len(header)) + header)


# ST-5: no amplification: peak allocation is bounded by the data section.


@pytest.mark.requirement("ST-5")
def test_load_allocates_at_most_the_file_size() -> None:
    rng = np.random.default_rng(1)
    tensors = {
        f"layer.{i}.weight": HostTensor("F32", (256, 512), rng.bytes(256 * 512 * 4))
        for i in range(16)
    }
    data = dump_safetensors(tensors)
    tracemalloc.start()
    try:
        loaded, _ = load_safetensors(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert loaded == tensors
    assert peak < len(data) + (64 << 10), f"peak {peak} for a {len(data)}-byte file"
