"""The device layer's own contracts: recording, pooling, errors that name the kernel."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sandseg import ops
from sandseg.gpu import GPUError
from sandseg.gpu import device as device_module
from sandseg.ops import variants
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


# -- pacing (GP-5): submissions of about `submission_target_s` each ---------------------------


def paced(device, monkeypatch, budget: float | None = None) -> None:
    """Pacing on, with no rate learned yet and, if given, a fixed work budget."""
    monkeypatch.setattr(device, "submission_target_s", 0.05)
    monkeypatch.setattr(device, "_rates", device_module.deque(maxlen=device_module.RATE_SAMPLES))
    if budget is not None:
        monkeypatch.setattr(device, "work_budget", lambda: budget)


def test_paced_work_goes_as_submissions_of_at_most_the_budget(gpu_device, rng, monkeypatch):
    x = to_gpu(gpu_device, rng.standard_normal((64, 64)).astype(np.float32))
    one_add = 3 * x.nbytes * device_module.BYTE_WORK  # two inputs and an output
    paced(gpu_device, monkeypatch, budget=3.5 * one_add)
    before = gpu_device.submit_count
    y = x
    for _ in range(10):
        y = ops.add(y, x)
    done = asyncio.run(gpu_device.finish())
    assert [s.work for s in done] == [3 * one_add, 3 * one_add, 3 * one_add, one_add]
    assert done[0].label == "elementwise .. elementwise (3 commands)"
    assert all(s.seconds > 0 for s in done)
    assert gpu_device.submit_count == before + 4
    np.testing.assert_allclose(from_gpu(y), 11 * from_gpu(x), rtol=1e-6)


def test_submit_cuts_at_the_budget_too(gpu_device, rng, monkeypatch):
    # A read-back submits without waiting in between: still one command buffer per budget.
    x = to_gpu(gpu_device, rng.standard_normal((64, 64)).astype(np.float32))
    paced(gpu_device, monkeypatch, budget=1.0)  # below one add: each its own submission
    before = gpu_device.submit_count
    y = ops.add(ops.add(x, x), x)
    np.testing.assert_allclose(from_gpu(y), 3 * from_gpu(x), rtol=1e-6)
    assert gpu_device.submit_count == before + 2


def test_the_budget_follows_the_measured_rate(gpu_device, rng, monkeypatch):
    monkeypatch.setenv("SANDSEG_KERNELS", "matmul=blocked")  # its rows of workgroups below
    paced(gpu_device, monkeypatch)
    assumed = device_module.ASSUMED_WORK_RATE * 0.05
    assert gpu_device.work_budget() == assumed
    a = to_gpu(gpu_device, rng.standard_normal((1024, 1024)).astype(np.float32))
    # The product's unit of slicing: one row of workgroups (32 rows in all), never cut.
    row = 2 * 1024**3 / (1024 // variants.variant("matmul", "blocked").rows)
    for _ in range(3):
        # The budget when the work is recorded cuts it; `finish` then learns a new one, which
        # moves with the machine's load. A regression: this compared with the new budget,
        # which a busy machine learns lower, so the earlier cut looked too coarse.
        budget = gpu_device.work_budget()
        ops.matmul(a, a)  # 2.1 GFLOP each: split into dispatches of about the budget
        done = asyncio.run(gpu_device.finish())
        # Equal ranges of whole rows, as many as budgets of work: each at most one row over.
        assert len(done) > 1 and all(s.work <= (budget + row) * 1.001 for s in done[:-1])
    full = [s.work / s.seconds for s in done if s.work >= budget / 2]
    # Every full submission taught the device its rate; the budget is their lower quartile's.
    rates = sorted(gpu_device._rates)
    assert len(rates) == device_module.RATE_SAMPLES and full
    assert gpu_device.work_rate() == rates[2]
    assert gpu_device.work_budget() == pytest.approx(rates[2] * 0.05)
    assert gpu_device.work_budget() != assumed
    # The learned rate is the machine's own: that of the same product unsplit, timed now
    # (within 4x either way: a second busy process slows both, at moments of its choosing).
    monkeypatch.setattr(gpu_device, "submission_target_s", None)
    ops.matmul(a, a)
    [whole] = asyncio.run(gpu_device.finish())
    assert whole.work / 4 < gpu_device.work_rate() * whole.seconds < whole.work * 4


def test_without_a_target_nothing_is_cut(gpu_device, rng, monkeypatch):
    monkeypatch.setenv("SANDSEG_KERNELS", "matmul=blocked")  # no tuning dispatches counted
    assert gpu_device.submission_target_s is None and gpu_device.work_budget() is None
    a = to_gpu(gpu_device, rng.standard_normal((512, 512)).astype(np.float32))
    before = gpu_device.dispatch_count
    ops.matmul(a, a)
    done = asyncio.run(gpu_device.finish())
    assert gpu_device.dispatch_count == before + 1 and len(done) == 1
