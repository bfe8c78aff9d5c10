"""scripts/run.sh chooses the weights as `sandseg serve` does, with the demo weights beside the
repository as the last resort (issue 17, item 1). Run on a copy of the script whose setup,
build and `sandseg` are stand-ins that print what they were given."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "run.sh"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, root / "scripts" / "run.sh")
    (root / "scripts" / "setup.sh").write_text("exit 0\n")
    (root / "build.py").write_text("")
    venv = root / ".venv" / "bin"
    venv.mkdir(parents=True)
    for name, body in [("python", "exit 0"), ("sandseg", 'echo "$@"')]:
        (venv / name).write_text(f"#!/bin/sh\n{body}\n")
        (venv / name).chmod(0o755)
    return root


def run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = ["bash", str(repo / "scripts" / "run.sh"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def test_without_weights_serve_chooses_with_the_demo_weights_as_fallback(repo) -> None:
    demo = repo.parent / "shared" / "conformance" / "mobile_sam_seed1234.pt"
    demo.parent.mkdir(parents=True)
    demo.write_bytes(b"")
    for args in [(), ("--port", "9000")]:
        served = run(repo, *args).stdout.split()
        assert served[:2] == ["serve", "--fallback-weights"], served
        assert Path(served[2]).resolve() == demo.resolve()
        assert served[3:] == list(args)


def test_without_the_demo_weights_serve_alone_decides(repo) -> None:
    assert run(repo, "--port", "9000").stdout.split() == ["serve", "--port", "9000"]


def test_given_weights_are_served(repo, tmp_path) -> None:
    weights = tmp_path / "mobile_sam.pt"
    weights.write_bytes(b"")
    served = run(repo, str(weights), "--port", "1").stdout.split()
    assert served == ["serve", "--weights", str(weights), "--port", "1"]
    missing = run(repo, str(tmp_path / "none.pt"))
    assert missing.returncode == 1 and "run: no weights at" in missing.stderr
