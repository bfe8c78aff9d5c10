"""Shared fixtures. Three tiers (STYLE.md): no adapter, an adapter (`gpu` marker), a browser.

The GPU tier never skips quietly: with no WebGPU adapter the run fails and says how to get one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

np.seterr(all="raise")

# sandseg's caches (converted weights, exported ONNX graphs) go to a folder of this run, never
# to the user's ~/.cache; servers the tests start inherit it. Tests that need another one set
# SANDSEG_HOME themselves.
_SANDSEG_HOME = os.environ["SANDSEG_HOME"] = tempfile.mkdtemp(prefix="sandseg-test-home-")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SANDSEG_HOME, ignore_errors=True)


# The reliability report: `requirement` markers and the `evidence` fixture.
pytest_plugins = ["tests.reliability.plugin"]


@pytest.fixture(scope="session")
def gpu_device():
    """The process-wide device; a missing adapter fails the test, loudly."""
    from sandseg.gpu import GPUError, get_device

    try:
        return get_device()
    except GPUError as exc:
        pytest.fail(f"GPU tier cannot run: {exc}", pytrace=False)


@pytest.fixture
def device(gpu_device, monkeypatch):
    """The device in guard mode: stray writes past any output are caught (GP-3). Every
    dispatch's packed parameters are checked against its kernel's `struct Params`."""
    from tests.gpu_helpers import check_params_packing

    dispatch = gpu_device.dispatch

    def checked_dispatch(kernel, inputs, outputs, params, *args, **kwargs):
        check_params_packing(kernel, params)
        return dispatch(kernel, inputs, outputs, params, *args, **kwargs)

    monkeypatch.setattr(gpu_device, "dispatch", checked_dispatch)
    gpu_device.guard_bytes = 1024
    yield gpu_device
    gpu_device.guard_bytes = 0


CONFORMANCE = Path(__file__).resolve().parents[1].parent / "shared" / "conformance"


def require(name: str) -> Path:
    """A file of ../shared/conformance; missing -> the test fails, saying which."""
    path = CONFORMANCE / name
    if not path.is_file():
        pytest.fail(f"conformance file {path} is missing: the model tier cannot run", pytrace=False)
    return path


@pytest.fixture(scope="session")
def reference() -> dict[str, np.ndarray]:
    """The official outputs for picture1.jpg (seeded random weights)."""
    with np.load(require("picture1_seed1234.npz")) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def converted_weights(tmp_path_factory) -> Path:
    """The conformance .pt converted through `sandseg convert` (the CLI, as users run it)."""
    from sandseg.cli import main

    out = tmp_path_factory.mktemp("weights") / "mobile_sam.safetensors"
    assert main(["convert", str(require("mobile_sam_seed1234.pt")), str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def converted_weights_f16(tmp_path_factory) -> Path:
    """The same checkpoint through `sandseg convert --dtype float16`: what the page downloads."""
    from sandseg.cli import main

    out = tmp_path_factory.mktemp("weights_f16") / "mobile_sam_f16.safetensors"
    src = require("mobile_sam_seed1234.pt")
    assert main(["convert", "--dtype", "float16", str(src), str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def predictor(gpu_device, converted_weights):
    from sandseg import Predictor

    return Predictor.from_weights(converted_weights, gpu_device)


@pytest.fixture(scope="session")
def offload_engine(gpu_device, converted_weights):
    """The server's model (its own GPU thread), profiled once as `sandseg serve` does."""
    from sandseg.server.engine import Engine

    engine = Engine(converted_weights)
    engine.profile = engine.measure(repeat=1)
    yield engine
    engine.close()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def pytest_report_header(config: pytest.Config) -> list[str]:
    try:
        from sandseg.gpu import get_device

        return [f"GPU tier adapter: {get_device().adapter_name}"]
    except Exception as exc:  # the header must not hide the real failure in the fixture
        return [f"GPU tier adapter: NONE ({exc})"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if {"device", "gpu_device"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.gpu)
