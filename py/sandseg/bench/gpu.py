"""`sandseg bench gpu`: the kernel and model benchmarks on whatever adapter is present, with
GFLOP/s as a share of the adapter's fp32 peak where we know it.

Rows: the fast matmul at the encoder's linear shapes and the dense convolutions, tuned (the
variant the tuning table chose) and pinned to the register-blocked kernel every release
before issue 14 used (with `--all-variants`, every matmul variant), numpy on the same shape
in the same run; the other compute-bound kernels (conv_transpose2x2, attention); with
`--weights` and `--image`, the whole encoder, tuned and blocked-only, alternating. Medians
of `repeat` runs, wall time from submission to done.
"""

from __future__ import annotations

import datetime
import json
import statistics
import time

import numpy as np

from ..gpu import get_device
from ..gpu.native import NativeDevice
from ..gpu.tuning import pinning
from ..model.tuning import timed_tune_model
from ..ops import variants
from .kernels import Case, attention_cases, conv_cases, matmul_cases, median_seconds
from .model import ENCODER_GFLOP, load_bench_inputs

# fp32 peak in TFLOP/s (non-tensor-core FMA throughput at boost clock), by a lower-case
# substring of the adapter's name; the first match wins.
FP32_PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    # NVIDIA H200 datasheet (nvidia.com/en-us/data-center/h200): FP32 67 TFLOPS (SXM).
    ("h200", 67.0),
    # NVIDIA H100 datasheet (nvidia.com/en-us/data-center/h100): FP32 67 TFLOPS (SXM).
    ("h100", 67.0),
    # NVIDIA A100 datasheet (nvidia.com/en-us/data-center/a100): FP32 19.5 TFLOPS.
    ("a100", 19.5),
    # NVIDIA Ada Lovelace architecture whitepaper, RTX 4090: 82.6 TFLOPS shader FP32.
    ("rtx 4090", 82.6),
    # NVIDIA Ampere GA102 whitepaper, RTX 3090: 35.6 TFLOPS FP32.
    ("rtx 3090", 35.6),
    # NVIDIA L4 datasheet: FP32 30.3 TFLOPS.
    ("nvidia l4", 30.3),
    # NVIDIA T4 datasheet: FP32 8.1 TFLOPS.
    ("tesla t4", 8.1),
    # Apple newsroom, "Apple unveils M2" (June 2022): the 10-core GPU does 3.6 TFLOPS.
    ("apple m2", 3.6),
    # Apple newsroom, "Apple unleashes M1" (Nov 2020): 2.6 TFLOPS.
    ("apple m1", 2.6),
    # Intel Iris Xe (Tiger Lake, 96 EUs): 96 EU x 8 FP32 lanes x 2 (FMA) x 1.35 GHz
    # = 2.07 TFLOPS (Intel Xe-LP architecture, EU count and max dynamic frequency from
    # ark.intel.com for the i7-1185G7).
    ("iris(r) xe", 2.07),
)


def fp32_peak_gflops(adapter_name: str) -> float | None:
    name = adapter_name.lower()
    for pattern, tflops in FP32_PEAK_TFLOPS:
        if pattern in name:
            return tflops * 1e3
    return None


def run_gpu_bench(
    json_path: str | None = None,
    repeat: int = 5,
    all_variants: bool = False,
    weights: str | None = None,
    image: str | None = None,
    quick: bool = False,
) -> int:
    device = get_device()
    assert isinstance(device, NativeDevice)
    peak = fp32_peak_gflops(device.adapter_name)
    choices, tune_s = timed_tune_model(device)
    measured = sum(c.measured for c in choices)
    print(f"adapter: {device.adapter_name}; features: {', '.join(sorted(device.features))}")
    print(f"fp32 peak: {f'{peak / 1e3:.1f} TFLOP/s' if peak else 'unknown (not in the table)'}")
    print(f"tuning: {measured} of {len(choices)} shape classes measured in {tune_s:.2f} s")
    print(f"median of {repeat} runs; numpy on the same shape in the same run")
    header = (
        f"{'kernel':<18} {'variant':<12} {'shape':<46} {'GFLOP/s':>9} {'% peak':>7} "
        f"{'numpy':>8} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    rng = np.random.default_rng(0)
    names = [v.name for v in variants.candidates(device, "matmul")]
    matmuls = [c for c in matmul_cases(device, rng) if c.kernel == "matmul"]
    others = [c for b in (conv_cases, attention_cases) for c in b(device, rng)]
    if quick:  # the smallest encoder product only
        matmuls, others = matmuls[-1:], []
    for case in [*matmuls, *(c for c in others if c.unit == "GFLOP/s")]:
        np_s = median_seconds(case.run_numpy, repeat, lambda: None)
        runs: list[str | None] = [None]
        if case in matmuls:
            runs += names if all_variants else ["blocked"]
        elif case.kernel == "conv2d":
            runs.append("blocked")
        for variant in runs:
            with pinning(variant, (case.kernel,)):
                gpu_s = median_seconds(case.run_gpu, repeat, device.wait_idle)
            row = _row(case, variant, gpu_s, np_s, peak)
            rows.append(row)
            print(_line(row))
    encoder = _encoder(weights, image, repeat, peak) if weights and image else None
    if json_path:
        doc = {
            "adapter": device.adapter_name,
            "features": sorted(device.features),
            "fp32_peak_gflops": peak,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "repeat": repeat,
            "tuning_seconds": tune_s,
            "tuning_classes_measured": measured,
            "choices": {f"{c.kernel}/{c.shape_class}": c.variant for c in choices},
            "kernels": rows,
            "encoder": encoder,
        }
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
        print(f"wrote {json_path}")
    return 0


def _row(case: Case, variant: str | None, gpu_s: float, np_s: float, peak: float | None) -> dict:
    ours, theirs = case.work / gpu_s / 1e9, case.work / np_s / 1e9
    return {
        "kernel": case.kernel,
        "variant": variant or "tuned",
        "shape": case.shape,
        "gflops": ours,
        "peak_share": ours / peak if peak else None,
        "numpy_gflops": theirs,
        "ratio": ours / theirs,
        "ms": gpu_s * 1e3,
    }


def _line(row: dict) -> str:
    share = f"{100 * row['peak_share']:.1f}" if row["peak_share"] is not None else "-"
    return (
        f"{row['kernel']:<18} {row['variant']:<12} {row['shape'][:46]:<46} "
        f"{row['gflops']:>9.2f} {share:>7} {row['numpy_gflops']:>8.2f} {row['ratio']:>6.3f}"
    )


def _encoder(weights: str, image: str, repeat: int, peak: float | None) -> dict:
    """set_image, tuned and blocked-only in turns (so load drifts hit both), medians."""
    predictor, device, pixels = load_bench_inputs(weights, image)
    times: dict[str, list[float]] = {"tuned": [], "blocked": []}
    for i in range(repeat + 1):
        for variant in (None, "blocked"):
            with pinning(variant, ("matmul", "conv2d")):
                started = time.perf_counter()
                predictor.set_image(pixels)
                device.wait_idle()
                if i:  # the first round compiles pipelines
                    times[variant or "tuned"].append(time.perf_counter() - started)
    result = {}
    for name, seconds in times.items():
        s = statistics.median(seconds)
        gflops = ENCODER_GFLOP / s
        share = f"{100 * gflops / peak:.2f} % of peak" if peak else "peak unknown"
        print(f"encoder ({name}): {s:.2f} s, {gflops:.1f} GFLOP/s, {share}")
        result[name] = {"seconds": s, "gflops": gflops}
    speedup = result["blocked"]["seconds"] / result["tuned"]["seconds"]
    print(f"encoder speed-up, tuned over blocked only: {speedup:.2f}x")
    return result
