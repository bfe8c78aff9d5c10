"""onnxruntime (CPU) on the package's own ONNX export, beside the native model.

The ONNX files are exported once per weights file into `.cache/onnx/<sha256 prefix>/` and
reused. onnxruntime gets exactly what the package's encoder gets (the GPU pre-processing's
output, read back and made NCHW) and the same prompt: one foreground point plus SAM's
padding point, all four mask channels out (the export always computes them).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..gpu.native import NativeDevice
from ..predictor import Predictor
from ..weights.files import sha256_file

NO_MASK = np.zeros((1, 1, 256, 256), np.float32)
# Native decoder medians take at least this many runs, as `sandseg bench model` does.
MIN_DECODER_RUNS = 5


@dataclass
class OnnxModels:
    encoder: Path
    decoder: Path
    weights_sha256: str


@dataclass
class OrtCpuRun:
    """The inputs both runtimes get and onnxruntime CPU's outputs, plus the report."""

    image: np.ndarray  # (1, 3, 1024, 1024) normalised, padded: the package's own input
    coords: np.ndarray  # (1, 2, 2) the point and the padding point, 1024-space
    labels: np.ndarray  # (1, 2) 1 and -1
    embeddings: np.ndarray  # (1, 256, 64, 64) onnxruntime CPU's
    low_res: np.ndarray  # (1, 4, 256, 256) onnxruntime CPU's, from its own embeddings
    report: dict[str, Any] = field(default_factory=dict)


def exported_models(
    weights: str | Path, cache: Path, progress: Callable[[str], None] = print
) -> OnnxModels:
    """The encoder and decoder ONNX files of `weights`, exported on first use."""
    from ..export import DECODER_FILE, ENCODER_FILE, export_onnx

    sha256 = sha256_file(weights)
    folder = cache / "onnx" / sha256[:16]
    models = OnnxModels(folder / ENCODER_FILE, folder / DECODER_FILE, sha256)
    if models.encoder.is_file() and models.decoder.is_file():
        progress(f"reusing the ONNX export in {folder}")
    else:
        export_onnx(weights, folder, progress=progress)
    return models


def decoder_feeds(embeddings: np.ndarray, coords: np.ndarray, labels: np.ndarray) -> dict:
    return {
        "image_embeddings": embeddings,
        "point_coords": coords,
        "point_labels": labels,
        "mask_input": NO_MASK,
        "has_mask_input": np.zeros(1, np.float32),
    }


def rel_l2(got: np.ndarray, want: np.ndarray) -> float:
    got, want = got.astype(np.float64), want.astype(np.float64)
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def ort_cpu_side_by_side(
    predictor: Predictor,
    pixels: np.ndarray,
    point: tuple[float, float],
    models: OnnxModels,
    repeat: int,
    progress: Callable[[str], None] = print,
) -> OrtCpuRun:
    """onnxruntime CPU's encoder and decoder medians on `pixels` (H, W, 3) uint8 and `point`
    (x, y) in original pixels, and how far its outputs are from the package's."""
    import onnxruntime as ort

    image, coords, labels = _same_inputs(predictor, pixels, point)
    options = ort.SessionOptions()
    progress("onnxruntime CPU: loading the sessions")
    start = time.perf_counter()
    encoder = ort.InferenceSession(str(models.encoder), options, ["CPUExecutionProvider"])
    decoder = ort.InferenceSession(str(models.decoder), options, ["CPUExecutionProvider"])
    session_s = time.perf_counter() - start

    progress("onnxruntime CPU: timing the encoder")
    (embeddings,), encoder_s = _timed_runs(lambda: encoder.run(None, {"image": image}), repeat)
    progress("onnxruntime CPU: timing the decoder")
    feeds = decoder_feeds(embeddings, coords, labels)
    (low_res, iou), decoder_s = _timed_runs(
        lambda: decoder.run(None, feeds), max(repeat, MIN_DECODER_RUNS)
    )

    # The package on the same image and prompt: its own embeddings, its multimask channels.
    predictor.set_image(pixels)
    ours = predictor.get_image_embedding()
    _, our_iou, our_low_res = predictor.predict(np.array([point]), np.array([1]))
    report = {
        "onnxruntime": ort.__version__,
        "provider": "CPUExecutionProvider",
        "intra_op_threads": options.intra_op_num_threads,  # 0: onnxruntime's default
        "session_ms": session_s * 1e3,
        "encoder_ms": encoder_s * 1e3,
        "decoder_ms": decoder_s * 1e3,
        "embeddings_rel_l2": rel_l2(ours, embeddings),
        "low_res_rel_l2": rel_l2(our_low_res, low_res[0, 1:]),
        "iou_max_abs": float(np.max(np.abs(our_iou - iou[0, 1:]))),
    }
    return OrtCpuRun(image, coords, labels, embeddings, low_res, report)


def _same_inputs(
    predictor: Predictor, pixels: np.ndarray, point: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The package's pre-processed image as NCHW and the prompt in 1024-space, float32."""
    model, device = predictor.model, predictor.device
    assert isinstance(device, NativeDevice)
    h, w = pixels.shape[:2]
    x, info = model.preprocess(pixels.tobytes(), h, w, 3)
    hwc = np.frombuffer(device.read_sync(x), np.float32).reshape(x.shape)
    image = np.ascontiguousarray(hwc.transpose(2, 0, 1)[None])  # (1, 3, 1024, 1024)
    sx, sy = info.resized[1] / w, info.resized[0] / h
    coords = np.array([[[point[0] * sx, point[1] * sy], [0.0, 0.0]]], np.float32)
    labels = np.array([[1, -1]], np.float32)
    return image, coords, labels


def _timed_runs(run: Callable[[], list[Any]], repeat: int) -> tuple[list[Any], float]:
    """The outputs of a first, untimed run and the median seconds of `repeat` more."""
    outputs = run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()  # returns when the outputs are ready on the host
        times.append(time.perf_counter() - start)
    return outputs, statistics.median(times)
