"""The model on the server: one GPU thread owns the device and runs every job, one at a time.

Routes call `await engine.run(job, cancel)`; the job runs on the GPU thread. Encoder work
checks `cancel` after every block and stage (waiting for the GPU first), so the work of a
client that went away or ran out of time stops at the next block boundary (FT-2, LD-2).
Encoded images stay on the GPU in a bounded LRU keyed by the sha256 of the uploaded bytes.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..gpu import get_device
from ..gpu.native import NativeDevice
from ..model.tiny_vit import IMG_SIZE
from ..predictor import ImageState, Prediction, Predictor

T = TypeVar("T")
DEFAULT_CACHE_IMAGES = 16


class Cancelled(Exception):
    """The job was stopped at a block boundary (client gone or deadline passed); args[0]
    is the stage it stopped in or after."""


@dataclass(frozen=True)
class StageInfo:
    name: str
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]


@dataclass(frozen=True)
class ServerProfile:
    """Seconds per part, measured at start-up: the planner's view of this server."""

    preprocess_s: float
    stage_s: dict[str, float]
    decode_s: float


class Engine:
    def __init__(self, weights: Path, cache_images: int = DEFAULT_CACHE_IMAGES) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sandseg-gpu")
        self._cache: OrderedDict[str, ImageState] = OrderedDict()
        self._cache_images = cache_images
        self._lock = threading.Lock()
        self.predictor: Predictor = self._executor.submit(Predictor.from_weights, weights).result()
        self.device: NativeDevice = get_device()  # type: ignore[assignment]
        self.stages = _stage_infos(self.predictor)
        self.profile: ServerProfile | None = None

    async def run(self, job: Callable[[threading.Event], T], cancel: threading.Event) -> T:
        """Run `job(cancel)` on the GPU thread; awaiting it never blocks the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, job, cancel)

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    # -- jobs: everything below runs on the GPU thread ------------------------------------

    def run_stages(self, start: int, x_f32: bytes, cancel: threading.Event) -> bytes:
        """Encoder stages [start, end) on the boundary tensor entering `start` -> embeddings."""
        x = self.device.upload(x_f32, self.stages[start].input_shape)
        embeddings = self.predictor.model.encode(
            x, start, after_stage=self._stage_done(cancel), between_blocks=self._stage_done(cancel)
        )
        return self.device.read_sync(embeddings)

    def embed_image(self, key: str, image: Any, cancel: threading.Event) -> ImageState:
        """Encode `image` (H, W, C uint8, any buffer) once; later calls with `key` hit the cache."""
        cached = self.cached(key)
        if cached is not None:
            return cached
        self.predictor.reset_image()
        asyncio.run(
            self.predictor.set_image_async(
                image,
                after_stage=self._stage_done(cancel),
                between_blocks=self._stage_done(cancel),
            )
        )
        state = self.predictor.image_state()
        assert state is not None
        with self._lock:
            self._cache[key] = state
            while len(self._cache) > self._cache_images:
                self._cache.popitem(last=False)
        return state

    def embeddings(self, state: ImageState) -> bytes:
        return self.device.read_sync(state.embeddings)

    def predict(self, state: ImageState, prompt: dict[str, Any]) -> Prediction:
        self.predictor.restore_image(state)
        return asyncio.run(self.predictor.predict_async(**prompt))

    def cached(self, key: str) -> ImageState | None:
        with self._lock:
            state = self._cache.get(key)
            if state is not None:
                self._cache.move_to_end(key)
            return state

    def measure(self, repeat: int = 2) -> ServerProfile:
        """Time preprocessing, every stage and one decode on a synthetic image (medians of
        `repeat` runs after a first that compiles the pipelines), on the GPU thread."""
        return self._executor.submit(self._measure, repeat).result()

    def _measure(self, repeat: int) -> ServerProfile:
        runs: dict[str, list[float]] = {}
        image = bytes(range(256)) * (IMG_SIZE * 768 * 3 // 256)
        view = memoryview(image).cast("B", (768, IMG_SIZE, 3))
        for _ in range(repeat + 1):
            times = self._timed_image(view)
            for part, seconds in times.items():
                runs.setdefault(part, []).append(seconds)
        medians = {part: statistics.median(values[1:]) for part, values in runs.items()}
        self.predictor.reset_image()
        return ServerProfile(
            preprocess_s=medians.pop("preprocess"),
            decode_s=medians.pop("decode"),
            stage_s=medians,
        )

    def _timed_image(self, image: memoryview) -> dict[str, float]:
        times: dict[str, float] = {}
        last = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal last
            self.device.wait_idle()
            now = time.perf_counter()
            times[name], last = now - last, now

        asyncio.run(self.predictor.set_image_async(image, after_stage=lap))
        start = time.perf_counter()
        asyncio.run(self.predictor.predict_async(point_coords=[[500, 300]], point_labels=[1]))
        times["decode"] = time.perf_counter() - start
        return times

    def _stage_done(self, cancel: threading.Event) -> Callable[[str], None]:
        return lambda stage: self._checkpoint(cancel, stage)

    def _checkpoint(self, cancel: threading.Event, stage: str) -> None:
        """Stop here if the job was cancelled. Waits for the GPU first, so that a cancel
        stops the work after the block in flight (a fraction of a second), not after all.
        Cancelled carries the stage the work stopped in."""
        if cancel.is_set():
            raise Cancelled(stage)
        self.device.wait_idle()
        if cancel.is_set():
            raise Cancelled(stage)


def _stage_infos(predictor: Predictor) -> list[StageInfo]:
    encoder = predictor.model.image_encoder
    shape: tuple[int, int, int] = (IMG_SIZE, IMG_SIZE, 3)
    infos = []
    for stage in encoder.stages:
        infos.append(StageInfo(stage.name, shape, stage.output_shape))
        shape = stage.output_shape
    return infos
