"""onnxruntime-web's WebGPU execution provider on the package's ONNX export, in chromium.

The npm package `onnxruntime-web` comes from bench/npm.py (pinned, integrity-checked). Each
run writes a temporary folder with the three files the WebGPU build needs, the page
(index.html + ort_web_bench.mjs as bench.mjs), the .onnx files and the inputs as raw
float32, serves it on 127.0.0.1 (a secure context, which WebGPU needs) and drives it in the
browser the caller already has open.
"""

from __future__ import annotations

import http.server
import shutil
import statistics
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .npm import NpmFetchError
from .onnx_side import OnnxModels, OrtCpuRun

# The WebGPU build (the C++ WebGPU EP, asyncify) and the wasm it loads, from package/dist/.
ORT_WEB_FILES = (
    "ort.webgpu.min.mjs",
    "ort-wasm-simd-threaded.asyncify.mjs",
    "ort-wasm-simd-threaded.asyncify.wasm",
)
PAGE = Path(__file__).with_name("ort_web_bench.mjs")
INDEX_HTML = """<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>onnxruntime-web bench</title>
<script type="module">
  import * as bench from "./bench.mjs";
  window.ortBench = bench;
</script>
"""
# An encoder run takes minutes on SwiftShader (DESIGN.md: ~250 s); one call may take this long.
CALL_TIMEOUT_MS = 1_800_000
# Each call starts in the page and Python polls for its result, so a timeout can end a hang
# (page.evaluate itself never times out).
START_CALL = """([name, arg]) => {
  window.ortResult = null;
  window.ortBench[name](arg).then(
    (value) => { window.ortResult = {value}; },
    (error) => { window.ortResult = {error: String(error && error.stack || error)}; },
  );
}"""
# A check, not a tolerance tuned to pass: float32 on another backend, same graph.
AGREEMENT_REL_L2 = 1e-3


def write_page(tarball: Path, models: OnnxModels, run: OrtCpuRun, dest: Path) -> None:
    """The folder the page is served from: runtime, page, models and inputs."""
    with tarfile.open(tarball, "r:gz") as tar:
        for name in ORT_WEB_FILES:
            member = tar.extractfile(f"package/dist/{name}")
            if member is None:
                raise NpmFetchError(f"the onnxruntime-web tarball has no dist/{name}")
            (dest / name).write_bytes(member.read())
    (dest / "index.html").write_text(INDEX_HTML, encoding="utf-8")
    shutil.copyfile(PAGE, dest / "bench.mjs")
    shutil.copyfile(models.encoder, dest / models.encoder.name)
    shutil.copyfile(models.decoder, dest / models.decoder.name)
    (dest / "image.bin").write_bytes(run.image.tobytes())
    (dest / "embeddings.bin").write_bytes(run.embeddings.tobytes())
    (dest / "low_res.bin").write_bytes(run.low_res.tobytes())


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012 (the base class declares it a plain dict)
        ".html": "text/html; charset=utf-8",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
        ".onnx": "application/octet-stream",
        ".bin": "application/octet-stream",
    }

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the benchmark prints its own progress."""


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """`folder` over http://127.0.0.1:<free port> in a thread; yields the base URL."""

    def handler(*args: Any) -> _Handler:
        return _Handler(*args, directory=str(folder))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def ort_web_times(
    browser: Any,
    tarball: Path,
    models: OnnxModels,
    run: OrtCpuRun,
    repeat: int,
    encoder_repeat: int,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Medians of onnxruntime-web WebGPU's encoder (`encoder_repeat` runs) and decoder
    (`repeat` runs), each after one untimed warm-up run, in a new page of `browser`, and how
    far its outputs are from onnxruntime CPU's (rel L2)."""
    prompt = {"coords": run.coords.ravel().tolist(), "labels": run.labels.ravel().tolist()}
    with tempfile.TemporaryDirectory(prefix="sandseg-ort-web-") as tmp:
        write_page(tarball, models, run, Path(tmp))
        with serve_folder(Path(tmp)) as url:
            page = browser.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            try:
                page.goto(url + "/index.html")
                page.wait_for_function("() => window.ortBench !== undefined")
                progress("onnxruntime-web: creating the WebGPU sessions")
                info = _call(page, "setup", prompt)
                encoder = _timed(page, "runEncoder", encoder_repeat, "encoder", progress)
                decoder = _timed(page, "runDecoder", repeat, "decoder", progress)
            finally:
                page.close()
    return {
        "onnxruntime_web": info["version"],
        "execution_provider": "webgpu",
        "adapter": info["adapter"],
        "session_ms": info["sessionMs"],
        **encoder,
        **decoder,
        "agrees": max(encoder["encoder_rel_l2"], decoder["decoder_rel_l2"]) < AGREEMENT_REL_L2,
        "console": [line for line in console if not line.startswith(("log:", "debug:"))][:20],
    }


def _timed(
    page: Any, name: str, repeat: int, part: str, progress: Callable[[str], None]
) -> dict[str, Any]:
    """One warm-up call (compiles the shaders), then `repeat` timed ones."""
    results = []
    for i in range(repeat + 1):
        what = "warm-up" if i == 0 else f"{i}/{repeat}"
        progress(f"onnxruntime-web: {part} run ({what})")
        results.append(_call(page, name, None))
    timed = [r["ms"] for r in results[1:]]
    return {
        f"{part}_ms": statistics.median(timed),
        f"{part}_runs_ms": timed,
        f"{part}_first_ms": results[0]["ms"],
        f"{part}_rel_l2": max(r["relL2"] for r in results),
    }


def _call(page: Any, name: str, arg: object) -> Any:
    page.evaluate(START_CALL, [name, arg])
    page.wait_for_function("() => window.ortResult !== null", polling=1000, timeout=CALL_TIMEOUT_MS)
    result = page.evaluate("() => window.ortResult")
    if "error" in result:
        raise RuntimeError(f"onnxruntime-web {name} failed: {result['error']}")
    return result["value"]
