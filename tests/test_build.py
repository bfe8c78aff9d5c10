"""build.py without a browser: the bundle's files, their pins, the lock file, determinism, and
the refusals (no npm, a tarball that is not the pinned release)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = [sys.executable, str(ROOT / "build.py")]
EXPECTED = {
    "index.html",
    "client.js",
    "worker.js",
    "pyodide/pyodide.mjs",
    "pyodide/pyodide.asm.mjs",
    "pyodide/pyodide.asm.wasm",
    "pyodide/python_stdlib.zip",
    "pyodide/pyodide-lock.json",
}


def run_build(out: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [*BUILD, "--out", str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build") / "dist"
    log = run_build(out)
    assert "bundle ready" in log and "integrity ok" in log
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bundle_pins_every_file(bundle: Path) -> None:
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["pyodide_version"] == "314.0.7"
    files = manifest["files"]
    on_disk = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert set(files) == on_disk - {"bundle.json"}
    assert EXPECTED | {f"pyodide/{manifest['wheel']}"} <= set(files)
    for name, digest in files.items():
        assert sha256(bundle / name) == digest, name
    for page in ("index.html", "client.js", "worker.js"):
        assert (bundle / page).read_bytes() == (ROOT / "web" / page).read_bytes()


# The page's test hooks (a lost GPU device, GPU errors, a blocked worker: web/testing/).
TEST_HOOKS = re.compile(r"\w+ForTesting|\b(?:hang|loseDevice|provokeGpuErrors)\b")


def load_build_module():
    spec = importlib.util.spec_from_file_location("sandseg_build_script", ROOT / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bundle_ships_every_page_file_and_no_test_hooks(bundle: Path) -> None:
    files = json.loads((bundle / "bundle.json").read_text())["files"]
    web = [p for p in (ROOT / "web").iterdir() if p.suffix in (".html", ".js", ".css")]
    assert {p.name for p in web} <= set(files)
    for path in web:
        assert (bundle / path.name).read_bytes() == path.read_bytes(), path.name
    hooks = {p.name: TEST_HOOKS.findall(p.read_text()) for p in bundle.glob("*.*js")}
    assert not any(hooks.values()), f"the production bundle has test hooks: {hooks}"


def test_a_test_bundle_adds_the_hooks_to_client_and_worker(tmp_path: Path) -> None:
    load_build_module().copy_web(tmp_path, test_hooks=True)
    for name, hooks in {
        "client.js": {"loseDeviceForTesting", "provokeGpuErrorsForTesting", "hangForTesting"},
        "worker.js": {"loseDevice", "provokeGpuErrors", "hang"},
    }.items():
        text = (tmp_path / name).read_text()
        assert text.startswith((ROOT / "web" / name).read_text())
        assert hooks <= set(TEST_HOOKS.findall(text)), name


def test_wheel_carries_the_shaders_and_the_lock_file_pins_it(bundle: Path) -> None:
    manifest = json.loads((bundle / "bundle.json").read_text())
    wheel = bundle / "pyodide" / manifest["wheel"]
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert {f"sandseg/shaders/{p.name}" for p in (ROOT / "shaders").glob("*.wgsl")} <= names
    assert {"sandseg/browser/session.py", "sandseg/gpu/browser.py"} <= names
    lock = json.loads((bundle / "pyodide" / "pyodide-lock.json").read_text())
    entry = lock["packages"]["sandseg"]
    assert entry["file_name"] == wheel.name
    assert entry["sha256"] == sha256(wheel)
    assert entry["depends"] == []


def test_build_is_deterministic(bundle: Path, tmp_path: Path) -> None:
    again = tmp_path / "dist"
    run_build(again)
    assert (again / "bundle.json").read_bytes() == (bundle / "bundle.json").read_bytes()


def test_refuses_to_clobber_a_folder_that_is_no_bundle(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = subprocess.run(
        [*BUILD, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "not a bundle" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_without_npm_says_how_to_get_it(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path / "empty-bin")}
    result = subprocess.run(
        [*BUILD, "--out", str(tmp_path / "dist"), "--cache", str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert "npm is not installed" in result.stderr and "apt-get install npm" in result.stderr
    assert not (tmp_path / "dist").exists()


def test_refuses_a_tarball_that_is_not_the_pinned_release(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "pyodide-314.0.7.tgz").write_bytes(b"not the release")
    result = subprocess.run(
        [*BUILD, "--out", str(tmp_path / "dist"), "--cache", str(cache)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "integrity" in result.stderr and "deleted" in result.stderr
    assert not (cache / "pyodide-314.0.7.tgz").exists()
    assert not (tmp_path / "dist").exists()
