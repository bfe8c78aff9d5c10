"""Fixtures for model tests: the conformance vector of the official implementation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"


def _require(name: str) -> Path:
    path = CONFORMANCE / name
    if not path.is_file():
        pytest.fail(f"conformance file {path} is missing: the model tier cannot run", pytrace=False)
    return path


@pytest.fixture(scope="session")
def reference() -> dict[str, np.ndarray]:
    with np.load(_require("picture1_seed1234.npz")) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def stages() -> dict[str, np.ndarray]:
    with np.load(_require("picture1_seed1234_encoder_stages.npz")) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def common() -> dict[str, np.ndarray]:
    with np.load(_require("common_seed1234.npz")) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def converted_weights(tmp_path_factory) -> Path:
    """The conformance .pt converted through `sandseg convert` (the CLI, as users run it)."""
    from sandseg.cli import main

    out = tmp_path_factory.mktemp("weights") / "mobile_sam.safetensors"
    assert main(["convert", str(_require("mobile_sam_seed1234.pt")), str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def predictor(gpu_device, converted_weights):
    from sandseg import Predictor

    return Predictor.from_weights(converted_weights, gpu_device)


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
