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
from .kernels import _median_seconds, matmul_cases

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
        seconds = _median_seconds(run_stage, repeat, device.wait_idle)
        boundary = model.encode(entering, i, i + 1)
        rows.append((f"encoder {stage.name}", seconds, STAGE_GFLOP[stage.name]))

    progress("timing the whole encoder (pre-processing included)")
    encoder_s = _median_seconds(lambda: predictor.set_image(pixels), repeat, device.wait_idle)
    rows.append(("encoder (set_image)", encoder_s, ENCODER_GFLOP))
    progress("timing the decoder")
    point = np.array([[w / 2, h / 2]])
    decoder_s = _median_seconds(
        lambda: predictor.predict(point, np.array([1]), multimask_output=True),
        max(repeat, 5),
        lambda: None,  # predict reads the masks back: it is synchronous already
    )
    rows.append(("decoder (predict, 1 point, 3 masks)", decoder_s, DECODER_GFLOP))

    progress("timing matmul for the ceiling")
    rng = np.random.default_rng(0)
    best = max(
        case.work / _median_seconds(case.run_gpu, repeat, device.wait_idle) / 1e9
        for case in matmul_cases(device, rng)[:3]
    )

    print(f"{'part':<40} {'median ms':>10} {'GFLOP':>7} {'GFLOP/s':>8}")
    print("-" * 68)
    for name, seconds, gflop in rows:
        print(f"{name:<40} {seconds * 1e3:>10.1f} {gflop:>7.1f} {gflop / seconds:>8.2f}")
    print(f"best matmul kernel in this run: {best:.2f} GFLOP/s")
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
        }
        Path(json_path).write_text(json.dumps(doc, indent=2), encoding="utf-8")
        print(f"wrote {json_path}")
    return 0


__all__ = ["run_model_bench"]
