"""`sandseg bench everything`: the automatic mask generator natively.

Decoder throughput four ways, medians of `repeat` runs over the same `batch` grid prompts:
`predict` per prompt (every mask and logit read back), one prompt at a time reduced on the GPU
(`mask_stats`, a read-back per prompt), the decoder run prompt by prompt inside one recording
with one read-back of the counts (the generator before issue #15's batching), and the
generator's way: the batched decoder (`model.decode_batch`, the image-side work shared), one
read-back. Its rate over the one-at-a-time rate is issue #15's batching target (>= 4x). Then the
time per image of the whole generator at `points_per_side` (encoder included), with thresholds
that keep masks on random weights too (conformance config A's), so that masks are read back and
encoded as they would be.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import ops
from ..amg import AutomaticMaskGenerator
from ..amg.grids import build_point_grid
from ..gpu import Tensor
from ..gpu.native import NativeDevice
from ..inputs import Prompt
from ..predictor import LOW_RES, Predictor
from .kernels import median_seconds
from .model import load_bench_inputs

# Conformance config A's thresholds: random weights give logits of about +-0.1.
KEEPING: dict[str, Any] = {
    "pred_iou_thresh": 0.01,
    "stability_score_thresh": 0.15,
    "stability_score_offset": 0.05,
}


def run_everything_bench(
    weights: str,
    image: str,
    *,
    points_per_side: int = 16,
    batch: int = 16,
    repeat: int = 3,
    json_path: str | None = None,
    progress: Callable[[str], None] = print,
) -> int:

    predictor, device, pixels = load_bench_inputs(weights, image)
    h, w = pixels.shape[:2]
    progress(f"adapter: {device.adapter_name}; image {Path(image).name} {w}x{h}")
    predictor.set_image(pixels)
    rows = _decoder_rates(predictor, (h, w), batch, repeat, progress)

    progress(f"timing the generator at points_per_side {points_per_side}")
    generator = AutomaticMaskGenerator(predictor, points_per_side=points_per_side, **KEEPING)
    start = time.perf_counter()
    masks = asyncio.run(generator.generate_async(pixels))
    image_s = time.perf_counter() - start

    print(f"{'decoder path':<44} {'prompts/s':>10} {'vs predict':>10}")
    print("-" * 66)
    for name, rate in rows:
        print(f"{name:<44} {rate:>10.2f} {rate / rows[0][1]:>10.2f}")
    batching = rows[3][1] / rows[1][1]
    print(f"batched decoder vs one prompt at a time: {batching:.2f}x (issue #15's target: >= 4x)")
    print(
        f"generator, {points_per_side}x{points_per_side} points, one crop: {image_s:.1f} s "
        f"per image ({len(masks)} masks kept)"
    )
    if json_path:
        doc = {
            "adapter": device.adapter_name,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "image": Path(image).name,
            "repeat": repeat,
            "prompts": batch,
            "decoder": [{"path": n, "prompts_per_s": r} for n, r in rows],
            "batched_vs_one_at_a_time": batching,
            "generator": {
                "points_per_side": points_per_side,
                "seconds_per_image": image_s,
                "masks": len(masks),
                "params": KEEPING,
            },
        }
        Path(json_path).write_text(json.dumps(doc, indent=2), encoding="utf-8")
        print(f"wrote {json_path}")
    return 0


def _decoder_rates(
    predictor: Predictor,
    size: tuple[int, int],
    batch: int,
    repeat: int,
    progress: Callable[[str], None],
) -> list[tuple[str, float]]:
    """Decoder prompts per second four ways, on the (H, W) image set in `predictor`."""
    device = predictor.device
    assert isinstance(device, NativeDevice)
    h, w = size
    side = math.ceil(batch**0.5)
    points = [(x * w, y * h) for x, y in build_point_grid(side)][:batch]

    def predict_each() -> None:
        for p in points:
            predictor.predict(np.array([p]), np.array([1]))

    def reduce_each() -> None:
        for p in points:
            logits, _, _ = predictor.record_prediction([p], [1])
            device.read_sync(ops.mask_stats(logits, 0.0, 1.0))

    def reduce_batch() -> None:
        device.read_sync(_gather([predictor.record_prediction([p], [1])[0] for p in points]))

    def decode_batched() -> None:
        state = predictor.image_state()
        assert state is not None
        model = predictor.model
        prompts = [Prompt.of([p], [1]).tokens(state.info) for p in points]
        low, _ = model.decode_batch(model.share_image(state.embeddings), prompts)
        # Upscaled prompt by prompt, as in the other rows: the rows differ in the decoder only.
        plane = 3 * LOW_RES * LOW_RES
        logits = []
        for k in range(len(points)):
            part = device.empty((3, LOW_RES, LOW_RES))
            device.copy(low, part, src_start=k * plane, count=plane)
            logits.append(model.postprocess(part, state.info))
        device.read_sync(_gather(logits))

    paths = (
        ("predict per prompt (masks read back)", predict_each),
        ("mask_stats per prompt, one read each", reduce_each),
        (f"batch of {len(points)} recorded, one read", reduce_batch),
        (f"batched decoder, {len(points)} prompts, one read", decode_batched),
    )
    # Each repeat times every path in turn, so that the load of a shared machine, which
    # drifts over minutes, weighs on all paths alike.
    times: list[list[float]] = [[] for _ in paths]
    for r in range(repeat):
        for (name, fn), seconds in zip(paths, times, strict=True):
            progress(f"timing {name} ({r + 1}/{repeat})")
            seconds.append(median_seconds(fn, 1, device.wait_idle, warm_up=r == 0))
    return [
        (name, len(points) / statistics.median(seconds))
        for (name, _), seconds in zip(paths, times, strict=True)
    ]


def _gather(logits: list[Tensor]) -> Tensor:
    """mask_stats of each prompt's (3, H, W) logits, gathered into one (N, 3, 8) tensor."""
    stats = [ops.mask_stats(x) for x in logits]
    out = stats[0].device.empty((len(stats), 3, ops.mask.STATS_WORDS), "u32")
    for i, s in enumerate(stats):
        out.device.copy(s, out, dst_start=i * s.numel)
    return out
