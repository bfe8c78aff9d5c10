from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandseg.weights import HostTensor, read_pt

# The shared conformance vectors live next to the project root (see its README).
CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
TORCH_DTYPES = {"float32": "F32", "int64": "I64"}


@pytest.fixture(scope="session")
def mobile_sam_pt() -> Path:
    path = CONFORMANCE / "mobile_sam_seed1234.pt"
    assert path.is_file(), f"conformance checkpoint missing: {path}"
    return path


@pytest.fixture(scope="session")
def official_layout() -> list[tuple[str, tuple[int, ...], str]]:
    """The official checkpoint's ordered (key, shape, safetensors dtype) list."""
    entries = json.loads((CONFORMANCE / "mobile_sam.keys.json").read_text())
    return [(name, tuple(shape), TORCH_DTYPES[dtype]) for name, shape, dtype in entries]


@pytest.fixture(scope="session")
def mobile_sam_tensors(mobile_sam_pt: Path) -> dict[str, HostTensor]:
    return read_pt(mobile_sam_pt)
