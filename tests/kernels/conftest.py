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
