"""matmul_subgroup (slabs of B shared by subgroup broadcasts) against reference.matmul."""

from __future__ import annotations

import pytest

from tests.kernels import matmul_variant_checks as checks

VARIANTS = ["subgroup", "subgroup8"]


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize(("m", "k", "n"), checks.SHAPES)
def test_matmul_subgroup_model_and_awkward_shapes(
    device, subgroups, rng, monkeypatch, name, m, k, n
):
    checks.check_shape(device, rng, monkeypatch, name, m, k, n)


@pytest.mark.parametrize("name", VARIANTS)
def test_matmul_subgroup_epilogue_batch_and_empty(device, subgroups, rng, monkeypatch, name):
    checks.check_epilogue_and_batch(device, rng, monkeypatch, name)


@pytest.mark.parametrize("name", VARIANTS)
def test_matmul_subgroup_split_by_rows(device, subgroups, rng, monkeypatch, name):
    checks.check_split_by_rows(device, rng, monkeypatch, name)
