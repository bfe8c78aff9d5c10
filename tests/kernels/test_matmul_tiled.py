"""matmul_tiled (workgroup-memory tiles) against reference.matmul, each tile configuration."""

from __future__ import annotations

import pytest

from tests.kernels import matmul_variant_checks as checks

VARIANTS = ["tiled64", "tiled128x64"]


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize(("m", "k", "n"), checks.SHAPES)
def test_matmul_tiled_model_and_awkward_shapes(device, rng, monkeypatch, name, m, k, n):
    checks.check_shape(device, rng, monkeypatch, name, m, k, n)


@pytest.mark.parametrize("name", VARIANTS)
def test_matmul_tiled_epilogue_batch_and_empty(device, rng, monkeypatch, name):
    checks.check_epilogue_and_batch(device, rng, monkeypatch, name)


@pytest.mark.parametrize("name", VARIANTS)
def test_matmul_tiled_split_by_rows(device, rng, monkeypatch, name):
    checks.check_split_by_rows(device, rng, monkeypatch, name)
