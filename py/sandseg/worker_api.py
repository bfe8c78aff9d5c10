"""The Python half of web/worker.js: one `Session` per worker owns the device and the model.

The worker (JavaScript) verifies and fetches the files, decodes images and measures time;
this module does everything with the GPU. Arguments come from JavaScript: the weights and
the pixels as JS typed arrays (read here without a copy of the whole file), prompts as JSON.
Results go back as plain JS objects holding typed arrays. Device loss (GP-1) is handled
here: rebuild the device and the model, replay the image, retry once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import js
from pyodide.ffi import to_js

from . import ops
from .gpu import set_device
from .gpu.browser import BrowserDevice, request_browser_device
from .model import MobileSAM
from .predictor import (
    LOW_RES,
    MAX_IMAGE_PIXELS,
    InputError,
    Prediction,
    Predictor,
    check_image_size,
)
from .weights import HostTensor, check_layout, mobile_sam_layout
from .weights.st_header import MAX_HEADER_BYTES, header_length, parse_header

# A second device loss this soon after the first is not retried (GP-1).
LOSS_WINDOW_S = 60.0


class JsSafetensors:
    """A safetensors file held in a JS Uint8Array, read one tensor at a time: the Python
    heap holds the header and the tensor being uploaded, never the whole file."""

    def __init__(self, data: Any) -> None:
        self._data = data
        total = int(data.length)
        length = header_length(data.subarray(0, 8).to_bytes(), total, MAX_HEADER_BYTES)
        self._start = 8 + length
        raw = data.subarray(8, self._start).to_bytes()
        entries, _ = parse_header(raw, total - self._start)
        self.entries = {entry.name: entry for entry in entries}
        # check_layout only looks at .shape and .dtype, which header entries have too.
        check_layout(cast(dict[str, HostTensor], self.entries), mobile_sam_layout())

    def __call__(self, name: str) -> HostTensor:
        entry = self.entries[name]
        begin, end = self._start + entry.begin, self._start + entry.end
        return HostTensor(entry.dtype, entry.shape, self._data.subarray(begin, end).to_bytes())


def _to_js(value: Any) -> Any:
    return to_js(value, dict_converter=js.Object.fromEntries)


class Session:
    """The model in one worker: `await start(weights)`, then `set_image` / `predict`."""

    def __init__(self) -> None:
        self.device: BrowserDevice | None = None
        self.predictor: Predictor | None = None
        self._weights: Any = None  # the JS Uint8Array, kept for rebuilding after a loss
        self._image: tuple[bytes, int, int] | None = None
        self._previous: bytes | None = None
        self._last_loss = -LOSS_WINDOW_S

    @property
    def adapter(self) -> str:
        return self.device.adapter_name if self.device else "none"

    @property
    def max_image_pixels(self) -> int:
        return MAX_IMAGE_PIXELS

    async def start(self, weights: Any) -> None:
        """Create the WebGPU device and upload the weights (a JS Uint8Array, safetensors)."""
        tensors = JsSafetensors(weights)
        self._weights = weights
        self.device = await request_browser_device()
        set_device(self.device)
        async with self.device.error_scope("uploading the weights"):
            self.predictor = Predictor(MobileSAM(self.device, tensors))

    async def compile_pipelines(self) -> None:
        """Create every pipeline the model uses without running it, and wait until the
        browser has compiled them (a dry run of pre-processing, encoder and decoder)."""
        device, model = self._ready()
        # The one tensor the model computes once and caches: computed for real first, so the
        # dry run cannot cache an empty one.
        model.prompt_encoder.dense_pe()
        async with device.compile_only():
            x, info = model.preprocess(bytes(4 * 1024 * 768), 768, 1024, 4)
            embeddings = model.encode(x)
            mask = device.empty((LOW_RES, LOW_RES, 1))
            for mask_input in (None, mask):
                low_res, _, _ = model.decode(embeddings, [(1.0, 1.0)], [1], mask_input, True)
                ops.threshold(model.postprocess(low_res, info), 0.0)
        await device.finish()

    async def set_image(self, pixels: Any, width: int, height: int) -> None:
        """pixels: a JS Uint8Array / Uint8ClampedArray of (height, width, 4) RGBA bytes."""
        check_image_size(width, height)
        if int(pixels.length) != width * height * 4:
            raise InputError(f"expected {width * height * 4} RGBA bytes, got {pixels.length}")
        self._image = (pixels.to_bytes(), height, width)
        self._previous = None
        await self._recovering(self._encode)

    async def predict(self, prompt_json: str) -> Any:
        """prompt: {"points": [[x, y], ...] | null, "labels": [1, 0, ...] | null,
        "box": [x0, y0, x1, y1] | null, "maskInput": "previous" | null, "multimask": bool}
        in original-image pixels. Returns {masks: Uint8Array (C*H*W), shape: [C, H, W],
        iouPredictions, lowResMasks: Float32Array (C*256*256)}."""
        prompt = json.loads(prompt_json)
        mask_input = prompt.get("maskInput")
        if mask_input not in (None, "previous"):
            raise InputError(f'maskInput must be "previous" or null, got {mask_input!r}')
        if mask_input == "previous" and self._previous is None:
            raise InputError('maskInput "previous" needs an earlier prediction on this image')
        prediction = await self._recovering(lambda: self._decode(prompt, mask_input is not None))
        best = max(range(len(prediction.iou)), key=prediction.iou.__getitem__)
        plane = LOW_RES * LOW_RES * 4
        self._previous = prediction.low_res[best * plane : (best + 1) * plane]
        return _to_js(
            {
                "masks": to_js(memoryview(prediction.masks)),
                "shape": list(prediction.shape),
                "iouPredictions": prediction.iou,
                "lowResMasks": to_js(memoryview(prediction.low_res).cast("f")),
            }
        )

    def lose_device(self) -> None:
        """Testing GP-1: destroy the device as a driver reset would."""
        self._ready()[0].destroy()

    # -- internals ------------------------------------------------------------------------

    def _ready(self) -> tuple[BrowserDevice, MobileSAM]:
        if self.device is None or self.predictor is None:
            raise RuntimeError("the model is not loaded yet")
        return self.device, self.predictor.model

    async def _encode(self) -> None:
        device, _ = self._ready()
        assert self.predictor is not None and self._image is not None
        data, height, width = self._image
        await self.predictor.set_image_async(memoryview(data).cast("B", (height, width, 4)))
        await device.finish()

    async def _decode(self, prompt: dict[str, Any], refine: bool) -> Prediction:
        assert self.predictor is not None
        if not self.predictor.is_image_set:
            raise InputError("no image is set: call setImage first")
        points, labels = prompt.get("points") or None, prompt.get("labels") or None
        mask = memoryview(self._previous or b"").cast("f") if refine else None
        return await self.predictor.predict_async(
            point_coords=points,
            point_labels=labels,
            box=prompt.get("box"),
            mask_input=mask,
            multimask_output=bool(prompt.get("multimask", True)),
        )

    async def _recovering[T](self, step: Callable[[], Awaitable[T]]) -> T:
        """Run `step`; if the device was lost meanwhile, rebuild everything and retry once."""
        try:
            return await step()
        except InputError:
            raise
        except Exception:
            if self.device is None or not await self._was_lost():
                raise
        now = time.monotonic()
        if now - self._last_loss < LOSS_WINDOW_S:
            raise RuntimeError(
                f"the GPU device was lost twice within {LOSS_WINDOW_S:.0f} s "
                f"({self.device.lost}); reload the page to try again"
            )
        self._last_loss = now
        await self._rebuild()
        return await step()

    async def _was_lost(self) -> bool:
        # The lost promise may settle just after the failed call that revealed the loss.
        assert self.device is not None
        for _ in range(20):
            if self.device.lost is not None:
                return True
            await asyncio.sleep(0.05)
        return False

    async def _rebuild(self) -> None:
        lost = self.device.lost if self.device else None
        js.console.warn(f"sandseg: the GPU device was lost ({lost}); rebuilding it")
        await self.start(self._weights)
        if self._image is not None:
            await self._encode()
