"""Fixtures shared by the API tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A minimal web bundle: the API tests need the app, not the page."""
    root = tmp_path_factory.mktemp("bundle")
    (root / "index.html").write_text("<!doctype html><title>sandseg</title>")
    return root
