"""`sandseg bench model`: the whole model natively, per encoder stage and per prompt.

Reports medians of `repeat` runs: each encoder stage, the whole encoder, one decoder call
(prompt encoder + mask decoder + post-processing + read-back of the masks), and effective
GFLOP/s against DESIGN.md's operation counts, next to the best matmul throughput measured
in the same run (the ceiling the encoder could reach if it were all matmul).
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..gpu.native import NativeDevice
from ..predictor import Predictor
from .kernels import matmul_cases, median_seconds

# GFLOP per stage at 1024x1024 (DESIGN.md, "Numbers to know"), and per prompt.
STAGE_GFLOP = {
    "patch_embed": 2.9,
    "layers.0": 10.8,
    "layers.1": 15.1,
    "layers.2": 21.1,
    "layers.3": 22.1,
    "neck": 5.5,
}
ENCODER_GFLOP = 77.5
DECODER_GFLOP = 3.6


def run_model_bench(
    weights: str,
    image: str,
    *,
    repeat: int = 3,
    json_path: str | None = None,
    progress: Callable[[str], None] = print,
    browser_bundle: str | None = None,
) -> int:
    from PIL import Image

    predictor = Predictor.from_weights(weights)
    device = predictor.device
    assert isinstance(device, NativeDevice)
    with Image.open(image) as img:
        pixels = np.asarray(img.convert("RGB"))
    model = predictor.model
    h, w = pixels.shape[:2]
    progress(
        f"adapter: {device.adapter_name}; image {Path(image).name} {w}x{h}; median of {repeat}"
    )

    x, _ = model.preprocess(pixels.tobytes(), h, w, 3)
    rows = []
    boundary = x
    for i, stage in enumerate(model.image_encoder.stages):
        progress(f"timing stage {stage.name}")
        entering = boundary
        run_stage = functools.partial(model.encode, entering, i, i + 1)
        seconds = median_seconds(run_stage, repeat, device.wait_idle)
        boundary = model.encode(entering, i, i + 1)
        rows.append((f"encoder {stage.name}", seconds, STAGE_GFLOP[stage.name]))

    progress("timing the whole encoder (pre-processing included)")
    encoder_s = median_seconds(lambda: predictor.set_image(pixels), repeat, device.wait_idle)
    rows.append(("encoder (set_image)", encoder_s, ENCODER_GFLOP))
    progress("timing the decoder")
    point = np.array([[w / 2, h / 2]])
    decoder_s = median_seconds(
        lambda: predictor.predict(point, np.array([1]), multimask_output=True),
        max(repeat, 5),
        lambda: None,  # predict reads the masks back: it is synchronous already
    )
    rows.append(("decoder (predict, 1 point, 3 masks)", decoder_s, DECODER_GFLOP))

    progress("timing matmul for the ceiling")
    rng = np.random.default_rng(0)
    best = max(
        case.work / median_seconds(case.run_gpu, repeat, device.wait_idle) / 1e9
        for case in matmul_cases(device, rng)[:3]
    )

    print(f"{'part':<40} {'median ms':>10} {'GFLOP':>7} {'GFLOP/s':>8}")
    print("-" * 68)
    for name, seconds, gflop in rows:
        print(f"{name:<40} {seconds * 1e3:>10.1f} {gflop:>7.1f} {gflop / seconds:>8.2f}")
    print(f"best matmul kernel in this run: {best:.2f} GFLOP/s")
    browser = None
    if browser_bundle is not None:
        browser = _browser_side_by_side(
            Path(browser_bundle),
            weights,
            Path(image),
            (w / 2, h / 2),
            repeat,
            progress,
            encoder_s,
            decoder_s,
        )
    if json_path:
        doc = {
            "adapter": device.adapter_name,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "image": Path(image).name,
            "repeat": repeat,
            "rows": [{"part": n, "ms": s * 1e3, "gflop": g, "gflops": g / s} for n, s, g in rows],
            "best_matmul_gflops": best,
            "encoder_ms": encoder_s * 1e3,
            "decoder_ms": decoder_s * 1e3,
            "browser": browser,
        }
        Path(json_path).write_text(json.dumps(doc, indent=2), encoding="utf-8")
        print(f"wrote {json_path}")
    return 0


__all__ = ["run_model_bench"]


def _browser_side_by_side(
    bundle: Path,
    weights: str,
    image: Path,
    point: tuple[float, float],
    repeat: int,
    progress: Callable[[str], None],
    encoder_s: float,
    decoder_s: float,
) -> dict[str, object]:
    """The same image and prompt in the browser, printed next to the native medians."""
    from ..server.serve_cli import resolve_weights
    from .browser import browser_model_times

    served = resolve_weights(weights, progress)  # a .pt is converted once, as serve does
    times = browser_model_times(bundle, served, image, point, repeat, progress)
    print(f"\nbrowser adapter: {times['adapter']} (backend {times['backend']})")
    print(f"{'part':<40} {'native ms':>10} {'browser ms':>11} {'ratio':>7}")
    print("-" * 71)
    for name, native, ours in [
        ("encoder (set_image)", encoder_s * 1e3, float(times["encoder_ms"])),
        ("decoder (predict, 1 point, 3 masks)", decoder_s * 1e3, float(times["decoder_ms"])),
    ]:
        print(f"{name:<40} {native:>10.1f} {ours:>11.1f} {ours / native:>7.2f}")
    print(f"browser cold start (ms): {times['cold_start_ms']}")
    return times
