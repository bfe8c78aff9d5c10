"""`sandseg bench kernels`: each kernel at MobileSAM's shapes next to numpy doing the same math.

Throughput is GFLOP/s for compute-bound kernels and GB/s (bytes read + written once) for
memory-bound ones; every figure is the median of `repeat` runs, and the ratio is taken
against numpy measured in the same run on the same machine.
"""

from __future__ import annotations

import datetime
import functools
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..gpu import get_device
from ..gpu.native import NativeDevice


@dataclass
class Case:
    kernel: str
    shape: str
    unit: str  # "GFLOP/s" or "GB/s"
    work: float  # FLOPs or bytes per run
    run_gpu: Callable[[], object]
    run_numpy: Callable[[], object]


def _f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _affine(a: np.ndarray, b: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return a @ b + bias


def _up(device: NativeDevice, array: np.ndarray):
    return device.upload(np.ascontiguousarray(array).tobytes(), array.shape)


def matmul_cases(device: NativeDevice, rng: np.random.Generator) -> list[Case]:
    cases = []
    # (M, K, N, what): the linear layers that carry most of the encoder's 50.8 GFLOP.
    for m, k, n, what in [
        (16384, 128, 512, "layers.1 mlp.fc1"),
        (16384, 512, 128, "layers.1 mlp.fc2"),
        (17689, 128, 384, "layers.1 attn.qkv (361 windows)"),
        (4096, 160, 640, "layers.2 mlp.fc1"),
        (4096, 320, 1280, "layers.3 mlp.fc1"),
        (4096, 1280, 320, "layers.3 mlp.fc2"),
        (4096, 320, 256, "neck.0 (1x1 conv)"),
    ]:
        a, b, bias = _f32(rng, m, k), _f32(rng, k, n), _f32(rng, n)
        ga, gb, gbias = _up(device, a), _up(device, b), _up(device, bias)
        cases.append(
            Case(
                "matmul",
                f"{m}x{k} @ {k}x{n} +bias ({what})",
                "GFLOP/s",
                2.0 * m * k * n,
                functools.partial(ops.matmul, ga, gb, bias=gbias),
                functools.partial(_affine, a, b, bias),
            )
        )
    a, b = _f32(rng, 65536, 32), _f32(rng, 4, 32)
    ga, gb = _up(device, a), _up(device, b)
    cases.append(
        Case(
            "matmul_strided",
            "65536x32 @ (4x32)^T (mask = upscaled @ hyper_in^T)",
            "GFLOP/s",
            2.0 * 65536 * 32 * 4,
            lambda: ops.matmul(ga, gb, trans_b=True),
            lambda: a @ b.T,
        )
    )
    return cases


CASE_BUILDERS: list[Callable[[NativeDevice, np.random.Generator], list[Case]]] = [matmul_cases]


def _median_seconds(fn: Callable[[], object], repeat: int, sync: Callable[[], None]) -> float:
    fn()
    sync()  # the first run compiles pipelines; it is not timed
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_kernel_bench(
    json_path: str | None = None, repeat: int = 5, only: list[str] | None = None
) -> int:
    device = get_device()
    assert isinstance(device, NativeDevice)
    rng = np.random.default_rng(0)
    print(f"adapter: {device.adapter_name}; median of {repeat} runs; numpy in the same run")
    header = f"{'kernel':<20} {'shape':<58} {'sandseg':>10} {'numpy':>10} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    results = []
    for build in CASE_BUILDERS:
        for case in build(device, rng):
            if only and case.kernel not in only:
                continue
            gpu_s = _median_seconds(case.run_gpu, repeat, device.wait_idle)
            np_s = _median_seconds(case.run_numpy, repeat, lambda: None)
            ours, theirs = case.work / gpu_s / 1e9, case.work / np_s / 1e9
            print(
                f"{case.kernel:<20} {case.shape:<58} {ours:>10.2f} {theirs:>10.2f} "
                f"{ours / theirs:>6.3f}  {case.unit}"
            )
            results.append(
                {
                    "kernel": case.kernel,
                    "shape": case.shape,
                    "unit": case.unit,
                    "sandseg": ours,
                    "numpy": theirs,
                    "ratio": ours / theirs,
                    "sandseg_ms": gpu_s * 1e3,
                    "numpy_ms": np_s * 1e3,
                }
            )
    print("throughput in the unit shown on each row; ratio = sandseg / numpy")
    if json_path:
        doc = {
            "adapter": device.adapter_name,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "repeat": repeat,
            "results": results,
        }
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
        print(f"wrote {json_path}")
    return 0
