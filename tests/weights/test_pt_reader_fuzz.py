"""Mutated checkpoints raise only CheckpointError (the `.pt` twin of ST-4), each within 1 s of
CPU time (hypothesis's wall-clock deadline would fail on a busy machine, not a slow input)."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandseg.weights import CheckpointError, HostTensor, read_pt
from tests.fuzz.engine import TIME_LIMIT_S, cpu_seconds

from .ptwriter import state_dict_pickle, write_archive

TENSORS = {
    "a": HostTensor("F32", (2, 2), bytes(range(16))),
    "b": HostTensor("I64", (), bytes(8)),
}
PKL, STORAGES = state_dict_pickle(TENSORS, wrap="model")


def archive_bytes(pkl: bytes) -> bytes:
    buffer = io.BytesIO()
    write_archive(buffer, pkl, STORAGES)  # type: ignore[arg-type]
    return buffer.getvalue()


VALID = archive_bytes(PKL)
edits = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=4)


def mutate(data: bytes, changes: list[tuple[int, int]]) -> bytes:
    mutable = bytearray(data)
    for position, value in changes:
        mutable[position % len(mutable)] = value
    return bytes(mutable)


def test_unmutated_inputs_are_valid() -> None:
    assert read_pt(io.BytesIO(VALID)) == TENSORS


@settings(max_examples=300, deadline=None)
@given(changes=edits)
@pytest.mark.requirement("CV-2")
def test_mutated_pickle_only_raises_our_error(changes: list[tuple[int, int]]) -> None:
    data = archive_bytes(mutate(PKL, changes))
    assert cpu_seconds(lambda: read_pt(io.BytesIO(data)), CheckpointError) < TIME_LIMIT_S


@settings(max_examples=300, deadline=None)
@given(changes=edits, cut=st.integers(0, len(VALID)))
@pytest.mark.requirement("CV-2")
def test_mutated_archive_only_raises_our_error(changes: list[tuple[int, int]], cut: int) -> None:
    data = mutate(VALID, changes)[: max(cut, 1)]
    assert cpu_seconds(lambda: read_pt(io.BytesIO(data)), CheckpointError) < TIME_LIMIT_S
