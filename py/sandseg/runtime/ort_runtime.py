"""The `onnxruntime` runtime: the stage graphs of `sandseg.export` on onnxruntime, with the
host's pre- and post-processing (runtime/host.py).

CPUExecutionProvider, or CUDAExecutionProvider first when the installed onnxruntime has it.
A stage cannot be stopped midway; the work stops at the next stage boundary (`checkpoint`).
`SANDSEG_CPU_THREADS=N` caps its CPU threads (a Ray replica's share of the machine).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort

from ..export import BOUNDARIES, DECODER, STAGES, StageGraphs
from ..inputs import Prompt
from ..model import ImageInfo
from ..predictor import LOW_RES, Prediction
from . import ONNXRUNTIME, host

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
THREADS_ENV = "SANDSEG_CPU_THREADS"


def providers() -> list[str]:
    """The execution providers to ask for, best first."""
    return [CUDA, CPU] if CUDA in ort.get_available_providers() else [CPU]


class OrtRuntime:
    name = ONNXRUNTIME

    def __init__(self, graphs: StageGraphs) -> None:
        asked = providers()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initializers are not ours
        # Idle pool threads sleep instead of spinning: on a 2-core machine shared with the
        # event loop and other processes, spinning threads took the cores the working ones
        # needed (one encode 1.55 s without spinning vs 3.46 s with, medians of 6 alternated).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.intra_op_num_threads = int(os.environ.get(THREADS_ENV) or 0)  # 0: every core
        self.sessions = {
            name: ort.InferenceSession(str(graphs.path(name)), options, asked)
            for name in [*STAGES, DECODER]
        }
        self.provider = self.sessions[DECODER].get_providers()[0]
        self.detail = f"onnxruntime {ort.__version__} {self.provider}"

    def preprocess(self, image: Any) -> tuple[bytes, ImageInfo]:
        x, info = host.preprocess(image)
        return x.tobytes(), info

    def run_stages(
        self, x: bytes, start: int, stop: int, checkpoint: Callable[[str], None]
    ) -> bytes:
        y = np.frombuffer(x, np.float32).reshape(BOUNDARIES[start])
        for index in range(start, stop):
            (y,) = self.sessions[STAGES[index]].run(["y"], {"x": y})
            checkpoint(STAGES[index])
        return np.ascontiguousarray(y, np.float32).tobytes()

    def decode(self, embeddings: bytes, info: ImageInfo, prompt: Prompt) -> Prediction:
        coords, labels = prompt.tokens(info)
        feeds = {
            "image_embeddings": np.frombuffer(embeddings, np.float32).reshape(BOUNDARIES[-1]),
            "point_coords": np.asarray(coords, np.float32)[None],
            "point_labels": np.asarray(labels, np.float32)[None],
            "mask_input": _mask_input(prompt.mask_input),
            "has_mask_input": np.array([0.0 if prompt.mask_input is None else 1.0], np.float32),
        }
        low_res, iou = self.sessions[DECODER].run(["low_res_masks", "iou_predictions"], feeds)
        # Channel 0 is SAM's single-mask output, channels 1..3 its multimask output.
        channels = slice(1, 4) if prompt.multimask_output else slice(0, 1)
        low_res = np.ascontiguousarray(low_res[0, channels])
        logits = host.upscale(low_res, info)
        h, w = info.original
        return Prediction(
            shape=(low_res.shape[0], h, w),
            masks=(logits > 0).astype(np.uint8).tobytes(),
            logits=None,
            low_res=low_res.tobytes(),
            iou=[float(v) for v in iou[0, channels]],
        )


def _mask_input(mask_input: bytes | None) -> np.ndarray:
    if mask_input is None:
        return np.zeros((1, 1, LOW_RES, LOW_RES), np.float32)
    return np.frombuffer(mask_input, np.float32).reshape(1, 1, LOW_RES, LOW_RES)
