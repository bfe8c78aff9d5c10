"""Fixtures for the mask generator: the official generator's outputs (configs A and B)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from ..conftest import require


def load_case(name: str) -> dict[str, Any]:
    """amg_seed1234_picture1_<name>.npz: arrays and the generator's `config` keyword args."""
    with np.load(require(f"amg_seed1234_picture1_{name}.npz")) as data:
        case: dict[str, Any] = {k: data[k] for k in data.files if k != "config"}
        case["config"] = json.loads(str(data["config"]))
    return case


@pytest.fixture(scope="session")
def picture1(reference) -> np.ndarray:
    """picture1.jpg as the official code decoded it, (770, 769, 3) uint8."""
    return reference["image_rgb"]
