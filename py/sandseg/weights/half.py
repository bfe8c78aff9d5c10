"""Half-precision storage of the weights: float16 on the wire and on disk, float32 in use.

The page downloads the weights as float16 (half the bytes); every reader upcasts them to
float32 on load, exactly (every float16 is a float32), so the model code only ever sees F32.
Which tensors are stored as F16: the float32 weight matrices and kernels (2 dimensions or
more, nearly all of the bytes); vectors (biases, norms, BatchNorm statistics) stay F32, where
rounding would cost accuracy for no saving, and BatchNorm's running variance may exceed
float16's range.

Decoding is standard library only and must be fast in Pyodide, where a per-element Python
loop over 10 M values takes many seconds. `f16_to_f32` moves bytes with slicing and
`bytes.translate` and does the arithmetic on each 4-byte slot with one big-integer shift and
one addition over the whole tensor (no carry ever crosses a slot); only float16 subnormals,
which need a normalising shift, are fixed up one by one (rare in trained weights).
"""

from __future__ import annotations

import struct

from .errors import WeightsError
from .tensor import HostTensor

# float16: 1 sign, 5 exponent (bias 15), 10 mantissa bits; float32: 1, 8 (bias 127), 23.
# Per 4-byte little-endian output slot [lo, hi & 0x7f, 0, 0] << 13 puts the mantissa at bits
# 13..22 and the float16 exponent e at 23..27; adding _TOP[hi] to the top byte then adds
# (127 - 15) to the exponent of normal numbers (0x38 to the top byte = 112 << 23), turns
# e = 31 into 255 (inf, NaN: 0x70 + 0x0f = 0x7f) and puts the sign at bit 31; e = 0 gets
# only the sign: zeros are exact, subnormals are fixed up afterwards.
_STRIP_SIGN = bytes(b & 0x7F for b in range(256))


def _top(hi: int) -> int:
    exponent = (hi >> 2) & 0x1F
    add = 0 if exponent == 0 else 0x70 if exponent == 0x1F else 0x38
    return (hi & 0x80) | add


_TOP = bytes(_top(b) for b in range(256))
# Finding the subnormals (exponent 0, mantissa not 0) without a loop over the zeros: per
# value, _SUB_HI[hi] (4: a subnormal whatever lo is, 2: one if lo is not 0, else 0) plus
# _NONZERO[lo] is 3 or more exactly for a subnormal.
_SUB_HI = bytes((4 if b & 0x03 else 2) if b & 0x7C == 0 else 0 for b in range(256))
_NONZERO = bytes(1 if b else 0 for b in range(256))
_SUBNORMAL = bytes(1 if v >= 3 else 0 for v in range(256))
# Values decoded per step: big-integer work grows faster than linearly beyond this.
_CHUNK = 1 << 16


def f16_to_f32(data: bytes) -> bytes:
    """Little-endian float16 values -> the same values as little-endian float32 (exact,
    NaN payloads kept)."""
    if len(data) % 2:
        raise WeightsError(f"float16 data must have an even number of bytes, got {len(data)}")
    step = 2 * _CHUNK
    return b"".join(_decode(data[i : i + step]) for i in range(0, len(data), step))


def _decode(data: bytes) -> bytes:
    n = len(data) // 2
    lo, hi = data[0::2], data[1::2]
    slots = bytearray(4 * n)
    slots[0::4] = lo
    slots[1::4] = hi.translate(_STRIP_SIGN)
    tops = bytearray(4 * n)
    tops[3::4] = hi.translate(_TOP)
    value = (int.from_bytes(slots, "little") << 13) + int.from_bytes(tops, "little")
    out = bytearray(value.to_bytes(4 * n, "little"))
    kinds = int.from_bytes(hi.translate(_SUB_HI), "little")
    kinds += int.from_bytes(lo.translate(_NONZERO), "little")
    subnormal = kinds.to_bytes(n, "little").translate(_SUBNORMAL)
    i = subnormal.find(1)
    while i >= 0:
        (x,) = struct.unpack_from("<e", data, 2 * i)
        struct.pack_into("<f", out, 4 * i, x)
        i = subnormal.find(1, i + 1)
    return bytes(out)


def f32_to_f16(data: bytes, name: str = "tensor") -> bytes:
    """Little-endian float32 -> float16, rounded to nearest even. Raises WeightsError naming
    `name` when a value is outside float16's range (|x| > 65504)."""
    step = 4 * _CHUNK
    return b"".join(_encode(data[i : i + step], name) for i in range(0, len(data), step))


def _encode(data: bytes, name: str) -> bytes:
    n = len(data) // 4
    values = struct.unpack(f"<{n}f", data)
    try:
        return struct.pack(f"<{n}e", *values)
    except (OverflowError, struct.error):
        worst = max(values, key=abs)
        raise WeightsError(
            f"{name} has a value ({worst:g}) outside float16's range (|x| <= 65504): "
            "it cannot be stored as float16; keep these weights float32"
        ) from None


def stored_as_f16(tensor: HostTensor) -> bool:
    """Whether a half-precision file stores this tensor as F16 (see the module docstring)."""
    return tensor.dtype == "F32" and len(tensor.shape) >= 2


def to_half_storage(name: str, tensor: HostTensor) -> HostTensor:
    """The tensor as a float16 weights file stores it."""
    if not stored_as_f16(tensor):
        return tensor
    return HostTensor("F16", tensor.shape, f32_to_f16(tensor.data, name))


def to_float32(tensor: HostTensor) -> HostTensor:
    """An F16 tensor upcast to F32 (exact); any other tensor as it is."""
    if tensor.dtype != "F16":
        return tensor
    return HostTensor("F32", tensor.shape, f16_to_f32(tensor.data))
