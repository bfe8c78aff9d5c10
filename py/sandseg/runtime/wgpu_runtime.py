"""The `wgpu` runtime: the package's WGSL kernels through wgpu-py (the Predictor's path).

Boundary tensors go up and come back as bytes; a run of consecutive stages stays on the GPU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..gpu.native import NativeDevice
from ..inputs import Prompt, image_bytes
from ..model import ImageInfo
from ..model.tiny_vit import IMG_SIZE
from ..predictor import Prediction, Predictor
from . import WGPU


class WgpuRuntime:
    name = WGPU

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.model = predictor.model
        assert isinstance(predictor.device, NativeDevice)
        self.device: NativeDevice = predictor.device
        self.detail = f"wgpu-py on {self.device.adapter_name}"
        # The embeddings on the GPU now: clicks on one image upload its 4 MiB once, not per
        # click. Held by reference, so `is` cannot match a new image's bytes.
        self._current: tuple[bytes, ImageInfo] | None = None
        stages = self.model.image_encoder.stages
        self._inputs = [(IMG_SIZE, IMG_SIZE, 3), *(s.output_shape for s in stages)]

    def preprocess(self, image: Any) -> tuple[bytes, ImageInfo]:
        pixels, height, width, channels = image_bytes(image, "RGB")
        x, info = self.model.preprocess(pixels, height, width, channels)
        return self.device.read_sync(x), info

    def run_stages(
        self, x: bytes, start: int, stop: int, checkpoint: Callable[[str], None]
    ) -> bytes:
        tensor = self.device.upload(x, self._inputs[start])
        y = self.model.encode(
            tensor, start, stop, after_stage=checkpoint, between_blocks=checkpoint
        )
        return self.device.read_sync(y)

    def decode(self, embeddings: bytes, info: ImageInfo, prompt: Prompt) -> Prediction:
        current = self._current
        if current is None or current[0] is not embeddings or current[1] != info:
            self.predictor.set_image_embedding(embeddings, info.original)
            self._current = (embeddings, info)
        return asyncio.run(self.predictor.predict_prompt(prompt))
