"""The device layer's shared half: recording, buffer pool, uniforms, pipeline cache, checks.

Ops call `dispatch` and `copy`; nothing reaches the GPU until `submit` (or a read-back), so a
whole forward pass can become one command buffer and one queue submission. A backend (native.py
on wgpu-py, browser.py on Pyodide's JS FFI) supplies only the primitive calls at the bottom of
this class. All backends run the same WGSL with the same bindings, in the same order:
inputs (`read`), outputs (`read_write`), then the params uniform last.

Pacing (RELIABILITY.md GP-5): a device with a `submission_target_s` (the browser's) cuts the
recorded work into command buffers of about that many seconds each, submitted one by one, so
that no single submission runs long enough for the browser's GPU watchdog. Every dispatch
carries an estimate of its work (FLOP-like units, see `dispatch`); the device learns the
adapter's rate from the submissions `finish` times, and ops split a dispatch whose work is over
the budget into slices (`work_budget`).
"""

from __future__ import annotations

import math
import time
import weakref
from collections import defaultdict, deque
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
# Work units per second assumed before any submission has been timed: about what SwiftShader
# does on two CPU cores (the slowest adapter we support), so the first submissions are short.
ASSUMED_WORK_RATE = 1e9
# The work of a dispatch that states none (memory-bound kernels): units per byte it binds.
# Measured on lavapipe: layer norm, the slowest of them per byte, takes about as long per 6
# bytes as the matmul per FLOP; 8 errs on the safe side (more, shorter submissions).
BYTE_WORK = 8.0
# How many recent submissions the rate is taken from.
RATE_SAMPLES = 9


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
    work: float

    def bind_entries(self, uniforms: Any) -> list[dict[str, Any]]:
        """The bind group entries (WebGPU's shape, both backends): the storage bindings in
        order, then the params uniform, a slice of the submission's `uniforms` buffer."""
        entries: list[dict[str, Any]] = [
            {"binding": i, "resource": {"buffer": b.buffer, "offset": b.offset, "size": b.size}}
            for i, b in enumerate(self.bindings)
        ]
        params = {"buffer": uniforms, "offset": self.params_offset, "size": self.params_size}
        entries.append({"binding": len(entries), "resource": params})
        return entries


@dataclass(frozen=True)
class CopyRecord:
    src: Binding
    dst: Binding

    @property
    def work(self) -> float:
        return 2 * self.src.size * BYTE_WORK


Record = DispatchRecord | CopyRecord


@dataclass(frozen=True)
class Submission:
    """One command buffer that `finish` submitted and waited for."""

    label: str  # its first and last command
    work: float
    seconds: float  # from submit to done, as the caller saw it


class Device:
    """A WebGPU device with a buffer pool and a command recorder. Use `sandseg.gpu.get_device`."""

    # Tests set this: every new tensor then gets this many extra bytes filled with SENTINEL,
    # and since bindings run to the end of the buffer, a kernel that writes past its output
    # leaves a mark there instead of being silently clamped (RELIABILITY.md GP-3).
    guard_bytes = 0
    SENTINEL = b"\xef\xbe\xad\xde"
    # Seconds one submission should take (GP-5); None: no limit, the whole recording is one
    # command buffer (native: no watchdog, and fewest dispatches is fastest).
    submission_target_s: float | None = None

    def __init__(self, adapter_name: str, features: frozenset[str]) -> None:
        self.adapter_name = adapter_name
        self.features = features
        self._pipelines: dict[tuple[Any, ...], Any] = {}
        self._free: dict[int, list[Any]] = defaultdict(list)
        self._free_bytes = 0
        # Surplus buffers wait here until the work recorded so far is submitted: recorded
        # dispatches may still use them, and only submitted work keeps a destroyed buffer alive.
        self._doomed: list[Any] = []
        self._records: list[Record] = []
        self._params = bytearray()
        # Work per second of recent full submissions (see `finish`).
        self._rates: deque[float] = deque(maxlen=RATE_SAMPLES)
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
        work: float | None = None,
    ) -> None:
        """Record one compute dispatch; `None` inputs bind a dummy buffer (optional operands).

        `work`: the dispatch's cost in FLOP-like units, weighted so that equal work takes
        about equal time across kernels (ops that may carry a lot state theirs; the default
        counts BYTE_WORK per byte bound). Pacing groups dispatches by it."""
        label = f"{kernel}({', '.join(_describe(t) for t in [*inputs, *outputs])})"
        gx, gy, gz = (*grid, 1, 1, 1)[:3]
        grid3 = (gx, gy, gz)
        if any(g > MAX_WORKGROUPS_PER_DIM for g in grid3):
            raise GPUError(f"{label}: grid {grid3} exceeds {MAX_WORKGROUPS_PER_DIM} workgroups")
        if len(inputs) + len(outputs) > MAX_STORAGE_BUFFERS_PER_STAGE:
            raise GPUError(f"{label}: more than {MAX_STORAGE_BUFFERS_PER_STAGE} storage buffers")
        bindings = []
        nbytes = 0
        for t in [*inputs, *outputs]:
            nbytes += t.nbytes if t is not None else 0
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
                    pipeline,
                    tuple(bindings),
                    params_offset,
                    max(len(params), 16),
                    grid3,
                    label,
                    nbytes * BYTE_WORK if work is None else work,
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

    # -- submitting and pacing -------------------------------------------------------------

    def work_budget(self) -> float | None:
        """The most work one submission (and so one dispatch) should carry: the adapter's
        measured rate times `submission_target_s`; None where submissions are not limited."""
        if self.submission_target_s is None:
            return None
        return self.work_rate() * self.submission_target_s

    def work_rate(self) -> float:
        """Work per second this adapter does: the lower quartile of the recent full
        submissions' rates. Low, not middle: a kernel whose work is overestimated looks fast,
        and the budget must fit the kernels that are not."""
        if not self._rates:
            return ASSUMED_WORK_RATE
        return sorted(self._rates)[len(self._rates) // 4]

    def submit(self) -> None:
        """Send everything recorded so far to the GPU: one command buffer, or where pacing is
        on, one per budget's worth of work, each its own queue submission."""
        if self._records:
            groups, params = self._take_groups()
            self._submit(groups, params)
            self.submit_count += len(groups)
        self._destroy_doomed()

    async def finish(self) -> list[Submission]:
        """Submit pending work one command buffer at a time, waiting for each, until the GPU
        has done all of it. Returns what each took; the device learns its rate from them."""
        await self._all_done()  # earlier submissions must not count towards the first one
        done = []
        if self._records:
            groups, params = self._take_groups()
            budget = self.work_budget()
            for group in groups:
                started = time.perf_counter()
                self._submit([group], params)
                self.submit_count += 1
                await self._all_done()
                seconds = time.perf_counter() - started
                work = sum(r.work for r in group)
                # Only full submissions teach the rate: a small one is mostly round trip.
                if seconds > 0 and work > 0 and (budget is None or work >= budget / 2):
                    self._rates.append(work / seconds)
                done.append(Submission(_group_label(group), work, seconds))
        self._destroy_doomed()
        return done

    def _take_groups(self) -> tuple[list[list[Record]], bytes]:
        """The recorded work, cut into groups of at most one budget each (a single record
        over it stays alone), and the params they share; recording starts afresh."""
        records, params = self._records, bytes(self._params)
        self._records, self._params = [], bytearray()
        budget = self.work_budget()
        groups: list[list[Record]] = []
        current: list[Record] = []
        work = 0.0
        for rec in records:
            if current and budget is not None and work + rec.work > budget:
                groups.append(current)
                current, work = [], 0.0
            current.append(rec)
            work += rec.work
        groups.append(current)
        return groups, params

    def _destroy_doomed(self) -> None:
        doomed, self._doomed = self._doomed, []
        for buffer in doomed:
            self._destroy_buffer(buffer)

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

    def _submit(self, groups: list[list[Record]], params: bytes) -> None:
        """Encode each group as one command buffer and submit each on its own, in order;
        `params` holds the uniforms of every record (at their params_offset)."""
        raise NotImplementedError

    async def _all_done(self) -> None:
        """Wait until the GPU has done everything submitted so far."""
        raise NotImplementedError

    async def _read_buffer(self, buffer: Any, offset: int, size: int) -> bytes:
        raise NotImplementedError


def _round_up(n: int, multiple: int) -> int:
    return (n + multiple - 1) // multiple * multiple


def _pad4(data: bytes | bytearray | memoryview) -> bytes | memoryview:
    view = memoryview(data).cast("B")
    return view if len(view) % 4 == 0 else bytes(view) + bytes(-len(view) % 4)


def _group_label(group: list[Record]) -> str:
    names = [r.label.split("(")[0] if isinstance(r, DispatchRecord) else "copy" for r in group]
    return names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]} ({len(names)} commands)"


def _describe(t: Tensor | None) -> str:
    return "-" if t is None else "x".join(map(str, t.shape)) or "scalar"
