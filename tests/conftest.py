"""Shared fixtures. Three tiers (STYLE.md): no adapter, an adapter (`gpu` marker), a browser.

The GPU tier never skips quietly: with no WebGPU adapter the run fails and says how to get one.
"""

from __future__ import annotations

import numpy as np
import pytest

np.seterr(all="raise")


@pytest.fixture(scope="session")
def gpu_device():
    """The process-wide device; a missing adapter fails the test, loudly."""
    from sandseg.gpu import GPUError, get_device

    try:
        return get_device()
    except GPUError as exc:
        pytest.fail(f"GPU tier cannot run: {exc}", pytrace=False)


@pytest.fixture
def device(gpu_device):
    """The device in guard mode: stray writes past any output are caught (GP-3)."""
    gpu_device.guard_bytes = 1024
    yield gpu_device
    gpu_device.guard_bytes = 0


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
