"""CV-1 / SV-8: no unsafe deserialisation anywhere in the package sources."""

from __future__ import annotations

from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "py"
FORBIDDEN = (
    "torch.load",
    "pickle.load(",
    "pickle.loads(",
    "allow_pickle=True",
    "weights_only=False",
    "cloudpickle",
)


def find_forbidden(root: Path) -> list[str]:
    hits = []
    for path in sorted(root.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            hits += [f"{path}:{number}: {text}" for text in FORBIDDEN if text in line]
    return hits


def test_package_sources_exist() -> None:
    assert any(PACKAGE_ROOT.rglob("*.py")), f"no sources found under {PACKAGE_ROOT}"


@pytest.mark.requirement("CV-1", "SV-8")
def test_no_forbidden_deserialisation_calls() -> None:
    hits = find_forbidden(PACKAGE_ROOT)
    assert not hits, "unsafe deserialisation in the package:\n" + "\n".join(hits)


def test_scanner_reports_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("import numpy as np\nx = np.load(f, allow_pickle=True)\n")
    assert find_forbidden(tmp_path) == [f"{tmp_path / 'bad.py'}:2: allow_pickle=True"]
