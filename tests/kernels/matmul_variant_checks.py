"""The checks every variant of the fast matmul (sandseg.ops.variants.MATMUL) must pass, at
MobileSAM's shapes and awkward ones, in guard mode: test_matmul_tiled.py and
test_matmul_subgroup.py run them on their variants (SANDSEG_KERNELS pins each)."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg import ops
from tests import reference
from tests.gpu_helpers import assert_close, assert_split, split_and_whole, to_gpu
from tests.kernels.test_matmul import check_matmul, f32

# (M, K, N): model shapes small enough for the slowest variant on a CPU adapter, then shapes
# that end inside a tile in every direction (rows, columns, and K short of one K-tile).
SHAPES = [
    pytest.param(4900, 160, 480, id="layers.2-qkv-25-windows"),
    pytest.param(4096, 256, 128, id="decoder-k_proj-image-tokens"),
    pytest.param(7, 256, 2048, id="decoder-mlp-lin1-7-tokens"),
    pytest.param(1, 4, 4, id="smallest"),
    pytest.param(33, 12, 20, id="inside-one-tile"),
    pytest.param(130, 20, 68, id="one-past-128x64-tiles"),
    pytest.param(257, 36, 1028, id="past-1024-columns"),
]


def pin(monkeypatch, name: str) -> None:
    monkeypatch.setenv("SANDSEG_KERNELS", f"matmul={name}")


def check_shape(device, rng, monkeypatch, name, m, k, n):
    pin(monkeypatch, name)
    check_matmul(device, rng, (m, k), (k, n), with_bias=True)


def check_epilogue_and_batch(device, rng, monkeypatch, name):
    pin(monkeypatch, name)
    check_matmul(
        device, rng, (70, 64), (64, 36), act="gelu", alpha=0.5, with_bias=True, with_residual=True
    )
    check_matmul(device, rng, (3, 20, 8), (3, 8, 12), with_bias=True, with_residual=True)
    check_matmul(device, rng, (3, 20, 8), (8, 12), act="relu")  # B shared by the batch
    check_matmul(device, rng, (0, 8), (8, 12))


def check_split_by_rows(device, rng, monkeypatch, name):
    """GP-5: sliced by rows of workgroups (each slice from its own `row0`), bit for bit."""
    pin(monkeypatch, name)
    m, k, n = 1000, 12, 20
    a, b, bias, res = f32(rng, m, k), f32(rng, k, n), f32(rng, n), f32(rng, m, n)
    ga, gb, gbias, gres = (to_gpu(device, t) for t in (a, b, bias, res))

    def op():
        return ops.matmul(ga, gb, bias=gbias, residual=gres, act="gelu")

    expected, got, dispatches = split_and_whole(device, monkeypatch, op, None)
    assert_split(expected, got, dispatches, 2, 1000)
    want = reference.matmul(a, b, bias=bias, residual=res, act="gelu")
    assert_close(got, want, atol=2e-5 * np.sqrt(k), rtol=1e-5)
