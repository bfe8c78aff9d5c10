"""Every kernel test runs on the guard-mode `device` fixture, whose sentinel bytes catch a
write past any output instead of WebGPU's silent clamping: that is GP-3's evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents and "device" in item.fixturenames:
            item.add_marker(pytest.mark.requirement("GP-3"))


@pytest.fixture
def subgroups(device):
    """The subgroup variants need the adapter's optional `subgroup` feature (lavapipe and
    SwiftShader have it); on an adapter without it they cannot run, and the skip says so."""
    from sandseg.ops.variants import SUBGROUP_FEATURES

    if not SUBGROUP_FEATURES & device.features:
        pytest.skip(f"SKIPPED LOUDLY: adapter {device.adapter_name} has no subgroups")
