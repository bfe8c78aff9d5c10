"""Build the static web bundle into web/dist/ (git-ignored): `python build.py [--out DIR]`.

What goes in (every file pinned by sha256 in bundle.json, WB-2):

    index.html *.js *.css                         web/'s top-level files, unchanged
    pyodide/pyodide.mjs pyodide.asm.mjs            Pyodide's core, from the npm package at a
    pyodide/pyodide.asm.wasm python_stdlib.zip     pinned version whose integrity is checked
    pyodide/sandseg-<version>-py3-none-any.whl     our pure-Python wheel, shaders inside
    pyodide/pyodide-lock.json                      Pyodide's lock file with our wheel added
    ort/ort.wasm.min.mjs ort-wasm-simd-threaded.*  onnxruntime-web's WASM backend only, from
                                                   the npm package at a pinned version whose
                                                   integrity is checked (the worker loads it
                                                   only for the wasm runtime, RT-2)
    samples/*.jpg                                  ../shared/images, when that folder exists
    bundle.json                                    {"pyodide_version", "ort_version", "wheel",
                                                   "files"}

`--test-hooks` builds a test bundle for the browser tests: each web/testing/NAME.js is appended
to NAME.js (client.js and worker.js gain requests that provoke failures on purpose: a lost GPU
device, GPU errors, a blocked worker). The default, production bundle has none of them.

The same inputs give a byte-identical bundle: the wheel is built with a fixed
SOURCE_DATE_EPOCH and bundle.json is sorted. The npm tarball is kept in .cache/ (git-ignored),
so only the first build needs the registry.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "py"))
from sandseg.bench.npm import (  # noqa: E402
    ORT_WEB_VERSION,
    NpmFetchError,
    fetch_ort_web,
    npm_pack,
)

PYODIDE_VERSION = "314.0.7"
# `npm view pyodide@314.0.7 dist.integrity`: the registry's sha512 of the tarball.
PYODIDE_INTEGRITY = (
    "sha512-0YvXxEhfEdpLfb/XkM2BFAeMROq0iMUX2bzzH9pOttyMcWkwq+HbE5uyuGD82LN7y2q+SNvi/6V5JEsOlD2R1A"
    "=="
)
PYODIDE_FILES = (
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
)
# onnxruntime-web's WASM backend (CPU): the module, its Emscripten glue and the binary, from
# package/dist/. Nothing of its WebGPU/WebGL builds ships.
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
WEB_SUFFIXES = (".html", ".js", ".css")
# 1980-01-01, the earliest time a zip file can record: wheel builds become reproducible.
SOURCE_DATE_EPOCH = "315532800"


class BuildError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"build: {message}", flush=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_pyodide(cache: Path) -> Path:
    """The npm tarball of pyodide@PYODIDE_VERSION, downloaded once and checked every time."""
    try:
        tarball = npm_pack("pyodide", PYODIDE_VERSION, PYODIDE_INTEGRITY, cache, log)
    except NpmFetchError as exc:
        raise BuildError(str(exc)) from None
    log(f"pyodide@{PYODIDE_VERSION} tarball integrity ok ({tarball.stat().st_size} bytes)")
    return tarball


def extract_pyodide(tarball: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    with tarfile.open(tarball, "r:gz") as tar:
        for name in PYODIDE_FILES:
            member = tar.extractfile(f"package/{name}")
            if member is None:
                raise BuildError(f"the pyodide tarball has no file {name}")
            (dest / name).write_bytes(member.read())
    log(f"extracted {', '.join(PYODIDE_FILES)}")


def copy_ort(cache: Path, dest: Path) -> None:
    """onnxruntime-web's WASM files into dest/ort/, from the integrity-checked tarball."""
    try:
        tarball = fetch_ort_web(cache, log)
    except NpmFetchError as exc:
        raise BuildError(str(exc)) from exc
    dest.mkdir()
    with tarfile.open(tarball, "r:gz") as tar:
        for name in ORT_FILES:
            member = tar.extractfile(f"package/dist/{name}")
            if member is None:
                raise BuildError(f"the onnxruntime-web tarball has no dist/{name}")
            (dest / name).write_bytes(member.read())
    log(f"onnxruntime-web@{ORT_WEB_VERSION}: copied {', '.join(ORT_FILES)}")


def build_wheel(dest: Path) -> Path:
    """Our pure-Python wheel (hatchling), reproducible; checks that the shaders are inside."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp, str(ROOT)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        wheels = list(Path(tmp).glob("sandseg-*-py3-none-any.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            raise BuildError(f"building the sandseg wheel failed:\n{result.stderr.strip()}")
        wheel = dest / wheels[0].name
        shutil.copyfile(wheels[0], wheel)
    with zipfile.ZipFile(wheel) as zf:
        packed = {n.removeprefix("sandseg/shaders/") for n in zf.namelist()}
    missing = sorted(p.name for p in (ROOT / "shaders").glob("*.wgsl") if p.name not in packed)
    if missing:
        raise BuildError(f"the wheel lacks shaders {missing}: check pyproject's force-include")
    log(f"built {wheel.name} ({wheel.stat().st_size} bytes, sha256 {sha256_file(wheel)[:16]}...)")
    return wheel


def add_wheel_to_lock(lock_in: Path, wheel: Path) -> None:
    """pyodide-build registers the wheel; its file name is relative to the lock file's folder."""
    lock_out = wheel.parent / "pyodide-lock.json"
    cli = [sys.executable, "-m", "pyodide_cli"]
    # Run from the output folder: from the repository root, this file would shadow PyPA's
    # `build` package that pyodide-build imports.
    result = subprocess.run(
        [*cli, "lockfile", "add-wheels", "--input", str(lock_in), "--output", str(lock_out), wheel],
        capture_output=True,
        text=True,
        cwd=wheel.parent,
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(
            "pyodide lockfile add-wheels failed (install the bundle extra: "
            f"pip install -e '.[bundle]'):\n{result.stderr.strip()[-2000:]}"
        )
    entry = json.loads(lock_out.read_text())["packages"].get("sandseg")
    if entry is None or entry["file_name"] != wheel.name or entry["sha256"] != sha256_file(wheel):
        raise BuildError(f"the rewritten lock file has a wrong sandseg entry: {entry}")
    log(f"registered {wheel.name} in pyodide/pyodide-lock.json")


def copy_web(dest: Path, test_hooks: bool = False) -> None:
    web = ROOT / "web"
    names = sorted(p.name for p in web.iterdir() if p.is_file() and p.suffix in WEB_SUFFIXES)
    for name in names:
        shutil.copyfile(web / name, dest / name)
    log(f"copied web/ {', '.join(names)}")
    if not test_hooks:
        return
    hooks = sorted((web / "testing").glob("*.js"))
    for hook in hooks:
        if hook.name not in names:
            raise BuildError(f"web/testing/{hook.name} has no web/{hook.name} to append to")
        with (dest / hook.name).open("a", encoding="utf-8") as out:
            out.write("\n" + hook.read_text(encoding="utf-8"))
    log(f"test bundle: appended web/testing/ {', '.join(p.name for p in hooks)}")


def copy_samples(dest: Path) -> None:
    images = ROOT.parent / "shared" / "images"
    samples = sorted(images.glob("*.jpg")) if images.is_dir() else []
    if not samples:
        log(f"no sample images ({images} not found): the bundle has none")
        return
    (dest / "samples").mkdir()
    for image in samples:
        shutil.copyfile(image, dest / "samples" / image.name)
    log(f"copied samples {', '.join(p.name for p in samples)}")


def write_manifest(dest: Path, wheel: Path) -> None:
    files = {
        p.relative_to(dest).as_posix(): sha256_file(p)
        for p in sorted(dest.rglob("*"))
        if p.is_file()
    }
    manifest = {
        "pyodide_version": PYODIDE_VERSION,
        "ort_version": ORT_WEB_VERSION,
        "wheel": wheel.name,
        "files": files,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (dest / "bundle.json").write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    log(f"wrote bundle.json: {len(files)} files pinned (sha256 {digest[:16]}...)")


def prepare_out(out: Path) -> Path:
    """A fresh staging folder beside `out`; refuses to clobber a folder that is no bundle."""
    if out.exists() and any(out.iterdir()) and not (out / "bundle.json").exists():
        raise BuildError(f"{out} exists and is not a bundle (no bundle.json): choose another --out")
    staging = out.with_name(out.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def build(out: Path, cache: Path, test_hooks: bool = False) -> None:
    staging = prepare_out(out)
    try:
        tarball = fetch_pyodide(cache)
        with tempfile.TemporaryDirectory() as tmp:
            upstream = Path(tmp) / "pyodide"
            extract_pyodide(tarball, upstream)
            pyodide_dir = staging / "pyodide"
            pyodide_dir.mkdir()
            for name in PYODIDE_FILES[:-1]:
                shutil.copyfile(upstream / name, pyodide_dir / name)
            wheel = build_wheel(pyodide_dir)
            add_wheel_to_lock(upstream / "pyodide-lock.json", wheel)
        copy_ort(cache, staging / "ort")
        copy_web(staging, test_hooks)
        copy_samples(staging)
        write_manifest(staging, wheel)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    log(f"bundle ready in {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "web" / "dist", help="output folder")
    parser.add_argument(
        "--cache", type=Path, default=ROOT / ".cache", help="download cache (npm tarballs)"
    )
    parser.add_argument(
        "--test-hooks",
        action="store_true",
        help="a test bundle: add web/testing/'s hooks (for tests/browser; never to deploy)",
    )
    args = parser.parse_args(argv)
    try:
        build(args.out.resolve(), args.cache.resolve(), args.test_hooks)
    except BuildError as exc:
        print(f"build: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
