"""Rules the browser runtime keeps, read from its sources (no adapter, no browser needed).

- GP-4: the device asks for nothing beyond WebGPU's default limits, and no kernel uses f16
  (fp16 would need the `shader-f16` feature checked first). The browser tier then runs every
  kernel on a device with exactly those limits.
- PY-4: no JSPI, no runtime package installs, no code from anywhere but the bundle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from sandseg.gpu import device
from sandseg.gpu.shaders import kernel_names, shader_dir

ROOT = Path(__file__).resolve().parents[1]
BROWSER_PY = ROOT / "py" / "sandseg" / "gpu" / "browser.py"
# The web app's own scripts (web/dist is the built bundle, Pyodide's files among them).
WEB_SOURCES = [*sorted((ROOT / "web").glob("*.js")), ROOT / "web" / "index.html"]
PACKAGE_SOURCES = sorted((ROOT / "py" / "sandseg").rglob("*.py"))

# https://www.w3.org/TR/webgpu/#limits: the defaults every WebGPU implementation grants.
WEBGPU_DEFAULTS = {
    "maxStorageBufferBindingSize": 134_217_728,
    "maxBufferSize": 268_435_456,
    "maxStorageBuffersPerShaderStage": 8,
    "maxComputeWorkgroupsPerDimension": 65_535,
    "maxComputeInvocationsPerWorkgroup": 256,
    "maxComputeWorkgroupStorageSize": 16_384,
}


def required_limits() -> dict[str, int]:
    """browser.py's REQUIRED_LIMITS, evaluated from its source (the module imports `js`)."""
    tree = ast.parse(BROWSER_PY.read_text(encoding="utf-8"))
    [node] = [
        n.value
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "REQUIRED_LIMITS"
    ]
    names = {k: getattr(device, k) for k in dir(device) if k.isupper()}
    return eval(compile(ast.Expression(node), str(BROWSER_PY), "eval"), {}, names)


@pytest.mark.requirement("GP-4")
def test_the_browser_asks_for_no_more_than_the_default_limits(evidence) -> None:
    limits = required_limits()
    assert limits, "REQUIRED_LIMITS is empty"
    over = {k: v for k, v in limits.items() if v > WEBGPU_DEFAULTS[k]}
    assert not over, f"REQUIRED_LIMITS asks for more than WebGPU's defaults: {over}"
    # The device layer refuses what the defaults would not allow, on every backend.
    enforced = {
        "maxStorageBufferBindingSize": device.MAX_STORAGE_BINDING,
        "maxStorageBuffersPerShaderStage": device.MAX_STORAGE_BUFFERS_PER_STAGE,
        "maxComputeWorkgroupsPerDimension": device.MAX_WORKGROUPS_PER_DIM,
    }
    assert enforced == {k: WEBGPU_DEFAULTS[k] for k in enforced}
    evidence("GP-4", f"{len(limits)} limits requested, each <= WebGPU's default")


@pytest.mark.requirement("GP-4")
def test_no_kernel_needs_shader_f16() -> None:
    uses_f16 = [
        name
        for name in kernel_names()
        if re.search(r"\benable\s+f16\b", (shader_dir() / f"{name}.wgsl").read_text())
    ]
    assert not uses_f16, f"kernels enable f16 without a `shader-f16` check: {uses_f16}"


# JSPI entry points, runtime installers, and ways of loading code from elsewhere.
FORBIDDEN = {
    "JSPI": r"WebAssembly\.(Suspending|promising)|\brun_sync\b|enableRunUntilComplete",
    "a runtime package install": r"\bmicropip\b|loadPackagesFromImports",
    "a script from elsewhere": r"importScripts\s*\(|import\s*\(\s*[\"']https?:|src=[\"']https?:",
    "a URL off the page's origin": r"[\"'`]https?://",
}


@pytest.mark.parametrize("path", WEB_SOURCES + PACKAGE_SOURCES, ids=lambda p: p.name)
@pytest.mark.requirement("PY-4")
def test_no_jspi_no_installs_no_foreign_code(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    # Native modules may name URLs (the offload client takes one, the official checkpoint's
    # download has one); only what runs in the browser must not.
    if path.suffix == ".py" and "import js" not in text:
        return
    for what, pattern in FORBIDDEN.items():
        match = re.search(pattern, text)
        assert not match, f"{path.name}: {what}: {match[0]!r}"


@pytest.mark.requirement("PY-4")
def test_the_worker_loads_only_our_package_from_the_bundle() -> None:
    worker = (ROOT / "web" / "worker.js").read_text(encoding="utf-8")
    assert re.findall(r"loadPackage\(\s*([^,)]+)", worker) == ['"sandseg"']
    # Pyodide, and (only when the wasm runtime is chosen) our module that runs onnxruntime-web,
    # which imports the bundle's own ort/ module after checking the files against bundle.json.
    assert re.findall(r"(?<![\w.])import\(\s*([^)]+)\)", worker) == [
        '"./ort_runtime.js"',
        '"./" + PYODIDE_DIR + "pyodide.mjs"',
    ]
    ort_runtime = (ROOT / "web" / "ort_runtime.js").read_text(encoding="utf-8")
    assert re.findall(r"(?<![\w.])import\(\s*([^)]+)\)", ort_runtime) == ['"./" + paths[0]']
    assert 'const ORT_DIR = "ort/";' in ort_runtime
    assert "paths.map((p) => fetchVerified(p, bundle.files?.[p]))" in ort_runtime
