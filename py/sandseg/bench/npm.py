"""onnxruntime-web from npm at a pinned version: `npm pack` once into `<cache>/onnxruntime-web/`
(git-ignored), the tarball's integrity checked against the registry's on every use, as
build.py does for Pyodide. Standard library only: build.py imports it to self-host the WASM
runtime (RELIABILITY.md RT-2), bench/ort_web.py for its WebGPU anchor.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

ORT_WEB_VERSION = "1.30.0"
# `npm view onnxruntime-web@1.30.0 dist.integrity`: the registry's sha512 of the tarball.
ORT_WEB_INTEGRITY = (
    "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ"
    "=="
)


class NpmFetchError(OSError):
    """The npm tarball could not be fetched or is not the pinned release."""


def npm_integrity(path: Path) -> str:
    """The npm `dist.integrity` string of a tarball: "sha512-" + base64 of its sha512."""
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def verify_integrity(tarball: Path, expected: str) -> None:
    """Raise NpmFetchError and delete `tarball` unless its integrity is `expected`."""
    integrity = npm_integrity(tarball)
    if integrity != expected:
        tarball.unlink()
        raise NpmFetchError(
            f"{tarball.name} has integrity {integrity}, expected {expected}; the download is "
            "corrupt or not the pinned release, so it was deleted: run again"
        )


def npm_pack(
    package: str,
    version: str,
    integrity: str,
    folder: Path,
    progress: Callable[[str], None] = print,
) -> Path:
    """The npm tarball of package@version in `folder`: `npm pack` once, its integrity checked
    against the pinned `integrity` on every use."""
    tarball = folder / f"{package}-{version}.tgz"
    spec = f"{package}@{version}"
    if not tarball.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise NpmFetchError(
                f"npm is not installed; it fetches {package} from the npm registry. "
                "On Debian: apt-get install npm (Node.js >= 18), then run again"
            )
        folder.mkdir(parents=True, exist_ok=True)
        progress(f"downloading {spec} with npm pack into {folder}")
        result = subprocess.run(
            [npm, "pack", spec, "--pack-destination", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not tarball.exists():
            tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise NpmFetchError(
                f"npm pack {spec} failed (exit {result.returncode}); is the npm registry "
                "reachable? npm said:\n  " + "\n  ".join(tail)
            )
    verify_integrity(tarball, integrity)
    return tarball


def fetch_ort_web(cache: Path, progress: Callable[[str], None] = print) -> Path:
    """The npm tarball of onnxruntime-web@ORT_WEB_VERSION, downloaded once, checked each time."""
    folder = cache / "onnxruntime-web"
    return npm_pack("onnxruntime-web", ORT_WEB_VERSION, ORT_WEB_INTEGRITY, folder, progress)
