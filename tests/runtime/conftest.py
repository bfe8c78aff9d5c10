"""Fixtures of the runtime tests: the stage graphs exported once per session, the runtimes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def graphs(converted_weights, onnx_cache):
    from sandseg.export import stage_graphs

    return stage_graphs(converted_weights, onnx_cache)


@pytest.fixture(scope="session")
def ort_runtime(graphs):
    from sandseg.runtime.ort_runtime import OrtRuntime

    return OrtRuntime(graphs)


@pytest.fixture(scope="session")
def wgpu_runtime(predictor):
    from sandseg.runtime.wgpu_runtime import WgpuRuntime

    return WgpuRuntime(predictor)


@pytest.fixture(scope="session")
def encoder_stages() -> dict[str, np.ndarray]:
    """The official boundary tensors of picture1, channels-last: `x` entering each stage,
    by stage name, and "embeddings"."""
    with np.load(require("picture1_seed1234_encoder_stages.npz")) as data:
        tokens = {k: data[k] for k in data.files}
    with np.load(require("picture1_seed1234.npz")) as data:
        image = data["input_tensor"][0].transpose(1, 2, 0)
    return {
        "patch_embed": image,
        "layers.0": tokens["patch_embed"][0].transpose(1, 2, 0),
        "layers.1": tokens["layers_0"].reshape(128, 128, 128),
        "layers.2": tokens["layers_1"].reshape(64, 64, 160),
        "layers.3": tokens["layers_2"].reshape(64, 64, 320),
        "neck": tokens["layers_3"].reshape(64, 64, 320),
        "embeddings": tokens["neck"][0].transpose(1, 2, 0),
    }


@pytest.fixture(scope="session")
def dogs() -> dict[str, np.ndarray]:
    """The official outputs for the landscape photo dogs.jpg (1072 x 603)."""
    with np.load(require("dogs_seed1234.npz")) as data:
        return {k: data[k] for k in data.files}
