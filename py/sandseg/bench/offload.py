"""`sandseg bench offload`: every offload mode measured in the browser against a live server.

One headless Chromium page (WebGPU on SwiftShader where there is no GPU) talks to
`sandseg serve`'s app on 127.0.0.1 (the model natively on wgpu-py). Every measured image is
a fresh variant of the photo (mirrored, shifted), so the server's image cache never answers
for it. Protocol, per network profile:

1. a learning pass: every mode once (the page's planner measures this device's stages and
   the network, as it would in use);
2. the planner's prediction: `auto` on a fresh image; its estimate for every mode is kept;
3. the measured pass: every mode, `repeat` fresh images each: time to the first mask (encode
   + first click), the further clicks, bytes up and down, server compute seconds (medians).
"""

from __future__ import annotations

import base64
import io
import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..offload.session import SPLIT_STAGES
from ..server.thread import ServerThread
from .browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS

MODES = ["client", *(f"split:{s}" for s in SPLIT_STAGES), "split:image", "server", "auto"]
SET_IMAGE = """async (b64) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return await window.sandseg.getClient().setImage(new Blob([bytes], {type: "image/jpeg"}));
}"""
PREDICT = """async (p) => {
  const r = await window.sandseg.predict(p);
  return {decoderMs: r.decoderMs, mode: r.mode, uploadBytes: r.uploadBytes,
          downloadBytes: r.downloadBytes, serverMs: r.serverMs};
}"""


@dataclass
class ModeResult:
    """Medians over the measured images of one mode."""

    mode: str
    ran_as: list[str]  # the mode each image ran in (auto: the planner's choice)
    first_mask_ms: float
    click_ms: float
    upload_bytes: float
    download_bytes: float
    server_ms: float
    predicted_first_mask_ms: float | None = None
    samples: list[dict[str, float]] = field(default_factory=list)


def image_variants(photo: Path, count: int) -> list[bytes]:
    """`count` JPEGs of `photo`, each different (mirrored and shifted by a few pixels)."""
    from PIL import Image, ImageChops

    with Image.open(photo) as opened:
        base = opened.convert("RGB")
    variants = []
    for i in range(count):
        image = base.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i % 2 else base
        image = ImageChops.offset(image, i // 2, 0)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90)
        variants.append(out.getvalue())
    return variants


def run_offload_bench(
    weights: Path,
    bundle: Path,
    photo: Path,
    repeat: int,
    clicks: int,
    json_path: str | None,
    progress: Callable[[str], None],
) -> int:
    from playwright.sync_api import sync_playwright

    from ..server.engine import Engine

    if not Path(CHROMIUM).is_file():
        raise FileNotFoundError(f"no chromium at {CHROMIUM}: apt-get install chromium")
    if not (bundle / "index.html").is_file():
        raise FileNotFoundError(f"no web bundle in {bundle}: run `python build.py` first")
    images = iter(image_variants(photo, len(MODES) * (repeat + 1) + 1))
    progress("loading the model on the server and profiling it")
    engine = Engine(weights)
    engine.profile = engine.measure()
    try:
        with ServerThread(bundle, weights, engine=engine) as server, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                progress("booting the page (Pyodide, package, weights, pipelines)")
                page.goto(server.url + "/")
                page.wait_for_function(
                    "() => document.querySelector('#status').textContent !== 'loading'",
                    timeout=TIMEOUT_MS,
                )
                status = page.text_content("#status") or ""
                if status != "ready":
                    raise RuntimeError(f"the page did not start: {status}")
                adapter = page.evaluate("() => window.sandseg.getClient().adapter || ''")
                results = _measure(page, images, repeat, clicks, progress)
            finally:
                browser.close()
    finally:
        engine.close()
    _print_table(results, adapter)
    if json_path:
        Path(json_path).write_text(
            json.dumps(
                {"adapter": adapter, "profile": "loopback", "modes": [asdict(r) for r in results]},
                indent=2,
            )
        )
        progress(f"wrote {json_path}")
    return 0


def _measure(
    page: Any, images: Any, repeat: int, clicks: int, progress: Callable[[str], None]
) -> list[ModeResult]:
    for mode in MODES:
        progress(f"learning pass: {mode}")
        _run_image(page, mode, next(images), 1)
    progress("the planner's prediction: auto on a fresh image")
    _run_image(page, "auto", next(images), 1)
    estimates = {e["mode"]: e for e in page.evaluate("() => window.sandseg.modes.estimates")}
    plan = page.evaluate("() => window.sandseg.modes.plan")
    progress(f"auto chose: {plan}")
    results = []
    for mode in MODES:
        samples = []
        for i in range(repeat):
            progress(f"measuring {mode} ({i + 1}/{repeat})")
            samples.append(_run_image(page, mode, next(images), clicks))
        result = _summary(mode, samples)
        predicted_mode = result.ran_as[0] if mode == "auto" else mode
        if predicted_mode in estimates:
            result.predicted_first_mask_ms = estimates[predicted_mode]["firstMaskS"] * 1000
        results.append(result)
    return results


def _run_image(page: Any, mode: str, jpeg: bytes, clicks: int) -> dict[str, Any]:
    page.evaluate("(m) => window.sandseg.setMode(m)", mode)
    image = page.evaluate(SET_IMAGE, base64.b64encode(jpeg).decode("ascii"))
    width, height = image["width"], image["height"]
    times, up, down, server = [], image["uploadBytes"], image["downloadBytes"], image["serverMs"]
    for k in range(clicks):
        point = [width * (0.3 + 0.4 * k / max(clicks, 1)), height * 0.5]
        prompt = {"points": [point], "labels": [1], "box": None, "multimask": True}
        click = page.evaluate(PREDICT, prompt)
        times.append(click["decoderMs"])
        if k == 0:
            up += click["uploadBytes"]
            down += click["downloadBytes"]
            server += click["serverMs"]
    return {
        "ran_as": image["mode"],
        "first_mask_ms": image["encoderMs"] + times[0],
        "click_ms": statistics.median(times[1:]) if len(times) > 1 else times[0],
        "upload_bytes": up,
        "download_bytes": down,
        "server_ms": server,
    }


def _summary(mode: str, samples: list[dict[str, Any]]) -> ModeResult:
    def median(key: str) -> float:
        return float(statistics.median(s[key] for s in samples))

    return ModeResult(
        mode=mode,
        ran_as=[s["ran_as"] for s in samples],
        first_mask_ms=median("first_mask_ms"),
        click_ms=median("click_ms"),
        upload_bytes=median("upload_bytes"),
        download_bytes=median("download_bytes"),
        server_ms=median("server_ms"),
        samples=[{k: v for k, v in s.items() if k != "ran_as"} for s in samples],
    )


def _print_table(results: list[ModeResult], adapter: str) -> None:
    print(f"offload, loopback; browser adapter: {adapter}")
    header = (
        f"{'mode':<18} {'ran as':<18} {'predicted':>10} {'first mask':>11} {'per click':>10} "
        f"{'up MB':>7} {'down MB':>8} {'server s':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        guess = r.predicted_first_mask_ms
        predicted = f"{guess / 1000:.1f} s" if guess else "-"
        print(
            f"{r.mode:<18} {r.ran_as[0]:<18} {predicted:>10} {r.first_mask_ms / 1000:>9.1f} s "
            f"{r.click_ms / 1000:>8.2f} s {r.upload_bytes / 1e6:>7.2f} "
            f"{r.download_bytes / 1e6:>8.2f} {r.server_ms / 1000:>9.2f}"
        )
