"""Host-side tensors: raw little-endian bytes plus a safetensors dtype name and a shape."""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import WeightsError

# Bytes per element, keyed by safetensors dtype name. Sub-byte types (F4, ...) are left out
# on purpose: their byte size is not numel * itemsize.
DTYPE_SIZES: dict[str, int] = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
}

# The one dtype vocabulary: what users, the HTTP API and torch call a dtype ("float16") ->
# the safetensors code the bytes carry ("F16"). Every layer names dtypes the first way and
# stores them the second.
DTYPE_CODES: dict[str, str] = {
    "float32": "F32",
    "float64": "F64",
    "float16": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}
# The float dtypes weights are stored in and tensors travel as (the others are read only).
FLOAT_DTYPES = ("float32", "float16")


def dtype_name(code: str) -> str:
    """The safetensors code -> its name ("F16" -> "float16"); unknown codes as they are."""
    return next((name for name, c in DTYPE_CODES.items() if c == code), code)


# array typecodes for the dtypes `to_floats` can decode; both are IEEE on every platform
# Python supports, only the byte order can differ.
_FLOAT_CODES = {"F32": "f", "F64": "d"}


def check_shape(shape: object) -> tuple[int, ...]:
    """Return `shape` as a tuple of non-negative ints or raise `WeightsError`."""
    if not isinstance(shape, tuple | list):
        raise WeightsError(f"shape must be a tuple of ints, got {type(shape).__name__}")
    for dim in shape:
        # bool is an int subclass; True as a dimension is always a bug upstream.
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
            raise WeightsError(f"shape {shape!r} has an invalid dimension {dim!r}: use ints >= 0")
    return tuple(shape)


@dataclass(frozen=True)
class HostTensor:
    """A tensor on the host: C-contiguous, little-endian `data` of `dtype` with `shape`.

    `dtype` is a safetensors dtype name ("F32", "I64", ...); a scalar has shape `()`.
    """

    dtype: str
    shape: tuple[int, ...]
    data: bytes

    def __post_init__(self) -> None:
        if self.dtype not in DTYPE_SIZES:
            known = ", ".join(DTYPE_SIZES)
            raise WeightsError(f"unknown dtype {self.dtype!r}: use one of {known}")
        object.__setattr__(self, "shape", check_shape(self.shape))
        if not isinstance(self.data, bytes):
            raise WeightsError(
                f"tensor data must be bytes, got {type(self.data).__name__}: wrap it in bytes()"
            )
        if len(self.data) != self.nbytes:
            raise WeightsError(
                f"tensor data has {len(self.data)} bytes but {self.dtype} x {self.shape} needs "
                f"{self.nbytes}: check the dtype and shape"
            )

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return DTYPE_SIZES[self.dtype]

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize

    def to_floats(self) -> list[float]:
        """Decode an F32 or F64 tensor into a flat row-major list of Python floats."""
        code = _FLOAT_CODES.get(self.dtype)
        if code is None:
            raise WeightsError(
                f"to_floats() supports F32 and F64, not {self.dtype}: decode .data yourself"
            )
        values: array[float] = array(code)
        values.frombytes(self.data)
        if sys.byteorder == "big":
            values.byteswap()
        return values.tolist()

    @classmethod
    def from_floats(cls, shape: tuple[int, ...], values: Iterable[float]) -> HostTensor:
        """Build an F32 tensor of `shape` from row-major `values`."""
        packed = array("f", values)
        if sys.byteorder == "big":
            packed.byteswap()
        return cls("F32", tuple(shape), packed.tobytes())
