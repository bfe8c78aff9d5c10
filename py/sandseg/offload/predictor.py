"""`OffloadPredictor`: the native, SamPredictor-shaped face of an offload session.

    predictor = OffloadPredictor.connect("http://127.0.0.1:8000", weights="mobile_sam.safetensors")
    predictor.set_mode("split:layers.1")          # or client, server, split:image, auto
    result = predictor.set_image(image)           # result.mode says which mode encoded it
    masks, iou, low_res = predictor.predict(point_coords=[[500, 375]], point_labels=[1])

numpy is used only to hand results back, as Predictor does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ..inputs import Prompt, image_bytes
from ..predictor import InputError, Predictor
from .client import OffloadClient, UrllibTransport
from .planner import Planner
from .session import ImageResult, OffloadSession
from .wire import WIRE_DTYPES


class OffloadPredictor:
    def __init__(self, session: OffloadSession) -> None:
        self.session = session

    @classmethod
    def connect(
        cls,
        server_url: str | None,
        weights: str | Path | None = None,
        mode: str = "auto",
        token: str | None = None,
        upload_dtype: str = "float32",
        download_dtype: str = "float16",
        objective: str = "latency",
        latency_budget_s: float | None = None,
    ) -> OffloadPredictor:
        """A local model from `weights` (None: server only) and the server at `server_url`
        (None: client only); boundary tensors go up as `upload_dtype`, embeddings come down
        as `download_dtype` ("float32" or "float16"; see OffloadSession). What "auto"
        optimises: objective "latency" (the fastest first mask) or "server" (the least server
        compute with a first mask within `latency_budget_s` seconds)."""
        try:
            planner = Planner(objective, latency_budget_s)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        local = Predictor.from_weights(weights) if weights is not None else None
        client = OffloadClient(UrllibTransport(server_url, token)) if server_url else None
        session = OffloadSession(
            local,
            client,
            planner,
            upload_dtype=_dtype(upload_dtype),
            download_dtype=_dtype(download_dtype),
        )
        if client is not None:
            asyncio.run(session.connect())
        session.set_mode(mode)
        return cls(session)

    @property
    def mode(self) -> str:
        return self.session.mode

    def set_mode(self, mode: str) -> None:
        self.session.set_mode(mode)

    def set_image(
        self, image: Any, image_format: str = "RGB", upload: tuple[bytes, str] | None = None
    ) -> ImageResult:
        """image as for Predictor.set_image; upload: the image file and its media type, sent
        instead of the pixels when the server needs the image."""
        pixels, height, width, channels = image_bytes(image, image_format)
        return asyncio.run(self.session.set_image(pixels, height, width, channels, upload))

    def predict(
        self,
        point_coords: Any = None,
        point_labels: Any = None,
        box: Any = None,
        mask_input: Any = None,
        multimask_output: bool = True,
    ) -> tuple[Any, Any, Any]:
        """-> (masks (C, H, W) bool, iou (C,), low-res logits (C, 256, 256)), as Predictor."""
        import numpy as np

        if mask_input is not None:
            mask_input = np.ascontiguousarray(mask_input, np.float32)
        prompt = Prompt.of(point_coords, point_labels, box, mask_input, multimask_output)
        p = asyncio.run(self.session.predict(prompt))
        return p.as_arrays()


def _dtype(name: str) -> str:
    try:
        return WIRE_DTYPES[name]
    except KeyError:
        raise InputError(f"dtype must be float32 or float16, got {name!r}") from None
