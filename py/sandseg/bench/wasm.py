"""`sandseg bench wasm`: the browser's two client runtimes side by side in one Chromium and one
run: wasm (onnxruntime-web's WASM backend on the server's stage graphs) and webgpu (the WGSL
model; SwiftShader on a machine without a GPU). Per runtime: the encoder (setImage in client
mode) and the per-click decoder, medians of `repeat`, after one untimed warm-up of each."""

from __future__ import annotations

import base64
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .browser import SET_IMAGE, TIMEOUT_MS, launch_chromium

PREDICT = """async (p) => {
  const r = await window.sandseg.predict(p);
  return {decoderMs: r.decoderMs, runtime: r.runtime, mode: r.mode};
}"""
CLICK = {"points": [[384, 385]], "labels": [1], "box": None, "multimask": True}
RUNTIMES = ("wasm", "webgpu")
ADAPTER = """async () => {
  const adapter = await navigator.gpu?.requestAdapter();
  return adapter ? `${adapter.info.vendor} ${adapter.info.description}`.trim() : "none";
}"""


def run_wasm_bench(
    weights: str,
    image: str,
    bundle: str = "web/dist",
    repeat: int = 3,
    json_path: str | None = None,
    progress: Callable[[str], None] = print,
) -> int:
    from ..server.thread import ServerThread

    b64 = base64.b64encode(Path(image).read_bytes()).decode()
    results: dict[str, Any] = {}
    with ServerThread(Path(bundle), Path(weights)) as server, launch_chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(server.url + "/?runtime=wasm")
        page.wait_for_function("() => document.querySelector('#status').textContent !== 'loading'")
        status = page.text_content("#status") or ""
        if status != "ready":
            raise RuntimeError(f"the page did not start: {status}")
        page.evaluate("() => window.sandseg.setMode('client')")
        for runtime in RUNTIMES:
            state = page.evaluate("(r) => window.sandseg.setRuntime(r)", runtime)
            if not state["available"]:
                progress(f"{runtime}: not available here ({state['reason']})")
                continue
            results[runtime] = _times(page, b64, runtime, repeat, progress)
        results["adapter"] = page.evaluate(ADAPTER)
        results["cross_origin_isolated"] = page.evaluate("() => self.crossOriginIsolated")
    _print(results)
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _times(
    page: Any, b64: str, runtime: str, repeat: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    encoder, decoder = [], []
    for i in range(repeat + 1):
        progress(f"{runtime}: image {i}/{repeat} ({'warm-up' if i == 0 else 'timed'})")
        encoded = page.evaluate(SET_IMAGE, b64)
        clicks = [page.evaluate(PREDICT, CLICK) for _ in range(3)]
        ran = {encoded["runtime"], *(c["runtime"] for c in clicks)}
        if ran != {runtime}:
            raise RuntimeError(f"asked for {runtime}, but {ran} ran")
        if i:
            encoder.append(encoded["encoderMs"])
            decoder += [c["decoderMs"] for c in clicks]
    return {
        "encoder_ms": statistics.median(encoder),
        "encoder_runs_ms": encoder,
        "decoder_ms": statistics.median(decoder),
        "decoder_runs_ms": decoder,
    }


def _print(results: dict[str, Any]) -> None:
    isolated = "multi-threaded" if results["cross_origin_isolated"] else "one thread"
    print(f"\nbrowser client runtimes in one Chromium: WebGPU adapter {results['adapter']!r}, ")
    print(f"wasm {isolated}")
    print("| runtime | encoder (median) | decoder per click (median) |")
    print("|---|---|---|")
    for runtime in RUNTIMES:
        if runtime in results:
            r = results[runtime]
            print(
                f"| {runtime} | {r['encoder_ms'] / 1000:.2f} s | {r['decoder_ms'] / 1000:.2f} s |"
            )
    if all(r in results for r in RUNTIMES):
        ratio = results["webgpu"]["encoder_ms"] / results["wasm"]["encoder_ms"]
        print(f"wasm encoder is {ratio:.1f}x faster than webgpu's on this adapter")
