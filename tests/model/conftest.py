"""Fixtures for model tests: the conformance vector of the official implementation."""

from __future__ import annotations

import numpy as np
import pytest

from ..conftest import require as _require


@pytest.fixture(scope="session")
def stages() -> dict[str, np.ndarray]:
    with np.load(_require("picture1_seed1234_encoder_stages.npz")) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def common() -> dict[str, np.ndarray]:
    with np.load(_require("common_seed1234.npz")) as data:
        return {k: data[k] for k in data.files}


def rel_l2(got: np.ndarray, want: np.ndarray) -> float:
    got, want = got.astype(np.float64), want.astype(np.float64)
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def describe(got: np.ndarray, want: np.ndarray) -> str:
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    at = np.unravel_index(np.argmax(diff), diff.shape)
    return (
        f"rel L2 {rel_l2(got, want):.2e}, max abs {diff.max():.2e} at {at}; "
        f"first values got {got.ravel()[:4]}, want {want.ravel()[:4]}"
    )


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
