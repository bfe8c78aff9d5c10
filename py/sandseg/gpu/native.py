"""The native backend: WebGPU through wgpu-py (Vulkan, Metal, D3D12; lavapipe in CI).

The only module that imports wgpu. Mirrors browser.py call for call.
"""

from __future__ import annotations

from typing import Any

import wgpu

from .device import CopyRecord, Device, DispatchRecord, GPUError, Record

_STORAGE = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST
_OPTIONAL_FEATURES = ("shader-f16", "subgroup", "timestamp-query")


class NativeDevice(Device):
    def __init__(self, adapter: Any) -> None:
        features = [f for f in _OPTIONAL_FEATURES if f in adapter.features]
        # Ask for WebGPU's default limits only (GP-4): what runs here runs in any browser.
        self._device = adapter.request_device_sync(required_features=features, required_limits={})
        self._queue = self._device.queue
        info = adapter.info
        name = f"{info['device']} ({info['backend_type']}, {info['adapter_type']})"
        super().__init__(name, frozenset(features))
        # What the tuning table is keyed by: the same adapter under another driver or
        # compiler may favour other kernels.
        self.adapter_key = f"{name}; {info['description']}; wgpu-py {wgpu.__version__}"

    def _create_buffer(self, size: int) -> Any:
        return self._device.create_buffer(size=size, usage=_STORAGE)

    def _destroy_buffer(self, buffer: Any) -> None:
        buffer.destroy()

    def _write_buffer(self, buffer: Any, offset: int, data: bytes | memoryview) -> None:
        self._queue.write_buffer(buffer, offset, data)

    def _create_pipeline(
        self, kernel: str, source: str, constants: dict[str, float], n_in: int, n_out: int
    ) -> Any:
        kinds = ["read-only-storage"] * n_in + ["storage"] * n_out
        entries = [
            {"binding": i, "visibility": wgpu.ShaderStage.COMPUTE, "buffer": {"type": kind}}
            for i, kind in enumerate([*kinds, "uniform"])
        ]
        group_layout = self._device.create_bind_group_layout(label=kernel, entries=entries)
        # Deviation from WebGPU: naga compiles subgroup built-ins once the device has the
        # feature but rejects the `enable subgroups;` directive browsers require (wgpu#5555).
        source = source.replace("enable subgroups;", "")
        module = self._device.create_shader_module(label=kernel, code=source)
        pipeline = self._device.create_compute_pipeline(
            label=kernel,
            layout=self._device.create_pipeline_layout(bind_group_layouts=[group_layout]),
            compute={"module": module, "entry_point": "main", "constants": constants},
        )
        return pipeline, group_layout

    def _submit(self, groups: list[list[Record]], params: bytes) -> None:
        uniforms = None
        if params:
            uniforms = self._device.create_buffer_with_data(
                data=params, usage=wgpu.BufferUsage.UNIFORM
            )
        for records in groups:
            encoder = self._device.create_command_encoder()
            for rec in records:
                if isinstance(rec, CopyRecord):
                    src, dst = rec.src, rec.dst
                    encoder.copy_buffer_to_buffer(
                        src.buffer, src.offset, dst.buffer, dst.offset, src.size
                    )
                else:
                    self._encode_dispatch(encoder, rec, uniforms)
            self._queue.submit([encoder.finish()])

    def _encode_dispatch(self, encoder: Any, rec: DispatchRecord, uniforms: Any) -> None:
        entries = rec.bind_entries(uniforms)
        try:
            group = self._device.create_bind_group(layout=rec.pipeline[1], entries=entries)
        except Exception as exc:
            raise GPUError(f"{rec.label}: bindings do not match the kernel: {exc}") from exc
        compute = encoder.begin_compute_pass(label=rec.label)
        compute.set_pipeline(rec.pipeline[0])
        compute.set_bind_group(0, group)
        compute.dispatch_workgroups(*rec.grid)
        compute.end()

    async def _read_buffer(self, buffer: Any, offset: int, size: int) -> bytes:
        return self._queue.read_buffer(buffer, offset, size).tobytes() if size else b""

    def read_sync(self, tensor: Any) -> bytes:
        """Native-only convenience: a blocking read-back (the browser path is always async)."""
        self.submit()
        if not tensor.nbytes:
            return b""
        return self._queue.read_buffer(tensor.buffer, tensor.offset, tensor.nbytes).tobytes()

    async def _all_done(self) -> None:
        self._wait_submitted()

    def wait_idle(self) -> None:
        """Block until all submitted work is done (benchmarks time with this)."""
        self.submit()
        self._wait_submitted()

    def _wait_submitted(self) -> None:
        # A read-back waits for all earlier work. (wgpu-py 0.32's on_submitted_work_done has a
        # broken callback signature, so it cannot be used.)
        self._queue.read_buffer(self._dummy.buffer, 0, 4)


def request_native_device() -> NativeDevice:
    adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
    if adapter is None:
        raise GPUError(
            "no WebGPU adapter found. On Debian install Mesa's software Vulkan driver "
            "(sudo apt-get install mesa-vulkan-drivers) or a GPU driver with Vulkan support"
        )
    return NativeDevice(adapter)
