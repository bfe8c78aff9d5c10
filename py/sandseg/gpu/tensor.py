"""A tensor is a typed view of a GPU buffer: shape, dtype, and a byte offset into the buffer.

Buffers come from the device's pool; when the last tensor that owns a buffer goes away the
buffer returns to the pool. That is safe even while commands that use it are recorded but not
yet submitted, because the GPU runs recorded work in order: a later dispatch that reuses the
buffer runs after every earlier reader and writer of it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .device import Device

DTYPE_SIZES = {"f32": 4, "u32": 4, "i32": 4}


class Tensor:
    __slots__ = (
        "__weakref__",
        "_owner",
        "buffer",
        "capacity",
        "device",
        "dtype",
        "offset",
        "shape",
    )

    def __init__(
        self,
        device: Device,
        buffer: Any,
        shape: tuple[int, ...],
        dtype: str = "f32",
        offset: int = 0,
        owner: Tensor | None = None,
        capacity: int | None = None,
    ) -> None:
        if dtype not in DTYPE_SIZES:
            raise ValueError(f"unsupported dtype {dtype!r}; use one of {sorted(DTYPE_SIZES)}")
        self.device = device
        self.buffer = buffer
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self.offset = offset
        # Bytes of the whole buffer; bindings cover the buffer from `offset` to its end.
        self.capacity = capacity if capacity is not None else offset + self.nbytes
        # A view keeps the tensor that owns the buffer alive, so the buffer is not recycled.
        self._owner = owner

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * DTYPE_SIZES[self.dtype]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def reshape(self, *shape: int) -> Tensor:
        """The same elements with another shape (row-major); -1 infers one dimension."""
        dims = list(shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape)
        if dims.count(-1) == 1:
            known = math.prod(d for d in dims if d != -1)
            dims[dims.index(-1)] = self.numel // known if known else 0
        if math.prod(dims) != self.numel:
            raise ValueError(f"cannot reshape a tensor of shape {self.shape} into {tuple(dims)}")
        return Tensor(
            self.device,
            self.buffer,
            tuple(dims),
            self.dtype,
            self.offset,
            self._root(),
            self.capacity,
        )

    def _root(self) -> Tensor:
        return self._owner if self._owner is not None else self

    def __repr__(self) -> str:
        return f"Tensor(shape={self.shape}, dtype={self.dtype})"
