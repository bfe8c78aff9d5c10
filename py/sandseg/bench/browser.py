"""The model in the browser, timed through the page's automation surface (window.sandseg).

Builds nothing: it serves an existing bundle (build.py) with the given weights on
127.0.0.1, drives Debian's chromium with Playwright (WebGPU on SwiftShader where there is no
GPU), and reads the encoder and decoder times the worker measures. The browser is the
caller's (`launch_chromium`), so other pages can be timed in the same one.
"""

from __future__ import annotations

import base64
import os
import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..server.page_weights import page_weights
from ..server.serve_cli import sandseg_home
from ..server.thread import ServerThread

CHROMIUM = os.environ.get("SANDSEG_CHROMIUM", "/usr/bin/chromium")
# Why each flag: WebGPU is behind --enable-unsafe-webgpu on Linux; with no GPU, Dawn's Vulkan
# backend runs on SwiftShader (--enable-features=Vulkan --use-webgpu-adapter=swiftshader) and
# ANGLE too (--use-angle=swiftshader); --no-sandbox because CI runs as root; the rest keeps
# chromium from calling home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--enable-unsafe-webgpu",
    "--enable-features=Vulkan",
    "--use-angle=swiftshader",
    "--use-webgpu-adapter=swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 600_000
# The image travels as base64 into the page and becomes a Blob there: the server only serves
# the bundle, and the CSP allows fetches from 'self' only.
SET_IMAGE = """async (b64) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return await window.sandseg.getClient().setImage(new Blob([bytes]));
}"""
PREDICT = """async (p) => {
  const r = await window.sandseg.predict(p);
  return {decoderMs: r.decoderMs, backend: r.backend};
}"""


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """Debian's chromium, headless, with CHROMIUM_ARGS: a Playwright Browser."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        raise FileNotFoundError(f"no chromium at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def boot_page(page: Any, url: str, query: str = "") -> None:
    """Open the app at `url` (+ `query`, e.g. "?runtime=wasm") in `page` and wait until it is
    ready, or raise with its words."""
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url + "/" + query)
    page.wait_for_function(
        "() => document.querySelector('#status').textContent !== 'loading'",
        timeout=TIMEOUT_MS,
    )
    status = page.text_content("#status") or ""
    if status != "ready":
        raise RuntimeError(f"the page did not start: {status}")


def browser_model_times(
    browser: Any,
    bundle: Path,
    weights: Path,
    image: Path,
    point: tuple[float, float],
    repeat: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Median encoder and decoder ms in a new page of `browser`, plus the adapter and
    cold-start timings."""
    encoded = base64.b64encode(image.read_bytes()).decode("ascii")
    # What `sandseg serve` gives the page: the float16 copy of the weights.
    half = page_weights(weights, sandseg_home() / "page-weights")
    with ServerThread(bundle, weights, page_weights=half) as server:
        page = browser.new_page()
        try:
            progress("browser: booting the page (Pyodide, package, weights, pipelines)")
            # The WGSL model: auto would take wasm where it measures faster (SwiftShader).
            boot_page(page, server.url, "?runtime=webgpu")
            timings = page.evaluate("() => window.sandseg.timings")
            encoder, decoder, backend = [], [], ""
            for i in range(repeat):
                progress(f"browser: encoding {image.name} ({i + 1}/{repeat})")
                encoder.append(page.evaluate(SET_IMAGE, encoded)["encoderMs"])
                prompt = {
                    "points": [list(point)],
                    "labels": [1],
                    "box": None,
                    "maskInput": None,
                    "multimask": True,
                }
                result = page.evaluate(PREDICT, prompt)
                decoder.append(result["decoderMs"])
                backend = result["backend"]
            adapter = page.evaluate("() => window.sandseg.getClient().adapter || ''")
        finally:
            # The page's worker holds a GPU device: let it go before anything else runs.
            page.close()
    return {
        "adapter": adapter,
        "backend": backend,
        "chromium": browser.version,
        "encoder_ms": statistics.median(encoder),
        "decoder_ms": statistics.median(decoder),
        "cold_start_ms": timings,
    }
