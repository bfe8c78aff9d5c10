"""The model on this browser's GPU, and what happens when the device is lost (GP-1).

A lost device is rebuilt (device, weights, pipelines on first use) and the work retried once,
with the image's embeddings put back from a copy kept off the GPU. A second loss within
LOSS_WINDOW_S moves the work to the server when there is one; without one, the device is
rebuilt again: the page never needs a reload for a loss.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import js

from ..gpu import GPUError, set_device
from ..gpu.browser import BrowserDevice, request_browser_device
from ..model import MobileSAM
from ..offload.session import OffloadSession
from ..predictor import InputError, Predictor
from .weights import JsSafetensors

# A second device loss this soon after the first is not retried (GP-1).
LOSS_WINDOW_S = 60.0


class LocalModel:
    """The device and the model on it; `kept`: the current image's embeddings, copied off
    the GPU once encoded (4 MiB: (bytes, (height, width))), so a rebuilt device gets them back
    without encoding the image again."""

    def __init__(self) -> None:
        self.device: BrowserDevice | None = None
        self.predictor: Predictor | None = None
        self.kept: tuple[bytes, tuple[int, int]] | None = None
        self._weights: Any = None  # the JS Uint8Array, kept for rebuilding after a loss
        self._last_loss = -LOSS_WINDOW_S

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
        not (out of GPU memory, GP-6)."""
        tensors = JsSafetensors(weights)
        self._weights = weights
        device = self.ready_device()
        try:
            async with device.error_scope("uploading the weights"):
                self.predictor = Predictor(MobileSAM(device, tensors))
        except GPUError as exc:
            self.predictor = None
            return f"the GPU could not hold the model ({exc})"
        return None

    def ready_device(self) -> BrowserDevice:
        if self.device is None:
            raise RuntimeError("the GPU device is not open")
        return self.device

    def ready(self) -> tuple[BrowserDevice, MobileSAM]:
        if self.device is None or self.predictor is None:
            raise RuntimeError("the model is not loaded yet")
        return self.device, self.predictor.model

    async def keep_embeddings(self, height: int, width: int) -> None:
        assert self.device is not None and self.predictor is not None
        await self.device.finish()
        self.kept = (await self.predictor.get_image_embedding_async(), (height, width))

    def drop(self) -> None:
        self.device = None
        self.predictor = None

    async def was_lost(self) -> bool:
        # The lost promise may settle just after the failed call that revealed the loss.
        if self.device is None:
            return False
        for _ in range(20):
            if self.device.lost is not None:
                return True
            await asyncio.sleep(0.05)
        return False

    def lost_again(self) -> bool:
        """Record a loss; True when the previous one was within LOSS_WINDOW_S."""
        now = time.monotonic()
        again = now - self._last_loss < LOSS_WINDOW_S
        self._last_loss = now
        return again

    async def rebuild(self) -> str | None:
        """A new device and the weights on it; None when that worked, else why not."""
        lost = self.device.lost if self.device else None
        js.console.warn(f"sandseg: the GPU device was lost ({lost}); rebuilding it")
        return await self.open_device() or await self.load_model(self._weights)


async def recovering[T](
    step: Callable[[], Awaitable[T]],
    local: LocalModel,
    offload: OffloadSession,
    replay: Callable[[bool], Awaitable[None]] | None,
) -> T:
    """Run `step`; if the device was lost meanwhile, rebuild it (or, on a second loss within
    LOSS_WINDOW_S, move to the server when there is one) and run `step` once more.
    replay(rebuilt): puts the current image back first (None when `step` encodes an image
    itself); rebuilt is False after the move to the server."""
    try:
        return await step()
    except InputError:
        raise
    except Exception:
        if not await local.was_lost():
            raise
    device = local.ready_device()
    if local.lost_again() and offload.client is not None:
        reason = f"the GPU device was lost twice within {LOSS_WINDOW_S:.0f} s ({device.lost})"
        local.drop()
        offload.disable_client(reason)
        if replay is not None:
            await replay(False)
        return await step()
    problem = await local.rebuild()
    if problem is not None:
        local.drop()
        if offload.client is None:
            raise RuntimeError(f"{problem}; reload the page to try again")
        offload.disable_client(problem)
    else:
        offload.predictor = local.predictor
    if replay is not None:
        await replay(True)
    return await step()
