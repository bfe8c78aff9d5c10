"""The Python half of web/worker.js: one `Session` per worker owns the device and the model.

The worker (JavaScript) verifies and fetches the files, decodes images and measures time;
this module does everything with the GPU. Arguments come from JavaScript: the weights and
the pixels as JS typed arrays (read here without a copy of the whole file), prompts as JSON.
Results go back as plain JS objects holding typed arrays. The offload session decides where
each image is encoded and each prompt decoded (offload/session.py). Device loss (GP-1) is
handled here: rebuild the device and the model, replay the image, retry once; a second loss
within a minute, or a browser that cannot run the model at all, moves the work to the server.
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
from .gpu import GPUError, set_device
from .gpu.browser import BrowserDevice, request_browser_device
from .model import MobileSAM, probe_image
from .offload.client import OffloadClient, OffloadError
from .offload.fetch import FetchTransport
from .offload.planner import Estimate
from .offload.session import ImageResult, OffloadSession
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
# Image files the server decodes; others travel as pixels.
UPLOAD_TYPES = ("image/jpeg", "image/png", "image/webp")


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


def _estimate(estimate: Estimate) -> dict[str, Any]:
    return {
        "mode": estimate.mode,
        "firstMaskS": estimate.first_mask_s,
        "clickS": estimate.click_s,
        "clientS": estimate.client_s,
        "serverS": estimate.server_s,
        "uploadBytes": estimate.upload_bytes,
        "downloadBytes": estimate.download_bytes,
    }


def _to_js(value: Any) -> Any:
    return to_js(value, dict_converter=js.Object.fromEntries)


class Session:
    """The model in one worker, in any offload mode.

    Boot: `await open_device()` (None, or why this browser cannot run the model), then
    `await load_model(weights)` and `await compile_pipelines()` when it can, then
    `await connect(server)`. Then `set_mode`, `set_image`, `predict`."""

    def __init__(self, token: str | None = None) -> None:
        self.device: BrowserDevice | None = None
        self.predictor: Predictor | None = None
        self.offload: OffloadSession | None = None
        self.client = OffloadClient(FetchTransport(token))
        self.server_error: str | None = None  # why the server cannot be used, if it cannot
        self.weights_sha: str | None = None  # the server's weights
        self._weights: Any = None  # the JS Uint8Array, kept for rebuilding after a loss
        self._image: tuple[bytes, int, int, tuple[bytes, str] | None] | None = None
        self._previous: bytes | None = None
        # The image's embeddings, copied off the GPU once encoded (4 MiB): a rebuilt device
        # gets them back without encoding the image again. (bytes, (height, width))
        self._kept: tuple[bytes, tuple[int, int]] | None = None
        self._last_loss = -LOSS_WINDOW_S

    @property
    def adapter(self) -> str:
        return self.device.adapter_name if self.device else "none"

    @property
    def max_image_pixels(self) -> int:
        return MAX_IMAGE_PIXELS

    async def open_device(self) -> str | None:
        """Create the WebGPU device; None when it works, else why not (GP-1, GP-4)."""
        try:
            self.device = await request_browser_device()
        except GPUError as exc:
            return str(exc)
        set_device(self.device)
        return None

    async def load_model(self, weights: Any) -> str | None:
        """Upload the weights (a JS Uint8Array, safetensors); None when it worked, else why
        not (out of GPU memory, GP-6): the session then offloads everything."""
        tensors = JsSafetensors(weights)
        self._weights = weights
        device = self._ready_device()
        try:
            async with device.error_scope("uploading the weights"):
                self.predictor = Predictor(MobileSAM(device, tensors))
        except GPUError as exc:
            self.predictor = None
            return f"the GPU could not hold the model ({exc})"
        return None

    async def compile_pipelines(self) -> None:
        """Create every pipeline the model uses without running it, and wait until the
        browser has compiled them (a dry run of pre-processing, encoder and decoder)."""
        device, model = self._ready()
        # The one tensor the model computes once and caches: computed for real first, so the
        # dry run cannot cache an empty one.
        model.prompt_encoder.dense_pe()
        async with device.compile_only():
            x, info = model.preprocess(*probe_image())
            embeddings = model.encode(x)
            mask = device.empty((LOW_RES, LOW_RES, 1))
            for mask_input in (None, mask):
                low_res, _, _ = model.decode(embeddings, [(1.0, 1.0)], [1], mask_input, True)
                ops.threshold(model.postprocess(low_res, info), 0.0)
        await device.finish()

    async def connect(self, client_problem: str | None) -> Any:
        """Read the server's model description and profile, probe this device, and pick the
        starting mode: auto when both sides work, else the side that does. `client_problem`:
        why this browser cannot run the model (None when it can)."""
        try:
            description = await self.client.describe()
            self.weights_sha = description.weights_sha256
            if description.profile is None:
                raise OffloadError(0, "the server has no profile")
        except OffloadError as exc:
            self.server_error = f"the offload server is not available ({exc})"
        client = None if self.server_error else self.client
        if self.predictor is None and client is None:
            raise RuntimeError(f"{client_problem}; and {self.server_error}")
        self.offload = OffloadSession(self.predictor, client, low_res="best")
        if client is not None:
            await self.offload.connect(probe=self.predictor is not None)
        if client_problem:
            self.offload.disable_client(client_problem)
        return self.mode_info()

    def set_mode(self, mode: str) -> Any:
        self._offload().set_mode(mode)
        return self.mode_info()

    def mode_info(self) -> Any:
        offload = self._offload()
        plan = offload.planner.last_plan
        return _to_js(
            {
                "mode": offload.mode,
                "clientAvailable": offload.predictor is not None,
                "serverAvailable": offload.client is not None,
                "serverError": self.server_error,
                "notice": offload.notice,
                "plan": plan.reason if plan else None,
                "estimates": [_estimate(e) for e in plan.estimates] if plan else [],
                "weightsSha256": self.weights_sha,
            }
        )

    async def set_image(
        self, pixels: Any, width: int, height: int, file: Any = None, file_type: str = ""
    ) -> Any:
        """pixels: a JS Uint8Array / Uint8ClampedArray of (height, width, 4) RGBA bytes;
        file: the image file's bytes (a JS Uint8Array) when there is one, uploaded instead of
        the pixels when the server needs the image."""
        check_image_size(width, height)
        if int(pixels.length) != width * height * 4:
            raise InputError(f"expected {width * height * 4} RGBA bytes, got {pixels.length}")
        upload = None
        if file is not None and file_type in UPLOAD_TYPES:
            upload = (file.to_bytes(), file_type)
        self._image = (pixels.to_bytes(), height, width, upload)
        self._previous = None
        self._kept = None
        result = await self._recovering(self._encode, replay_image=False)
        plan = self._offload().planner.last_plan if self._offload().mode == "auto" else None
        return _to_js(
            {
                "mode": result.mode,
                "reason": result.reason,
                "plan": plan.reason if plan else None,
                "estimates": [_estimate(e) for e in plan.estimates] if plan else [],
                "notice": self._offload().notice,
                "uploadBytes": result.upload_bytes,
                "downloadBytes": result.download_bytes,
                "serverMs": result.server_seconds * 1000,
                "clientMs": {k: v * 1000 for k, v in result.client_parts.items()},
                "submissionsMs": [[name, s * 1000] for name, s in result.submissions],
            }
        )

    async def predict(self, prompt_json: str) -> Any:
        """prompt: {"points": [[x, y], ...] | null, "labels": [1, 0, ...] | null,
        "box": [x0, y0, x1, y1] | null, "maskInput": "previous" | null, "multimask": bool}
        in original-image pixels. Returns {masks: Uint8Array (C*H*W), shape: [C, H, W],
        iouPredictions, lowResMasks: Float32Array (K*256*256), lowResShape: [K, 256, 256],
        mode}; K = C, except in server mode where only the best mask's logits travel."""
        prompt = json.loads(prompt_json)
        mask_input = prompt.get("maskInput")
        if mask_input not in (None, "previous"):
            raise InputError(f'maskInput must be "previous" or null, got {mask_input!r}')
        if mask_input == "previous" and self._previous is None:
            raise InputError('maskInput "previous" needs an earlier prediction on this image')
        before = self._traffic()
        prediction = await self._recovering(lambda: self._decode(prompt, mask_input is not None))
        up, down, server_s = (
            after - first for after, first in zip(self._traffic(), before, strict=True)
        )
        plane = LOW_RES * LOW_RES * 4
        planes = len(prediction.low_res) // plane
        best = max(range(len(prediction.iou)), key=prediction.iou.__getitem__)
        kept = best if planes == len(prediction.iou) else 0
        self._previous = prediction.low_res[kept * plane : (kept + 1) * plane]
        offload = self._offload()
        return _to_js(
            {
                "masks": to_js(memoryview(prediction.masks)),
                "shape": list(prediction.shape),
                "iouPredictions": prediction.iou,
                "lowResMasks": to_js(memoryview(prediction.low_res).cast("f")),
                "lowResShape": [planes, LOW_RES, LOW_RES],
                "mode": offload.image_mode,
                "notice": offload.notice,
                "uploadBytes": up,
                "downloadBytes": down,
                "serverMs": server_s * 1000,
            }
        )

    async def provoke_gpu_errors(self) -> Any:
        """Testing GP-6: a buffer no GPU can hold and a shader that does not compile, each in
        its error scopes; returns the GPUError messages they raised (both must name what
        failed) and leaves the device working."""
        device = self._ready_device()
        messages = []
        try:
            async with device.error_scope("a 1 TiB buffer"):
                device._create_buffer(1 << 40)
        except GPUError as exc:
            messages.append(str(exc))
        try:
            device._create_pipeline("not_wgsl", "this is not WGSL", {}, 1, 1)
            await device.check_errors()
        except GPUError as exc:
            messages.append(str(exc))
        return _to_js(messages)

    def lose_device(self) -> None:
        """Testing GP-1: destroy the device as a driver reset would."""
        self._ready()[0].destroy()

    # -- internals ------------------------------------------------------------------------

    def _traffic(self) -> tuple[float, float, float]:
        return self.client.bytes_up, self.client.bytes_down, self.client.server_seconds

    def _offload(self) -> OffloadSession:
        if self.offload is None:
            raise RuntimeError("the session is not connected yet")
        return self.offload

    def _ready_device(self) -> BrowserDevice:
        if self.device is None:
            raise RuntimeError("the GPU device is not open")
        return self.device

    def _ready(self) -> tuple[BrowserDevice, MobileSAM]:
        if self.device is None or self.predictor is None:
            raise RuntimeError("the model is not loaded yet")
        return self.device, self.predictor.model

    async def _encode(self) -> ImageResult:
        assert self._image is not None
        data, height, width, upload = self._image
        result = await self._offload().set_image(data, height, width, 4, upload)
        if self.device is not None and self.predictor is not None:
            await self.device.finish()
            if result.mode != "server":
                embeddings = await self.predictor.get_image_embedding_async()
                self._kept = (embeddings, (height, width))
        return result

    async def _decode(self, prompt: dict[str, Any], refine: bool) -> Prediction:
        offload = self._offload()
        if offload.image_mode is None:
            raise InputError("no image is set: call setImage first")
        points, labels = prompt.get("points") or None, prompt.get("labels") or None
        mask = memoryview(self._previous or b"").cast("f") if refine else None
        return await offload.predict(
            point_coords=points,
            point_labels=labels,
            box=prompt.get("box"),
            mask_input=mask,
            multimask_output=bool(prompt.get("multimask", True)),
        )

    async def _recovering[T](
        self, step: Callable[[], Awaitable[T]], *, replay_image: bool = True
    ) -> T:
        """Run `step`; if the device was lost meanwhile, rebuild everything and retry once.
        A second loss within LOSS_WINDOW_S switches to the server when there is one (GP-1);
        without one, the device is rebuilt again: the page never needs a reload for a loss.
        replay_image: put the current image back on the new device first (not when `step`
        encodes an image itself)."""
        try:
            return await step()
        except InputError:
            raise
        except Exception:
            if self.device is None or not await self._was_lost():
                raise
        now = time.monotonic()
        if now - self._last_loss < LOSS_WINDOW_S and self._offload().client is not None:
            reason = (
                f"the GPU device was lost twice within {LOSS_WINDOW_S:.0f} s ({self.device.lost})"
            )
            self._drop_device()
            self._offload().disable_client(reason)
            if replay_image:
                await self._encode()
            return await step()
        self._last_loss = now
        await self._rebuild(replay_image)
        return await step()

    async def _was_lost(self) -> bool:
        # The lost promise may settle just after the failed call that revealed the loss.
        assert self.device is not None
        for _ in range(20):
            if self.device.lost is not None:
                return True
            await asyncio.sleep(0.05)
        return False

    def _drop_device(self) -> None:
        self.device = None
        self.predictor = None

    async def _rebuild(self, replay_image: bool) -> None:
        lost = self.device.lost if self.device else None
        js.console.warn(f"sandseg: the GPU device was lost ({lost}); rebuilding it")
        problem = await self.open_device() or await self.load_model(self._weights)
        offload = self._offload()
        if problem is not None:
            self._drop_device()
            if offload.client is None:
                raise RuntimeError(f"{problem}; reload the page to try again")
            offload.disable_client(problem)
        else:
            offload.predictor = self.predictor
        if not replay_image or self._image is None or offload.image_mode == "server":
            return
        if self._kept is not None and self.predictor is not None:
            self.predictor.set_image_embedding(*self._kept)
        else:
            await self._encode()
