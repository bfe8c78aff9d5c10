"""float16 weight storage (weights/half.py): exact upcast, round-to-nearest-even downcast,
which tensors are halved, and float16 files through the converter and the readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sandseg.weights import HostTensor, WeightsError, convert_checkpoint, load_mobile_sam
from sandseg.weights.half import f16_to_f32, f32_to_f16, stored_as_f16, to_float32


def test_every_float16_upcasts_exactly():
    """All 65,536 bit patterns (zeros, subnormals, inf, NaN payloads), against numpy, also
    across the decoder's chunk boundary and at an odd offset."""
    every = np.arange(65536, dtype=np.uint16).view(np.float16)
    for values in (every, np.tile(every, 3)[7:]):
        got = np.frombuffer(f16_to_f32(values.tobytes()), dtype=np.uint32)
        want = values.astype(np.float32).view(np.uint32)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, f"{bad.size} wrong, first {values.view(np.uint16)[bad[:4]]}"


def test_downcast_rounds_to_nearest_even(rng):
    values = np.concatenate(
        [
            rng.standard_normal(100_000).astype(np.float32) * 0.05,
            # Exactly halfway between two float16s, both ways, and float16's extremes.
            np.float32([1 + 2**-11, 1 + 3 * 2**-11, 65504, -65504, 2**-24, 2**-25, 0, -0.0]),
        ]
    )
    got = np.frombuffer(f32_to_f16(values.tobytes()), dtype=np.uint16)
    with np.errstate(under="ignore"):  # 2**-25 rounds to 0, as it should
        want = values.astype(np.float16).view(np.uint16)
    assert np.array_equal(got, want)


def test_a_value_beyond_float16_is_refused_by_name():
    data = np.float32([1.0, -70000.0]).tobytes()
    with pytest.raises(WeightsError, match=r"neck\.0\.weight has a value \(-70000\).*float32"):
        f32_to_f16(data, "neck.0.weight")


def test_matrices_are_halved_and_vectors_kept():
    matrix = HostTensor("F32", (2, 2), bytes(16))
    assert stored_as_f16(matrix)
    assert not stored_as_f16(HostTensor("F32", (4,), bytes(16)))
    assert not stored_as_f16(HostTensor("I64", (2, 1), bytes(16)))
    assert to_float32(HostTensor("F16", (2,), np.float16([1.5, -2]).tobytes())) == HostTensor(
        "F32", (2,), np.float32([1.5, -2]).tobytes()
    )


def test_float16_file_is_half_and_reads_back_as_rounded_float32(
    converted_weights_f16: Path, mobile_sam_tensors: dict[str, HostTensor]
):
    """`sandseg convert --dtype float16`: about half the bytes; load_mobile_sam gives every
    tensor as float32, equal to the checkpoint rounded to float16 (matrices) or unchanged."""
    original = sum(t.nbytes for t in mobile_sam_tensors.values())
    assert converted_weights_f16.stat().st_size < 0.51 * original
    loaded = load_mobile_sam(converted_weights_f16)
    assert list(loaded) == list(mobile_sam_tensors)
    halved = 0
    for name, want in mobile_sam_tensors.items():
        got = loaded[name]
        assert (got.dtype, got.shape) == (want.dtype, want.shape), name
        if stored_as_f16(want):
            halved += 1
            with np.errstate(under="ignore"):  # tiny weights become float16 subnormals
                rounded = np.frombuffer(want.data, np.float32).astype(np.float16)
            rounded = rounded.astype(np.float32)
            assert got.data == rounded.tobytes(), name
        else:
            assert got == want, name
    assert halved > 100


def test_float16_from_a_safetensors_and_back(converted_weights: Path, tmp_path: Path):
    """A float32 .safetensors converts too (the server derives the page's file this way), and
    a float16 file converts back to float32 with the rounded values."""
    half = tmp_path / "half.safetensors"
    manifest = convert_checkpoint(converted_weights, half, dtype="float16")
    assert manifest["metadata"]["dtype"] == "float16"
    again = tmp_path / "again.safetensors"
    convert_checkpoint(half, again)
    assert load_mobile_sam(again) == load_mobile_sam(half)
    with pytest.raises(WeightsError, match="unknown dtype 'bfloat16'"):
        convert_checkpoint(converted_weights, tmp_path / "x.safetensors", dtype="bfloat16")
