from __future__ import annotations

import numpy as np
import pytest

from sandseg.weights import DTYPE_SIZES, HostTensor, WeightsError


def test_sizes_and_scalars() -> None:
    tensor = HostTensor("I64", (), bytes(8))
    assert (tensor.numel, tensor.itemsize, tensor.nbytes) == (1, 8, 8)
    assert HostTensor("BF16", (3, 0), b"").nbytes == 0
    assert DTYPE_SIZES["F16"] == 2 and DTYPE_SIZES["BOOL"] == 1


def test_list_shape_is_stored_as_tuple() -> None:
    assert HostTensor("U8", [2], b"ab").shape == (2,)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dtype", "shape", "data", "fragment"),
    [
        ("F128", (1,), bytes(16), "unknown dtype 'F128'"),
        ("F32", (2,), bytes(4), "has 4 bytes but F32 x (2,) needs 8"),
        ("U8", (-1,), b"", "invalid dimension -1"),
        ("U8", (True,), b"a", "invalid dimension True"),
        ("U8", (1.0,), b"a", "invalid dimension 1.0"),
        ("U8", (1,), bytearray(b"a"), "must be bytes"),
    ],
)
def test_invalid_tensors_are_rejected(dtype: str, shape: tuple, data: bytes, fragment: str) -> None:
    with pytest.raises(WeightsError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        HostTensor(dtype, shape, data)


def test_to_floats_matches_numpy() -> None:
    values = np.random.default_rng(0).standard_normal((3, 4)).astype("<f4")
    tensor = HostTensor("F32", (3, 4), values.tobytes())
    assert tensor.to_floats() == values.ravel().tolist()
    doubles = values.astype("<f8")
    assert HostTensor("F64", (12,), doubles.tobytes()).to_floats() == doubles.ravel().tolist()


def test_from_floats_round_trips() -> None:
    tensor = HostTensor.from_floats((2, 2), [1.0, -2.5, 0.0, 3.25])
    assert tensor.data == np.array([1.0, -2.5, 0.0, 3.25], "<f4").tobytes()
    assert tensor.to_floats() == [1.0, -2.5, 0.0, 3.25]


def test_to_floats_rejects_integer_tensors() -> None:
    with pytest.raises(WeightsError, match="supports F32 and F64, not I64"):
        HostTensor("I64", (), bytes(8)).to_floats()


def test_tensors_are_frozen() -> None:
    tensor = HostTensor("U8", (1,), b"a")
    with pytest.raises(AttributeError):
        tensor.data = b"b"  # type: ignore[misc]
