"""The device layer's shared half: recording, buffer pool, uniforms, pipeline cache, checks.

Ops call `dispatch` and `copy`; nothing reaches the GPU until `submit` (or a read-back), so a
whole forward pass becomes one command buffer and one queue submission. A backend (native.py
on wgpu-py, browser.py on Pyodide's JS FFI) supplies only the primitive calls at the bottom of
this class. All backends run the same WGSL with the same bindings, in the same order:
inputs (`read`), outputs (`read_write`), then the params uniform last.
"""

from __future__ import annotations

import math
import weakref
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .tensor import DTYPE_SIZES, Tensor

# WebGPU's default limits (GP-4). Everything MobileSAM needs fits in them.
MAX_WORKGROUPS_PER_DIM = 65535
MAX_STORAGE_BINDING = 128 * 1024 * 1024
MAX_STORAGE_BUFFERS_PER_STAGE = 8
UNIFORM_ALIGN = 256
BINDING_ALIGN = 256
# Free buffers kept for reuse; beyond this the largest spare ones are destroyed.
POOL_KEEP_BYTES = 768 * 1024 * 1024


class GPUError(RuntimeError):
    """A kernel could not be compiled, validated or run; the message names the kernel."""


@dataclass(frozen=True)
class Binding:
    buffer: Any
    offset: int
    size: int


@dataclass(frozen=True)
class DispatchRecord:
    pipeline: Any
    bindings: tuple[Binding, ...]
    params_offset: int
    params_size: int
    grid: tuple[int, int, int]
    label: str


@dataclass(frozen=True)
class CopyRecord:
    src: Binding
    dst: Binding


class Device:
    """A WebGPU device with a buffer pool and a command recorder. Use `sandseg.gpu.get_device`."""

    # Tests set this: every new tensor then gets this many extra bytes filled with SENTINEL,
    # and since bindings run to the end of the buffer, a kernel that writes past its output
    # leaves a mark there instead of being silently clamped (RELIABILITY.md GP-3).
    guard_bytes = 0
    SENTINEL = b"\xef\xbe\xad\xde"

    def __init__(self, adapter_name: str, features: frozenset[str]) -> None:
        self.adapter_name = adapter_name
        self.features = features
        self._pipelines: dict[tuple[Any, ...], Any] = {}
        self._free: dict[int, list[Any]] = defaultdict(list)
        self._free_bytes = 0
        # Surplus buffers wait here until the work recorded so far is submitted: recorded
        # dispatches may still use them, and only submitted work keeps a destroyed buffer alive.
        self._doomed: list[Any] = []
        self._records: list[DispatchRecord | CopyRecord] = []
        self._params = bytearray()
        self._dummy = self.empty((64,))
        self.dispatch_count = 0
        self.submit_count = 0

    # -- tensors --------------------------------------------------------------------------

    def empty(self, shape: tuple[int, ...], dtype: str = "f32") -> Tensor:
        """An uninitialised tensor from the pool."""
        nbytes = math.prod(shape) * DTYPE_SIZES[dtype]
        size = _round_up(max(nbytes, 4) + self.guard_bytes, BINDING_ALIGN)
        free = self._free.get(size)
        if free:
            buffer = free.pop()
            self._free_bytes -= size
        else:
            buffer = self._create_buffer(size)
        if self.guard_bytes:
            self.submit()
            self._write_buffer(buffer, 0, self.SENTINEL * (size // 4))
        tensor = Tensor(self, buffer, shape, dtype, capacity=size)
        weakref.finalize(tensor, self._release, buffer, size)
        return tensor

    def upload(
        self, data: bytes | bytearray | memoryview, shape: tuple[int, ...], dtype: str = "f32"
    ) -> Tensor:
        """A tensor holding `data` (little-endian, row-major, exactly shape x dtype bytes)."""
        expected = math.prod(shape) * DTYPE_SIZES[dtype]
        if len(memoryview(data).cast("B")) != expected:
            raise ValueError(
                f"upload of shape {shape} {dtype} needs {expected} bytes, got {len(data)}"
            )
        tensor = self.empty(shape, dtype)
        # Queue writes happen before any command buffer submitted later, so recorded work that
        # may still use a recycled buffer must go first.
        self.submit()
        if expected:
            self._write_buffer(tensor.buffer, 0, _pad4(data))
        return tensor

    def _release(self, buffer: Any, size: int) -> None:
        self._free[size].append(buffer)
        self._free_bytes += size
        while self._free_bytes > POOL_KEEP_BYTES:
            largest = max(s for s, bufs in self._free.items() if bufs)
            self._doomed.append(self._free[largest].pop())
            self._free_bytes -= largest

    # -- recording ------------------------------------------------------------------------

    def dispatch(
        self,
        kernel: str,
        inputs: list[Tensor | None],
        outputs: list[Tensor],
        params: bytes,
        grid: tuple[int, ...],
        constants: Mapping[str, float] | None = None,
    ) -> None:
        """Record one compute dispatch; `None` inputs bind a dummy buffer (optional operands)."""
        label = f"{kernel}({', '.join(_describe(t) for t in [*inputs, *outputs])})"
        gx, gy, gz = (*grid, 1, 1, 1)[:3]
        grid3 = (gx, gy, gz)
        if any(g > MAX_WORKGROUPS_PER_DIM for g in grid3):
            raise GPUError(f"{label}: grid {grid3} exceeds {MAX_WORKGROUPS_PER_DIM} workgroups")
        if len(inputs) + len(outputs) > MAX_STORAGE_BUFFERS_PER_STAGE:
            raise GPUError(f"{label}: more than {MAX_STORAGE_BUFFERS_PER_STAGE} storage buffers")
        bindings = []
        for t in [*inputs, *outputs]:
            t = t if t is not None else self._dummy
            if t.device is not self:
                raise GPUError(f"{label}: a tensor belongs to another device")
            if t.nbytes > MAX_STORAGE_BINDING:
                raise GPUError(f"{label}: a {t.nbytes}-byte binding exceeds {MAX_STORAGE_BINDING}")
            size = min(t.capacity - t.offset, MAX_STORAGE_BINDING) // 4 * 4
            bindings.append(Binding(t.buffer, t.offset, size))
        params_offset = len(self._params)
        self._params += params + bytes(_round_up(len(params), UNIFORM_ALIGN) - len(params))
        pipeline = self._pipeline(kernel, constants or {}, len(inputs), len(outputs))
        if all(g > 0 for g in grid3):
            self._records.append(
                DispatchRecord(
                    pipeline, tuple(bindings), params_offset, max(len(params), 16), grid3, label
                )
            )
            self.dispatch_count += 1

    def copy(
        self,
        src: Tensor,
        dst: Tensor,
        src_start: int = 0,
        dst_start: int = 0,
        count: int | None = None,
    ) -> None:
        """Record a copy of `count` elements (default: all of src) between tensors."""
        size = DTYPE_SIZES[src.dtype]
        count = src.numel - src_start if count is None else count
        if src_start + count > src.numel or dst_start + count > dst.numel:
            raise GPUError(
                f"copy of {count} elements from {src.shape} to {dst.shape} is out of range"
            )
        nbytes = count * size
        if nbytes % 4 or (src.offset + src_start * size) % 4 or (dst.offset + dst_start * size) % 4:
            raise GPUError("copies must be 4-byte aligned")
        if nbytes:
            self._records.append(
                CopyRecord(
                    Binding(src.buffer, src.offset + src_start * size, nbytes),
                    Binding(dst.buffer, dst.offset + dst_start * size, nbytes),
                )
            )

    def submit(self) -> None:
        """Send everything recorded so far to the GPU as one command buffer."""
        if self._records:
            records, params = self._records, bytes(self._params)
            self._records, self._params = [], bytearray()
            self._submit(records, params)
            self.submit_count += 1
        doomed, self._doomed = self._doomed, []
        for buffer in doomed:
            self._destroy_buffer(buffer)

    async def finish(self) -> None:
        """Submit pending work and wait until the GPU has done all of it."""
        raise NotImplementedError

    async def read(self, tensor: Tensor) -> bytes:
        """Submit pending work and return the tensor's bytes (little-endian, row-major)."""
        self.submit()
        return await self._read_buffer(tensor.buffer, tensor.offset, tensor.nbytes)

    def _pipeline(self, kernel: str, constants: Mapping[str, float], n_in: int, n_out: int) -> Any:
        key = (kernel, tuple(sorted(constants.items())), n_in, n_out)
        pipeline = self._pipelines.get(key)
        if pipeline is None:
            from .shaders import load_shader

            try:
                source = load_shader(kernel)
                pipeline = self._create_pipeline(kernel, source, dict(constants), n_in, n_out)
            except Exception as exc:
                raise GPUError(f"kernel {kernel!r} with constants {constants}: {exc}") from exc
            self._pipelines[key] = pipeline
        return pipeline

    # -- backend primitives ---------------------------------------------------------------

    def _create_buffer(self, size: int) -> Any:
        raise NotImplementedError

    def _destroy_buffer(self, buffer: Any) -> None:
        raise NotImplementedError

    def _write_buffer(self, buffer: Any, offset: int, data: bytes | memoryview) -> None:
        raise NotImplementedError

    def _create_pipeline(
        self, kernel: str, source: str, constants: dict[str, float], n_in: int, n_out: int
    ) -> Any:
        """A compute pipeline whose layout is n_in read-only storage buffers, n_out read-write
        storage buffers, then one uniform buffer (bindings 0, 1, ... in that order)."""
        raise NotImplementedError

    def _submit(self, records: list[DispatchRecord | CopyRecord], params: bytes) -> None:
        raise NotImplementedError

    async def _read_buffer(self, buffer: Any, offset: int, size: int) -> bytes:
        raise NotImplementedError


def _round_up(n: int, multiple: int) -> int:
    return (n + multiple - 1) // multiple * multiple


def _pad4(data: bytes | bytearray | memoryview) -> bytes | memoryview:
    view = memoryview(data).cast("B")
    return view if len(view) % 4 == 0 else bytes(view) + bytes(-len(view) % 4)


def _describe(t: Tensor | None) -> str:
    return "-" if t is None else "x".join(map(str, t.shape)) or "scalar"
