"""Stand-ins for torch's storages and `_rebuild_tensor_v2`: rebuild views as HostTensors."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any, TypeGuard

from .errors import CheckpointError
from .tensor import DTYPE_SIZES, HostTensor


class Storage:
    """A storage read from the archive: `numel` elements of `dtype` in `data`."""

    __slots__ = ("data", "dtype", "key", "numel")

    def __init__(self, key: str, dtype: str, numel: int, data: bytes) -> None:
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.data = data

    def __setstate__(self, state: object) -> None:
        raise CheckpointError(f"data.pkl tries to modify storage {self.key!r} (BUILD): refusing")


class PtTensor:
    """A rebuilt tensor while unpickling; sealed so that BUILD cannot alter it."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: HostTensor) -> None:
        self.tensor = tensor

    def __setstate__(self, state: object) -> None:
        raise CheckpointError("data.pkl tries to modify a tensor (BUILD): refusing")


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_view(
    storage: Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> int:
    numel = math.prod(size)
    if numel > storage.numel:
        # Stride-0 or overlapping views could turn a few stored bytes into gigabytes.
        raise CheckpointError(
            f"tensor of shape {size} on storage {storage.key!r} has more elements than the "
            f"storage ({storage.numel}): expanded views are not supported; save .contiguous()"
        )
    if numel:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if last >= storage.numel:
            raise CheckpointError(
                f"tensor view (offset {offset}, shape {size}, stride {stride}) reaches element "
                f"{last} of storage {storage.key!r}, which has only {storage.numel}: file corrupt"
            )
    return numel


def _is_contiguous(size: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    expected = 1
    for n, s in zip(reversed(size), reversed(stride), strict=True):
        # Like torch, a dimension of size 1 may carry any stride.
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def _gather(
    view: memoryview, itemsize: int, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> bytes:
    # Copy runs of the innermost dimension when it is dense, else single elements; indices
    # are generated lazily so that memory stays at the output size.
    dense_inner = bool(size) and stride[-1] == 1
    outer = size[:-1] if dense_inner else size
    run = (size[-1] if dense_inner else 1) * itemsize
    out = bytearray(math.prod(size) * itemsize)
    position = 0
    for index in itertools.product(*map(range, outer)):
        first = (offset + sum(i * s for i, s in zip(index, stride, strict=False))) * itemsize
        out[position : position + run] = view[first : first + run]
        position += run
    return bytes(out)


def rebuild_tensor(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    requires_grad: object,
    backward_hooks: object,
    metadata: object = None,
    *,
    charge: Callable[[int], None],
) -> PtTensor:
    """Our `torch._utils._rebuild_tensor_v2`: check every argument, then materialise.

    `charge(nbytes)` is called before bytes are copied so that the caller can cap the total.
    """
    if not isinstance(storage, Storage):
        raise CheckpointError(f"tensor rebuilt from {type(storage).__name__}, not from a storage")
    if not _is_count(storage_offset):
        raise CheckpointError(f"tensor has an invalid storage offset {storage_offset!r}")
    if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)):
        raise CheckpointError(f"tensor has invalid size/stride {size!r} / {stride!r}")
    if not all(_is_count(v) for v in size + stride):
        raise CheckpointError(f"tensor has a negative or non-integer size/stride {size}/{stride}")
    if not isinstance(requires_grad, bool):
        raise CheckpointError(f"tensor has a non-boolean requires_grad {requires_grad!r}")
    if not isinstance(backward_hooks, dict) or backward_hooks:
        raise CheckpointError("tensor carries backward hooks; a state dict never has any")
    if metadata is not None and not isinstance(metadata, dict):
        raise CheckpointError(f"tensor has invalid metadata of type {type(metadata).__name__}")
    numel = _check_view(storage, storage_offset, size, stride)
    itemsize = DTYPE_SIZES[storage.dtype]
    if numel == 0:
        data = b""
    elif _is_contiguous(size, stride):
        begin = storage_offset * itemsize
        end = begin + numel * itemsize
        # The common case, a whole storage, shares its bytes instead of copying them.
        if begin == 0 and end == len(storage.data):
            data = storage.data
        else:
            charge(end - begin)
            data = storage.data[begin:end]
    else:
        charge(numel * itemsize)
        data = _gather(memoryview(storage.data), itemsize, storage_offset, size, stride)
    return PtTensor(HostTensor(storage.dtype, size, data))


def rebuild_parameter(
    data: object, requires_grad: object, backward_hooks: object, *state: Any
) -> PtTensor:
    """Our `torch._utils._rebuild_parameter[_with_state]`: a parameter is just its tensor."""
    if not isinstance(data, PtTensor):
        raise CheckpointError(f"parameter rebuilt from {type(data).__name__}, not from a tensor")
    if len(state) > 1:
        raise CheckpointError("parameter rebuild called with too many arguments")
    return data
