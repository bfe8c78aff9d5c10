"""The `wasm` client runtime: the whole model on onnxruntime-web's WASM backend, for a browser
without a usable GPU (DESIGN.md, runtimes).

The numerics are web/ort_runtime.js's (`bridge`): the server's per-stage ONNX graphs
(GET /api/v1/onnx/{graph}, checked against their sha256) on onnxruntime-web, and pre- and
post-processing on JS typed arrays. This module gives them the shape OffloadSession drives a
local model through (`predictor.model.preprocess`, `model.image_encoder.steps`,
`predictor.device.finish` / `read`, `predict_prompt`), so every mode works on wasm as on
WebGPU: client, a wasm prefix with the server's suffix, split:image.

Pre-processing is PIL's antialiased bilinear resize bit for bit: the same fixed-point tables
as the WGSL kernel (ops.image.pil_bilinear_table, in Pillow's pass order), applied in JS.
Post-processing is SAM's two bilinear resizes (align_corners=False) in float32, as
runtime/host.py does natively.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Iterator
from typing import Any

from pyodide.ffi import to_js

from ..inputs import Prompt, image_info
from ..model import ImageInfo
from ..model.tiny_vit import Step
from ..ops.image import pil_bilinear_table, resize_longest_side, resize_passes
from ..predictor import LOW_RES, ImageState, InputError, Prediction
from ..weights.layout import ENCODER_STAGES, IMG_SIZE, STAGE_BOUNDARIES

WASM = "wasm"
WEBGPU = "webgpu"
STAGES = ENCODER_STAGES
# Channels-last boundary tensors: BOUNDARIES[i] enters stage i.
BOUNDARIES = STAGE_BOUNDARIES


class WasmTensor:
    """A boundary tensor in the worker's JS memory (a Float32Array), or the task computing
    it; `await WasmDevice.finish()` settles every pending one."""

    def __init__(self, shape: tuple[int, int, int], data: Any = None) -> None:
        self.shape = shape
        self.data = data
        self.task: asyncio.Future[Any] | None = None

    async def value(self) -> Any:
        if self.data is None:
            assert self.task is not None
            self.data = await self.task
        return self.data


class WasmDevice:
    """What OffloadSession awaits on: `finish` waits for the stages started so far."""

    adapter_name = "wasm (onnxruntime-web, CPU)"

    def __init__(self) -> None:
        self._pending: list[WasmTensor] = []

    def start(self, tensor: WasmTensor, work: Any) -> WasmTensor:
        tensor.task = asyncio.ensure_future(work)
        self._pending.append(tensor)
        return tensor

    async def finish(self) -> list[Any]:
        """Wait for every pending stage; no GPU submissions to report."""
        pending, self._pending = self._pending, []
        for tensor in pending:
            await tensor.value()
        return []

    async def read(self, tensor: WasmTensor) -> bytes:
        return bytes((await tensor.value()).to_bytes())


class WasmEncoder:
    def __init__(self, bridge: Any, device: WasmDevice) -> None:
        self.bridge, self.device = bridge, device

    def steps(self, x: WasmTensor, start: int = 0, stop: int | None = None) -> Iterator[Step]:
        """Stages [start, stop), one step each (a stage is one ONNX run: no smaller blocks)."""
        for index in range(start, len(STAGES) if stop is None else stop):
            x = self.run_stage(index, x)
            yield Step(STAGES[index], 0, True, x)  # type: ignore[arg-type]

    def run_stage(self, index: int, x: WasmTensor) -> WasmTensor:
        async def run() -> Any:
            return await self.bridge.runStage(STAGES[index], await x.value(), to_js(x.shape))

        return self.device.start(WasmTensor(BOUNDARIES[index + 1]), run())


class WasmModel:
    """model.preprocess and model.encode / image_encoder.steps, as OffloadSession calls them."""

    def __init__(self, bridge: Any, device: WasmDevice) -> None:
        self.bridge = bridge
        self.image_encoder = WasmEncoder(bridge, device)

    def preprocess(
        self, pixels: Any, height: int, width: int, channels: int
    ) -> tuple[WasmTensor, ImageInfo]:
        """(height, width, channels) uint8 bytes -> the normalised, padded (1024, 1024, 3)
        image in JS memory, resized exactly as PIL (the WGSL kernel's tables, in JS)."""
        if channels not in (1, 3, 4):
            raise InputError(f"images must have 1, 3 or 4 channels, got {channels}")
        new_h, new_w = resize_longest_side(height, width, IMG_SIZE)
        src = to_js(memoryview(bytes(pixels)))
        size = (height, width)
        for horizontal in resize_passes(height, width, new_h, new_w):
            out = (size[0], new_w) if horizontal else (new_h, size[1])
            axis = (size[1], out[1]) if horizontal else (size[0], out[0])
            taps, table = pil_bilinear_table(*axis)
            src = self.bridge.resizePass(
                src, *size, channels, *out, horizontal, taps, to_js(memoryview(table))
            )
            size, channels = out, 3
        x = self.bridge.normalize(src, new_h, new_w)
        return WasmTensor(BOUNDARIES[0], x), ImageInfo((height, width), (new_h, new_w))

    def encode(self, x: WasmTensor, start: int = 0, stop: int | None = None) -> WasmTensor:
        for step in self.image_encoder.steps(x, start, stop):
            x = step.x  # type: ignore[assignment]
        return x


class WasmPredictor:
    """The local model on wasm, in Predictor's shape where OffloadSession uses it."""

    runtime = WASM

    def __init__(self, bridge: Any) -> None:
        self.bridge = bridge
        self.device = WasmDevice()
        self.model = WasmModel(bridge, self.device)
        self._embeddings: WasmTensor | None = None
        self._info: ImageInfo | None = None

    @property
    def threads(self) -> int:
        return int(self.bridge.threads)

    def restore_image(self, state: ImageState) -> None:
        self._embeddings, self._info = state.embeddings, state.info  # type: ignore[assignment]

    def set_image_embedding(self, embedding_hwc: bytes, original_size: tuple[int, int]) -> None:
        """(64, 64, 256) channels-last float32 bytes for an image of original_size (H, W)."""
        h, w = original_size
        floats = to_js(memoryview(bytes(embedding_hwc)).cast("f"))
        self._embeddings = WasmTensor(BOUNDARIES[-1], floats)
        self._info = image_info(h, w)

    async def get_image_embedding_async(self) -> bytes:
        if self._embeddings is None:
            raise InputError("no image is set: call set_image(image) first")
        return await self.device.read(self._embeddings)

    async def predict_prompt(self, prompt: Prompt) -> Prediction:
        """SAM's prompt encoder and mask decoder on wasm, the masks upscaled in JS."""
        if self._embeddings is None or self._info is None:
            raise InputError("no image is set: call set_image(image) before predict()")
        info = self._info
        coords, labels = prompt.tokens(info)
        points = to_js(memoryview(_floats([v for xy in coords for v in xy])).cast("f"))
        point_labels = to_js(memoryview(_floats([float(v) for v in labels])).cast("f"))
        mask = None
        if prompt.mask_input is not None:
            mask = to_js(memoryview(bytes(prompt.mask_input)).cast("f"))
        embeddings = await self._embeddings.value()
        out = await self.bridge.decode(embeddings, points, point_labels, mask)
        # Channel 0 is SAM's single-mask output, channels 1..3 its multimask output.
        first, count = (1, 3) if prompt.multimask_output else (0, 1)
        low_res = out.lowRes.subarray(first * LOW_RES * LOW_RES, (first + count) * LOW_RES**2)
        masks = self.bridge.upscale(low_res, count, *info.resized, *info.original)
        iou = array("f", out.iou.to_bytes()).tolist()[first : first + count]
        h, w = info.original
        return Prediction(
            shape=(count, h, w),
            masks=bytes(masks.to_bytes()),
            logits=None,
            low_res=bytes(low_res.to_bytes()),
            iou=iou,
        )


def _floats(values: list[float]) -> bytes:
    return array("f", values).tobytes()
