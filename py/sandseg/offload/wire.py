"""The offload wire format: tensors travel as safetensors bytes, float32 or float16.

Every body is checked against a signature (names, dtypes, shapes) before anything uses it,
and every refusal is a `WireError` whose message names the tensor and what was expected
(the server answers it with 422, SV-3). Tensors on the host are little-endian float32 bytes;
float16 is a wire format only, converted here with `struct` (standard library).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

from ..weights import (
    DTYPE_CODES,
    FLOAT_DTYPES,
    HostTensor,
    SafetensorsError,
    dtype_name,
    dump_safetensors,
    load_safetensors,
)

# ST-1: a request's header is small (a handful of tensors); 1 MiB is generous.
MAX_WIRE_HEADER_BYTES = 1 << 20
WIRE_DTYPES = {name: DTYPE_CODES[name] for name in FLOAT_DTYPES}
_ITEM = {"F32": "f", "F16": "e"}
MEDIA_TYPE = "application/octet-stream"


class WireError(ValueError):
    """A body that does not match what the route expects; the message says what differs."""


@dataclass(frozen=True)
class Spec:
    """What one tensor of a body must look like; None in `shape` means any size."""

    dtypes: tuple[str, ...]
    shape: tuple[int | None, ...]
    required: bool = True


def wire_dtype(name: str | None) -> str:
    """ "float32" / "float16" (None -> float32) -> the safetensors dtype, or WireError."""
    if name is None:
        return "F32"
    if name not in WIRE_DTYPES:
        raise WireError(f"dtype must be one of {', '.join(WIRE_DTYPES)}; got {name!r}")
    return WIRE_DTYPES[name]


def from_f32(data: bytes, shape: tuple[int, ...], dtype: str) -> HostTensor:
    """float32 bytes -> a HostTensor of `dtype` (F32 or F16) for the wire."""
    if dtype == "F32":
        return HostTensor("F32", shape, bytes(data))
    count = len(data) // 4
    values = struct.unpack(f"<{count}f", data)
    try:
        return HostTensor("F16", shape, struct.pack(f"<{count}e", *values))
    except OverflowError:
        raise WireError("a value is too large for float16: use float32") from None


def to_f32(tensor: HostTensor) -> bytes:
    """An F32 or F16 HostTensor -> float32 bytes."""
    if tensor.dtype == "F32":
        return tensor.data
    count = len(tensor.data) // 2
    return struct.pack(f"<{count}f", *struct.unpack(f"<{count}e", tensor.data))


def pack(tensors: Mapping[str, HostTensor], metadata: Mapping[str, str] | None = None) -> bytes:
    return dump_safetensors(dict(tensors), dict(metadata) if metadata else None)


def unpack(
    body: bytes, signature: Mapping[str, Spec]
) -> tuple[dict[str, HostTensor], dict[str, str]]:
    """Parse `body` and check it against `signature`: no missing, extra or misshapen tensor."""
    try:
        tensors, metadata = load_safetensors(body, max_header_bytes=MAX_WIRE_HEADER_BYTES)
    except SafetensorsError as exc:
        raise WireError(f"the body is not valid safetensors: {_strip(str(exc))}") from None
    for name in tensors:
        if name not in signature:
            expected = ", ".join(repr(n) for n in signature)
            raise WireError(f"unexpected tensor {name!r}: this route takes {expected}")
    for name, spec in signature.items():
        if name not in tensors:
            if spec.required:
                raise WireError(f"missing tensor {name!r}")
            continue
        _check(name, tensors[name], spec)
    return tensors, metadata


def _check(name: str, tensor: HostTensor, spec: Spec) -> None:
    if tensor.dtype not in spec.dtypes:
        allowed = " or ".join(dtype_name(d) for d in spec.dtypes)
        raise WireError(f"tensor {name!r} has dtype {dtype_name(tensor.dtype)}; expected {allowed}")
    fits = len(tensor.shape) == len(spec.shape) and all(
        want is None or want == got for want, got in zip(spec.shape, tensor.shape, strict=True)
    )
    if not fits:
        want = "(" + ", ".join("N" if d is None else str(d) for d in spec.shape) + ")"
        raise WireError(
            f"tensor {name!r} has shape {tuple(tensor.shape)}; expected {want}".replace(",)", ")")
        )


def _strip(message: str) -> str:
    # The parser's first clause says what is wrong; the rest is advice for files on disk.
    return message.removeprefix("safetensors: ").split(";")[0]
