"""The device layer's own contracts: recording, pooling, errors that name the kernel."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg import ops
from sandseg.gpu import GPUError
from sandseg.gpu import device as device_module
from tests.gpu_helpers import from_gpu, to_gpu


def test_many_dispatches_are_one_submission(gpu_device, rng):
    x = to_gpu(gpu_device, rng.standard_normal((64, 64)).astype(np.float32))
    before = gpu_device.submit_count
    y = x
    for _ in range(10):
        y = ops.add(y, x)
    assert gpu_device.submit_count == before, "recording must not submit"
    np.testing.assert_allclose(from_gpu(y), 11 * from_gpu(x), rtol=1e-6)
    assert gpu_device.submit_count == before + 1


def test_pool_surplus_released_mid_recording_is_not_destroyed_early(gpu_device, rng, monkeypatch):
    """Regression: the pool destroyed surplus buffers that recorded, not yet submitted,
    dispatches still used ("Buffer has been destroyed" at submit)."""
    monkeypatch.setattr(device_module, "POOL_KEEP_BYTES", 0)
    x = to_gpu(gpu_device, rng.standard_normal((256, 256)).astype(np.float32))
    y = ops.add(x, x)
    for _ in range(3):
        y = ops.add(y, x)  # each step frees the previous y while its dispatch is pending
    np.testing.assert_allclose(from_gpu(y), 5 * from_gpu(x), rtol=1e-6)


def test_buffers_are_reused_through_the_pool(gpu_device):
    first = gpu_device.empty((1000,))
    buffer = first.buffer
    del first
    assert gpu_device.empty((1000,)).buffer is buffer


def test_grid_over_the_workgroup_limit_names_the_kernel(gpu_device):
    x = gpu_device.empty((4,))
    with pytest.raises(GPUError, match=r"elementwise\(4.*exceeds 65535"):
        gpu_device.dispatch("elementwise", [x], [x], b"\0" * 16, (70000, 1, 1))


def test_unknown_kernel_is_a_clear_error(gpu_device):
    x = gpu_device.empty((4,))
    with pytest.raises(GPUError, match="no_such_kernel"):
        gpu_device.dispatch("no_such_kernel", [x], [x], b"\0" * 16, (1, 1, 1))


def test_no_adapter_fails_with_how_to_install_one(monkeypatch):
    import wgpu

    from sandseg.gpu.native import request_native_device

    monkeypatch.setattr(wgpu.gpu, "request_adapter_sync", lambda **kw: None)
    with pytest.raises(GPUError, match="mesa-vulkan-drivers"):
        request_native_device()


def test_upload_checks_its_size(gpu_device):
    with pytest.raises(ValueError, match="needs 16 bytes"):
        gpu_device.upload(b"\0" * 12, (4,))
