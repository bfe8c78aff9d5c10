"""Shared fixtures. Three tiers (STYLE.md): no adapter, an adapter (`gpu` marker), a browser.

The GPU tier never skips quietly: with no WebGPU adapter the run fails and says how to get one.
"""

from __future__ import annotations

import numpy as np
import pytest

np.seterr(all="raise")


@pytest.fixture(scope="session")
def device():
    from sandseg.gpu import GPUError, get_device

    try:
        dev = get_device()
    except GPUError as exc:
        pytest.fail(f"GPU tier cannot run: {exc}", pytrace=False)
    dev.guard_bytes = 1024
    return dev


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
        if "device" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.gpu)
