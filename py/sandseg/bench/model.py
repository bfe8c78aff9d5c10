"""`sandseg bench model`: the whole model natively, per encoder stage and per prompt.

Reports medians of `repeat` runs: each encoder stage, the whole encoder, one decoder call
(prompt encoder + mask decoder + post-processing + read-back of the masks), and effective
GFLOP/s against DESIGN.md's operation counts, next to the best matmul throughput measured
in the same run (the ceiling the encoder could reach if it were all matmul).

When onnxruntime is installed, the server's runtimes (wgpu, onnxruntime and auto's per-part
choice) follow side by side: seconds per part, per image and per click (bench/runtimes.py).

With `onnx`, onnxruntime runs the package's own ONNX export of the same weights in the same
run: on the CPU natively (onnx_side) and, with a browser, its WebGPU execution provider in the
same chromium (ort_web). Ratios are sandseg / onnxruntime: below 1, sandseg is faster.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..gpu.native import NativeDevice
from ..predictor import Predictor
from ..runtime import ONNXRUNTIME, available_runtimes
from .kernels import matmul_cases, median_seconds
from .onnx_side import OnnxModels, OrtCpuRun

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
    onnx: bool = False,
    onnx_repeat: int = 1,
    cache: Path = Path(".cache"),
) -> int:

    ort_web_tarball = None
    if onnx and browser_bundle is not None:
        from .npm import fetch_ort_web

        ort_web_tarball = fetch_ort_web(cache, progress)  # fail before minutes of timing
    predictor, device, pixels = load_bench_inputs(weights, image)
    h, w = pixels.shape[:2]
    point = (w / 2, h / 2)
    progress(
        f"adapter: {device.adapter_name}; image {Path(image).name} {w}x{h}; median of {repeat}"
    )

    rows, encoder_s, decoder_s, best = _native_rows(predictor, pixels, point, repeat, progress)
    print(f"{'part':<40} {'median ms':>10} {'GFLOP':>7} {'GFLOP/s':>8}")
    print("-" * 68)
    for name, seconds, gflop in rows:
        print(f"{name:<40} {seconds * 1e3:>10.1f} {gflop:>7.1f} {gflop / seconds:>8.2f}")
    print(f"best matmul kernel in this run: {best:.2f} GFLOP/s")

    runtimes = None
    if ONNXRUNTIME in available_runtimes():
        from .runtimes import runtimes_side_by_side

        runtimes = runtimes_side_by_side(weights, pixels, point, repeat, progress)

    browser, onnx_doc = _other_sides(
        predictor,
        weights,
        image,
        pixels,
        point,
        (encoder_s, decoder_s),
        repeat,
        progress,
        browser_bundle=browser_bundle,
        onnx=onnx,
        onnx_repeat=onnx_repeat,
        cache=cache,
        ort_web_tarball=ort_web_tarball,
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
            "onnx": onnx_doc,
            "runtimes": runtimes,
        }
        Path(json_path).write_text(json.dumps(doc, indent=2), encoding="utf-8")
        print(f"wrote {json_path}")
    return 0


def load_bench_inputs(weights: str, image: str) -> tuple[Predictor, NativeDevice, np.ndarray]:
    """The model on the native device and the photo as (H, W, 3) uint8 RGB."""
    from PIL import Image

    predictor = Predictor.from_weights(weights)
    device = predictor.device
    assert isinstance(device, NativeDevice)
    with Image.open(image) as img:
        pixels = np.asarray(img.convert("RGB"))
    return predictor, device, pixels


Row = tuple[str, float, float]  # part, median seconds, GFLOP


def _native_rows(
    predictor: Predictor,
    pixels: np.ndarray,
    point: tuple[float, float],
    repeat: int,
    progress: Callable[[str], None],
) -> tuple[list[Row], float, float, float]:
    """Each encoder stage, the whole encoder and the decoder on the WGSL kernels, and the
    best matmul's GFLOP/s for the ceiling: (rows, encoder s, decoder s, matmul GFLOP/s)."""
    model, device = predictor.model, predictor.device
    assert isinstance(device, NativeDevice)
    h, w = pixels.shape[:2]
    boundary, _ = model.preprocess(pixels.tobytes(), h, w, 3)
    rows: list[Row] = []
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
    decoder_s = median_seconds(
        lambda: predictor.predict(np.array([point]), np.array([1]), multimask_output=True),
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
    return rows, encoder_s, decoder_s, best


def _other_sides(
    predictor: Predictor,
    weights: str,
    image: str,
    pixels: np.ndarray,
    point: tuple[float, float],
    native_s: tuple[float, float],
    repeat: int,
    progress: Callable[[str], None],
    *,
    browser_bundle: str | None,
    onnx: bool,
    onnx_repeat: int,
    cache: Path,
    ort_web_tarball: Path | None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The optional comparisons: onnxruntime on the ONNX export natively (`onnx`), the page in
    chromium (`browser_bundle`) and onnxruntime-web there (both): (browser, onnx) documents."""
    encoder_s, decoder_s = native_s
    models, ort_run = None, None
    if onnx:
        from .onnx_side import exported_models, ort_cpu_side_by_side

        models = exported_models(weights, cache, progress)
        ort_run = ort_cpu_side_by_side(predictor, pixels, point, models, repeat, progress)
    browser, ort_web = None, None
    if browser_bundle is not None:
        also = None
        if ort_web_tarball is not None and models is not None and ort_run is not None:
            from .ort_web import ort_web_times

            also = functools.partial(
                ort_web_times,
                tarball=ort_web_tarball,
                models=models,
                run=ort_run,
                repeat=repeat,
                encoder_repeat=onnx_repeat,
                progress=progress,
            )
        browser, ort_web = _browser_side_by_side(
            Path(browser_bundle),
            weights,
            Path(image),
            point,
            repeat,
            progress,
            encoder_s,
            decoder_s,
            also,
        )
    onnx_doc = None
    if models is not None and ort_run is not None:
        onnx_doc = _onnx_side_by_side(models, encoder_s, decoder_s, ort_run, browser, ort_web)
    onnx_doc = None
    if models is not None and ort_run is not None:
        onnx_doc = _onnx_side_by_side(models, encoder_s, decoder_s, ort_run, browser, ort_web)
    return browser, onnx_doc


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
    also: Callable[[Any], dict[str, Any]] | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The same image and prompt in the browser, printed next to the native medians; `also`
    (onnxruntime-web) runs in the same browser after the page."""
    from ..server.serve_cli import resolve_weights
    from .browser import browser_model_times, launch_chromium

    served = resolve_weights(weights, progress)  # a .pt is converted once, as serve does
    ort_web = None
    with launch_chromium() as chromium:
        times = browser_model_times(chromium, bundle, served, image, point, repeat, progress)
        if also is not None:
            ort_web = also(chromium)
    print(f"\nbrowser adapter: {times['adapter']} (backend {times['backend']})")
    print(f"{'part':<40} {'native ms':>10} {'browser ms':>11} {'ratio':>7}")
    print("-" * 71)
    for name, native, ours in [
        ("encoder (set_image)", encoder_s * 1e3, float(times["encoder_ms"])),
        ("decoder (predict, 1 point, 3 masks)", decoder_s * 1e3, float(times["decoder_ms"])),
    ]:
        print(f"{name:<40} {native:>10.1f} {ours:>11.1f} {ours / native:>7.2f}")
    print(f"browser cold start (ms): {times['cold_start_ms']}")
    return times, ort_web


def _onnx_side_by_side(
    models: OnnxModels,
    encoder_s: float,
    decoder_s: float,
    ort_run: OrtCpuRun,
    browser: dict[str, Any] | None,
    ort_web: dict[str, Any] | None,
) -> dict[str, Any]:
    """Print sandseg against onnxruntime (same weights, same run); the JSON's `onnx` part.

    sandseg's encoder time includes the pre-processing and its decoder time the upscaling to
    the image and the masks' read-back; onnxruntime's start from the pre-processed tensor and
    stop at the low-res logits: the ratios lean in onnxruntime's favour."""
    cpu = ort_run.report
    pairs = [
        ("native encoder", "onnxruntime CPU", encoder_s * 1e3, cpu["encoder_ms"]),
        ("native decoder (1 point)", "onnxruntime CPU", decoder_s * 1e3, cpu["decoder_ms"]),
    ]
    if browser is not None and ort_web is not None:
        pairs = [
            ("browser encoder", "ORT-web WebGPU", browser["encoder_ms"], ort_web["encoder_ms"]),
            (
                "browser decoder (1 point)",
                "ORT-web WebGPU",
                browser["decoder_ms"],
                ort_web["decoder_ms"],
            ),
            *pairs,
        ]
    print("\nsandseg vs onnxruntime on the same ONNX-exported weights (ratio < 1: sandseg faster)")
    print(f"{'part':<27} {'sandseg ms':>11} {'against':<16} {'their ms':>10} {'ratio':>6}")
    print("-" * 74)
    ratios = {}
    for part, against, ours, theirs in pairs:
        ratios[part] = ours / theirs
        print(f"{part:<27} {ours:>11.1f} {against:<16} {theirs:>10.1f} {ours / theirs:>6.2f}")
    print(
        f"agreement (rel L2): onnxruntime CPU vs sandseg embeddings "
        f"{cpu['embeddings_rel_l2']:.1e}, low-res masks {cpu['low_res_rel_l2']:.1e}"
    )
    if ort_web is not None:
        print(
            f"agreement (rel L2): ORT-web WebGPU vs onnxruntime CPU embeddings "
            f"{ort_web['encoder_rel_l2']:.1e}, low-res masks {ort_web['decoder_rel_l2']:.1e}"
            + ("" if ort_web["agrees"] else "  <- MISMATCH: its timings are suspect")
        )
        if ort_web["adapter"] != (browser or {}).get("adapter"):
            print(f"note: ORT-web's adapter is {ort_web['adapter']!r}")
    return {
        "weights_sha256": models.weights_sha256,
        "models": [str(models.encoder), str(models.decoder)],
        "ratios": ratios,
        "onnxruntime_cpu": cpu,
        "onnxruntime_web": ort_web,
    }
