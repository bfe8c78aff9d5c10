"""Runtimes: where the numerics run (DESIGN.md, "Runtimes").

A runtime runs encoder stages `[start, stop)` on a boundary tensor and the prompt encoder +
mask decoder for loaded weights, all in the offload wire format's layout (channels-last
float32 bytes), so a prefix on one runtime composes with the suffix on another:

- `wgpu`: the package's WGSL kernels through wgpu-py (`wgpu_runtime.WgpuRuntime`);
- `onnxruntime`: the stage graphs of `sandseg.export` on onnxruntime, CPUExecutionProvider or
  CUDAExecutionProvider when the installed onnxruntime has it (`ort_runtime.OrtRuntime`).

An edge package (numpy, onnxruntime): the core never imports it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any, Protocol

from ..inputs import Prompt
from ..model import ImageInfo
from ..predictor import Prediction

WGPU = "wgpu"
ONNXRUNTIME = "onnxruntime"
RUNTIMES = (WGPU, ONNXRUNTIME)


class Runtime(Protocol):
    """One way to run the model; every tensor is channels-last float32 bytes."""

    name: str
    # What exactly runs, for logs and /api/v1/model ("lavapipe ...", "CPUExecutionProvider").
    detail: str

    def preprocess(self, image: Any) -> tuple[bytes, ImageInfo]:
        """(H, W[, C]) uint8 gray, RGB or RGBA -> the normalised, padded (1024, 1024, 3) input
        and the image's sizes (the official resize: PIL's antialiased bilinear)."""
        ...

    def run_stages(
        self, x: bytes, start: int, stop: int, checkpoint: Callable[[str], None]
    ) -> bytes:
        """Encoder stages [start, stop) on the boundary tensor entering `start`; returns the
        one leaving `stop - 1`. `checkpoint(stage)` is called at least after every stage (it
        raises to stop the work)."""
        ...

    def decode(self, embeddings: bytes, info: ImageInfo, prompt: Prompt) -> Prediction:
        """A prompt (original pixels) on (64, 64, 256) embeddings -> masks at the original
        size, IoU predictions and low-res logits."""
        ...


def available_runtimes() -> list[str]:
    """The runtimes this installation can run: wgpu always; onnxruntime when it and onnx
    (which exports its graphs) are installed (the `serve` extra)."""
    installed = all(importlib.util.find_spec(name) for name in ("onnx", "onnxruntime"))
    return [WGPU, ONNXRUNTIME] if installed else [WGPU]


__all__ = ["ONNXRUNTIME", "RUNTIMES", "WGPU", "Runtime", "available_runtimes"]
