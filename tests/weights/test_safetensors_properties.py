"""ST-3 round trip on 1,000 generated cases, and a short mutation fuzz (ST-4 in miniature: our
error only, each input within 1 s of CPU time, which a busy machine cannot stretch)."""

from __future__ import annotations

import io
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandseg.weights import (
    DTYPE_SIZES,
    HostTensor,
    SafetensorsError,
    SafetensorsReader,
    dump_safetensors,
    load_safetensors,
)
from tests.fuzz.engine import TIME_LIMIT_S, cpu_seconds

# Valid Unicode only: the writer rejects lone surrogates, which UTF-8 cannot encode.
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
shapes = st.lists(st.integers(0, 5), max_size=4).map(tuple)


@st.composite
def host_tensors(draw: st.DrawFn) -> HostTensor:
    dtype = draw(st.sampled_from(sorted(DTYPE_SIZES)))
    shape = draw(shapes)
    size = math.prod(shape) * DTYPE_SIZES[dtype]
    return HostTensor(dtype, shape, draw(st.binary(min_size=size, max_size=size)))


tensor_dicts = st.dictionaries(texts.filter(lambda name: name != "__metadata__"), host_tensors())
metadatas = st.none() | st.dictionaries(texts, texts, max_size=4)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tensors=tensor_dicts, metadata=metadatas)
@pytest.mark.requirement("ST-3")
def test_round_trip_is_exact(tensors: dict[str, HostTensor], metadata: dict | None) -> None:
    data = dump_safetensors(tensors, metadata)
    (length,) = struct.unpack("<Q", data[:8])
    assert length % 8 == 0
    header = data[8 : 8 + length]
    assert len(header.rstrip(b" ")) > length - 8  # at most 7 bytes of padding
    loaded, loaded_metadata = load_safetensors(data)
    assert loaded == tensors
    assert list(loaded) == list(tensors)  # insertion order is the layout order
    assert loaded_metadata == (metadata or {})
    with SafetensorsReader(io.BytesIO(data)) as reader:
        assert reader.read_all() == tensors
    assert dump_safetensors(loaded, loaded_metadata) == data


VALID = dump_safetensors(
    {
        "a": HostTensor("F32", (2, 2), bytes(range(16))),
        "b": HostTensor("I64", (), bytes(8)),
        "c": HostTensor("U8", (0,), b""),
    },
    {"k": "v"},
)


@settings(max_examples=500, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, len(VALID)),
    tail=st.binary(max_size=16),
)
@pytest.mark.requirement("ST-4")
def test_mutated_input_only_raises_our_error(
    edits: list[tuple[int, int]], cut: int, tail: bytes
) -> None:
    data = bytearray(VALID)
    for position, value in edits:
        data[position] = value
    mutated = bytes(data[:cut] + tail)
    assert cpu_seconds(lambda: load_safetensors(mutated), SafetensorsError) < TIME_LIMIT_S
