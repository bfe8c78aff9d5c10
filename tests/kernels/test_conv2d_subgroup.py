"""conv2d_subgroup (weights shared by subgroup broadcasts) against reference.conv.conv2d: the
blocked-path tests of test_conv2d.py (MobileSAM's convolutions, awkward shapes, epilogues, a
grid spilling into y) with this variant pinned, and GP-5's split, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.ops.conv import conv2d
from tests.gpu_helpers import assert_close, assert_split, split_and_whole, to_gpu
from tests.kernels import test_conv2d as blocked_path
from tests.reference import conv as ref


@pytest.fixture(autouse=True)
def subgroup_kernel(subgroups, monkeypatch):
    monkeypatch.setenv("SANDSEG_KERNELS", "conv2d=subgroup")


test_conv2d_subgroup_patch_embed_first_conv = (
    blocked_path.test_conv2d_patch_embed_first_conv_full_size
)
test_conv2d_subgroup_mobilesam_shapes = blocked_path.test_conv2d_mobilesam_shapes
test_conv2d_subgroup_awkward_shapes = blocked_path.test_conv2d_awkward_shapes
test_conv2d_subgroup_fused_epilogue = blocked_path.test_conv2d_fused_epilogue
test_conv2d_subgroup_without_bias = blocked_path.test_conv2d_without_bias
test_conv2d_subgroup_spills_into_grid_y = blocked_path.test_conv2d_many_workgroups_spill_into_grid_y


def test_conv2d_subgroup_split_by_workgroups(device, rng, monkeypatch):
    """Every workgroup its own dispatch (each from its own `first`), bit for bit; 20 output
    channels: two channel blocks per pixel block, the second of 4 channels."""
    x = rng.standard_normal((40, 30, 16)).astype(np.float32)
    w = rng.standard_normal((3, 3, 16, 20)).astype(np.float32) * 0.1
    gx, gw = to_gpu(device, x), to_gpu(device, w)
    expected, got, dispatches = split_and_whole(
        device, monkeypatch, lambda: conv2d(gx, gw, stride=2, padding=1, act="gelu"), None
    )
    assert_split(expected, got, dispatches, 2, 10**6)
    want = ref.conv2d(x, w, stride=2, padding=1, act="gelu")
    assert_close(got, want, atol=1e-4, rtol=1e-4)
