"""The browser backend: the page's WebGPU (`navigator.gpu`) through Pyodide's JS FFI.

With sandseg/browser/, the only code that imports `js` and `pyodide`. Mirrors native.py call
for call; where WebGPU is asynchronous (errors, read-back, device loss) the Python side awaits
JS promises from coroutines run by Pyodide's event loop (no JSPI, PY-4). Spec names are
camelCase here.
Errors from validation and out-of-memory scopes (GP-6) are collected as they resolve and
raised, naming the kernel, by the next `await device.read(...)` or `await device.finish()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import js
from pyodide.ffi import create_proxy, jsnull, to_js

from .device import (
    MAX_STORAGE_BINDING,
    MAX_STORAGE_BUFFERS_PER_STAGE,
    MAX_WORKGROUPS_PER_DIM,
    CopyRecord,
    Device,
    DispatchRecord,
    GPUError,
    Record,
    Submission,
)

# What the device layer relies on, all within WebGPU's defaults (GP-4), requested explicitly.
# MobileSAM at 1024 x 1024 binds at most 64 MiB (measured: an encoder stage's activations);
# the rest of the 128 MiB binding is for image-sized tensors (the upload, the full-size masks),
# which is what limits the image size (predictor.MAX_IMAGE_PIXELS).
REQUIRED_LIMITS = {
    "maxStorageBufferBindingSize": MAX_STORAGE_BINDING,
    "maxBufferSize": MAX_STORAGE_BINDING,
    "maxStorageBuffersPerShaderStage": MAX_STORAGE_BUFFERS_PER_STAGE,
    "maxComputeWorkgroupsPerDimension": MAX_WORKGROUPS_PER_DIM,
    "maxComputeInvocationsPerWorkgroup": 256,
}
_OPTIONAL_FEATURES = ("shader-f16", "subgroups", "timestamp-query")


def _absent(value: Any) -> bool:
    """JS null and undefined (Pyodide maps null to `jsnull`, undefined to None)."""
    return value is None or value is jsnull


def _js(value: Any) -> Any:
    """Python dicts and lists -> plain JS objects and arrays (WebGPU descriptors)."""
    return to_js(value, dict_converter=js.Object.fromEntries)


class BrowserDevice(Device):
    # The browser's GPU watchdog tolerates a submission of a few seconds at most; 500 ms is our
    # limit (GP-5) and submissions aim at 75 ms, leaving room for estimates that are
    # off for one kernel on one adapter.
    submission_target_s = 0.075

    def __init__(self, device: Any, name: str, features: frozenset[str]) -> None:
        self._device = device
        self._queue = device.queue
        # (what, promise of a GPUError or null) from error scopes not yet looked at.
        self._scopes: list[tuple[str, Any]] = []
        self._errors: list[str] = []
        # Set (to the browser's reason) when the device is lost; the session then rebuilds.
        self.lost: str | None = None
        self._on_error = create_proxy(self._uncaptured)
        device.addEventListener("uncapturederror", self._on_error)
        self._lost_watch = asyncio.ensure_future(self._watch_lost())
        self._compile_only = False
        # (placeholder, promise, what) of pipelines compile_only is creating.
        self._compiling: list[tuple[list[Any], Any, str]] = []
        # Shader modules by kernel: one per WGSL source, shared by the pipelines made from it
        # with different override constants (the browser parses and validates it once).
        self._modules: dict[str, Any] = {}
        # When the GPU wait in progress (work done, or a read-back mapped) began, for PY-3's
        # watchdog: a wait that never ends is a stuck inference although the thread is free.
        self._waiting_since: float | None = None
        super().__init__(name, features)

    def gpu_wait_s(self) -> float:
        """How long the GPU wait in progress has lasted (0.0 when none is)."""
        since = self._waiting_since
        return 0.0 if since is None else time.monotonic() - since

    async def _await_gpu(self, promise: Any) -> Any:
        """Await a promise the GPU settles (onSubmittedWorkDone, mapAsync), timed for
        gpu_wait_s."""
        self._waiting_since = time.monotonic()
        try:
            return await promise
        finally:
            self._waiting_since = None

    # -- errors and loss ------------------------------------------------------------------

    async def _watch_lost(self) -> None:
        info = await self._device.lost
        self.lost = f"{info.reason}: {info.message}" if info.message else str(info.reason)

    def _uncaptured(self, event: Any) -> None:
        self._errors.append(str(event.error.message))

    def _push_scopes(self) -> None:
        self._device.pushErrorScope("out-of-memory")
        self._device.pushErrorScope("validation")

    def _pop_scopes(self, what: str) -> None:
        # Popped now, looked at later: the promises resolve once the GPU process has checked.
        self._scopes.append((what, self._device.popErrorScope()))
        self._scopes.append((what, self._device.popErrorScope()))

    @contextlib.asynccontextmanager
    async def error_scope(self, what: str) -> AsyncIterator[None]:
        """Run a block (e.g. the weight upload) inside validation and out-of-memory scopes;
        raise GPUError naming `what` if the GPU reported an error for it (GP-6)."""
        self.submit()
        self._push_scopes()
        try:
            yield
            self.submit()
        finally:
            self._pop_scopes(what)
        await self.check_errors()

    async def check_errors(self) -> None:
        """Raise GPUError for any error reported so far (scopes, uncaptured, device loss)."""
        scopes, self._scopes = self._scopes, []
        for what, promise in scopes:
            error = await promise
            if not _absent(error):
                self._errors.append(f"{what}: {error.message}")
        if self.lost is not None:
            self._errors.append(f"the GPU device was lost ({self.lost})")
        if self._errors:
            errors, self._errors = self._errors, []
            raise GPUError("; ".join(dict.fromkeys(errors)))

    async def finish(self) -> list[Submission]:
        if self._compile_only:  # nothing runs, so nothing may be timed
            self.submit()
            return []
        done = await super().finish()
        await self.check_errors()
        return done

    async def _all_done(self) -> None:
        await self._await_gpu(self._queue.onSubmittedWorkDone())

    @contextlib.asynccontextmanager
    async def compile_only(self) -> AsyncIterator[None]:
        """Record without running: the pipelines a block dispatches are created (compiled,
        asynchronously, so in parallel where the browser can) and awaited at its end, while
        submissions and buffer writes are dropped. Nothing in the block may read back."""
        self.submit()
        self._compile_only = True
        try:
            yield
            self.submit()
        finally:
            self._compile_only = False
            failures = await self._await_compiling()
        if failures:
            raise GPUError("; ".join(failures))

    async def _await_compiling(self) -> list[str]:
        compiling, self._compiling = self._compiling, []
        failures = []
        for entry, promise, what in compiling:
            try:
                entry[0] = await promise
            except Exception as exc:
                failures.append(f"{what}: {exc}")
        # Failed pipelines leave the cache, so that a later dispatch tries (and reports) again.
        self._pipelines = {k: v for k, v in self._pipelines.items() if v[0] is not None}
        return failures

    def destroy(self) -> None:
        """Give the device back (its buffers with it); `lost` is set once the browser agrees."""
        self._device.destroy()

    # -- backend primitives ---------------------------------------------------------------

    def _create_buffer(self, size: int) -> Any:
        usage = js.GPUBufferUsage.STORAGE | js.GPUBufferUsage.COPY_SRC | js.GPUBufferUsage.COPY_DST
        return self._device.createBuffer(_js({"size": size, "usage": usage}))

    def _destroy_buffer(self, buffer: Any) -> None:
        buffer.destroy()

    def _write_buffer(self, buffer: Any, offset: int, data: bytes | memoryview) -> None:
        if self._compile_only:
            return
        # A view of the Python bytes in the Wasm heap, no copy: writeBuffer copies it out.
        proxy = create_proxy(memoryview(data).cast("B"))
        view = proxy.getBuffer("u8")
        try:
            self._queue.writeBuffer(buffer, offset, view.data)
        finally:
            view.release()
            proxy.destroy()

    def _create_pipeline(
        self, kernel: str, source: str, constants: dict[str, float], n_in: int, n_out: int
    ) -> Any:
        kinds = ["read-only-storage"] * n_in + ["storage"] * n_out
        entries = [
            {"binding": i, "visibility": js.GPUShaderStage.COMPUTE, "buffer": {"type": kind}}
            for i, kind in enumerate([*kinds, "uniform"])
        ]
        what = f"kernel {kernel!r} with constants {constants}"
        self._push_scopes()
        try:
            group_layout = self._device.createBindGroupLayout(
                _js({"label": kernel, "entries": entries})
            )
            module = self._modules.get(kernel)
            if module is None:
                module = self._device.createShaderModule(_js({"label": kernel, "code": source}))
                self._modules[kernel] = module
            layout = self._device.createPipelineLayout(_js({"bindGroupLayouts": [group_layout]}))
            compute = {
                "module": module,
                "entryPoint": "main",
                "constants": {k: float(v) for k, v in constants.items()},
            }
            descriptor = _js({"label": kernel, "layout": layout, "compute": compute})
            if self._compile_only:
                # A placeholder [pipeline, layout] that compile_only fills in when it ends.
                entry = [None, group_layout]
                promise = self._device.createComputePipelineAsync(descriptor)
                self._compiling.append((entry, promise, what))
                return entry
            pipeline = self._device.createComputePipeline(descriptor)
        finally:
            self._pop_scopes(what)
        return pipeline, group_layout

    def _submit(self, groups: list[list[Record]], params: bytes) -> None:
        if self._compile_only:
            return
        # 1. all the uniform parameters in one buffer, filled while mapped at creation
        uniforms = None
        if params:
            uniforms = self._device.createBuffer(
                _js(
                    {
                        "size": len(params),
                        "usage": js.GPUBufferUsage.UNIFORM,
                        "mappedAtCreation": True,
                    }
                )
            )
            js.Uint8Array.new(uniforms.getMappedRange()).assign(params)
            uniforms.unmap()
        # 2. a command encoder per group; a compute pass per dispatch (labelled), copies
        # between them; each group its own submission (GP-5)
        records = [r for group in groups for r in group]
        labels = [r.label for r in records if isinstance(r, DispatchRecord)] or ["copies"]
        self._push_scopes()
        try:
            for group in groups:
                encoder = self._device.createCommandEncoder()
                for rec in group:
                    if isinstance(rec, CopyRecord):
                        src, dst = rec.src, rec.dst
                        encoder.copyBufferToBuffer(
                            src.buffer, src.offset, dst.buffer, dst.offset, src.size
                        )
                    else:
                        self._encode_dispatch(encoder, rec, uniforms)
                self._queue.submit(_js([encoder.finish()]))
        finally:
            # 3. the uniform buffer is freed once the GPU is done with it
            self._pop_scopes(
                f"{len(groups)} submission(s) of {len(records)} commands "
                f"({labels[0]} .. {labels[-1]})"
            )
            if uniforms is not None:
                uniforms.destroy()

    def _encode_dispatch(self, encoder: Any, rec: DispatchRecord, uniforms: Any) -> None:
        entries = rec.bind_entries(uniforms)
        group = self._device.createBindGroup(_js({"layout": rec.pipeline[1], "entries": entries}))
        compute = encoder.beginComputePass(_js({"label": rec.label}))
        compute.setPipeline(rec.pipeline[0])
        compute.setBindGroup(0, group)
        compute.dispatchWorkgroups(*rec.grid)
        compute.end()

    async def _read_buffer(self, buffer: Any, offset: int, size: int) -> bytes:
        if not size:
            await self.check_errors()
            return b""
        # Copies must be multiples of 4 bytes; read the covering range, then trim.
        start, stop = offset // 4 * 4, -(-(offset + size) // 4) * 4
        staging = self._device.createBuffer(
            _js(
                {
                    "size": stop - start,
                    "usage": js.GPUBufferUsage.MAP_READ | js.GPUBufferUsage.COPY_DST,
                }
            )
        )
        try:
            encoder = self._device.createCommandEncoder()
            encoder.copyBufferToBuffer(buffer, start, staging, 0, stop - start)
            self._queue.submit(_js([encoder.finish()]))
            try:
                await self._await_gpu(staging.mapAsync(js.GPUMapMode.READ))
            except Exception as exc:
                await self.check_errors()
                raise GPUError(f"reading back {size} bytes failed: {exc}") from exc
            data = js.Uint8Array.new(staging.getMappedRange()).to_bytes()
            staging.unmap()
        finally:
            staging.destroy()
        await self.check_errors()
        return data[offset - start : offset - start + size]


def _adapter_name(adapter: Any) -> str:
    info = adapter.info
    parts = [info.vendor, info.architecture, info.device, info.description]
    name = " ".join(dict.fromkeys(str(p) for p in parts if p)) or "unknown adapter"
    return f"{name} (WebGPU{', fallback' if getattr(info, 'isFallbackAdapter', False) else ''})"


def _check_limits(adapter: Any) -> None:
    short = [
        f"{key} {getattr(adapter.limits, key)} < {need}"
        for key, need in REQUIRED_LIMITS.items()
        if getattr(adapter.limits, key) < need
    ]
    if short:
        raise GPUError(f"this GPU's WebGPU limits are too small for MobileSAM: {', '.join(short)}")


async def request_browser_device() -> BrowserDevice:
    """The browser's WebGPU device with the limits the device layer needs (GP-4)."""
    gpu = getattr(js.navigator, "gpu", None)
    if gpu is None or gpu is jsnull:
        raise GPUError(
            "this browser has no WebGPU (navigator.gpu): use a current Chrome, Edge or "
            "Firefox, over https or http://127.0.0.1"
        )
    adapter = await gpu.requestAdapter(_js({"powerPreference": "high-performance"}))
    if _absent(adapter):
        raise GPUError("WebGPU found no GPU adapter (is hardware acceleration turned off?)")
    _check_limits(adapter)
    features = [f for f in _OPTIONAL_FEATURES if adapter.features.has(f)]
    device = await adapter.requestDevice(
        _js({"requiredFeatures": features, "requiredLimits": REQUIRED_LIMITS, "label": "sandseg"})
    )
    return BrowserDevice(device, _adapter_name(adapter), frozenset(features))
