"""The model on the server: one GPU thread owns the device and runs every job, one at a time.

Routes call `await engine.run(job, cancel)`; the job runs on the GPU thread. Encoder work
checks `cancel` after every stage (and, on wgpu, every block; waiting for the GPU first), so
the work of a client that went away or ran out of time stops at the next boundary (FT-2, LD-2).
Encoded images' embeddings stay in an `ImageCache` keyed by the sha256 of the uploaded bytes
(this process's bounded LRU by default, Redis shared by replicas with `--cache redis://`), with
the upload itself (`SourceImage`: what segment-everything decodes again for its crops).

Every part (pre-processing, each encoder stage, the decoder) runs on a runtime (`wgpu` or
`onnxruntime`, sandseg.runtime); `auto` measures every available runtime per part at start-up
and uses the fastest for each (`RuntimePlan`).
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..gpu import Tensor, get_device
from ..gpu.native import NativeDevice
from ..inputs import Prompt
from ..model import ImageInfo
from ..model.batched import SharedImage
from ..model.tiny_vit import IMG_SIZE
from ..predictor import InputError, Prediction, Predictor
from ..runtime import ONNXRUNTIME, WGPU, Runtime, available_runtimes
from .cache import DEFAULT_CACHE_BYTES, DEFAULT_CACHE_IMAGES, ImageCache, MemoryCache

T = TypeVar("T")


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


RUNTIME_CHOICES = ("auto", WGPU, ONNXRUNTIME)
PREPROCESS = "preprocess"
DECODE = "decode"
EVERYTHING = "everything"


@dataclass(frozen=True)
class SourceImage:
    """An upload as it came: its bytes and media type (decoded again by `everything`)."""

    data: bytes
    media_type: str


@dataclass(frozen=True)
class EncodedImage:
    """An encoded image: its (64, 64, 256) channels-last float32 embeddings and sizes, and
    the upload it came from (None when encoded from pixels in-process)."""

    embeddings: bytes
    info: ImageInfo
    source: SourceImage | None = None


@dataclass(frozen=True)
class RuntimePlan:
    """Which runtime runs each part: "preprocess", every stage by name, and "decode"."""

    parts: dict[str, str]
    reason: str

    @classmethod
    def everything_on(cls, runtime: str, reason: str, stages: list[str]) -> RuntimePlan:
        return cls({part: runtime for part in [PREPROCESS, *stages, DECODE]}, reason)


class Engine:
    def __init__(
        self,
        weights: Path,
        cache_images: int = DEFAULT_CACHE_IMAGES,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        runtime: str = WGPU,
        onnx_cache: Path | None = None,
        progress: Callable[[str], None] | None = None,
        cache: ImageCache | None = None,
    ) -> None:
        """`runtime`: "wgpu", "onnxruntime" or "auto" (every available runtime, the fastest
        per part once `measure` has run); `onnx_cache`: where the ONNX stage graphs are
        exported once per weights file (default SANDSEG_HOME/onnx); `cache`: where encoded
        images are kept (default: a MemoryCache of `cache_images` and `cache_bytes`)."""
        if runtime not in RUNTIME_CHOICES:
            raise InputError(f"unknown runtime {runtime!r}; choose one of {RUNTIME_CHOICES}")
        wanted = available_runtimes() if runtime == "auto" else [runtime]
        if runtime == ONNXRUNTIME and ONNXRUNTIME not in available_runtimes():
            raise InputError(
                "--runtime onnxruntime needs onnxruntime and onnx: pip install 'sandseg[serve]'"
            )
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sandseg-gpu")
        self.cache = cache if cache is not None else MemoryCache(cache_images, cache_bytes)
        # The WGSL model only where wgpu runs: --runtime onnxruntime needs no GPU adapter.
        self.predictor: Predictor | None = None
        self.device: NativeDevice | None = None
        if WGPU in wanted:
            self.predictor = self.call(Predictor.from_weights, weights)
            self.device = get_device()  # type: ignore[assignment]
            self.stages = _stage_infos(self.predictor)
        else:
            self.stages = _exported_stage_infos()
        self.profile: ServerProfile | None = None
        self.requested_runtime = runtime
        self.runtimes: dict[str, Runtime] = {}
        for name in wanted:
            self.runtimes[name] = self._executor.submit(
                self._load_runtime, name, weights, onnx_cache, progress
            ).result()
        # Per runtime, what `measure` found; empty until then.
        self.runtime_profiles: dict[str, ServerProfile] = {}
        first = ONNXRUNTIME if ONNXRUNTIME in self.runtimes else WGPU
        self.plan = RuntimePlan.everything_on(
            first,
            f"--runtime {runtime}" if runtime != "auto" else "not measured yet",
            [s.name for s in self.stages],
        )

    async def run(self, job: Callable[[threading.Event], T], cancel: threading.Event) -> T:
        """Run `job(cancel)` on the GPU thread; awaiting it never blocks the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, job, cancel)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the GPU thread and wait for it (benchmarks, scripts)."""
        return self._executor.submit(fn, *args).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    # -- jobs: everything below runs on the GPU thread ------------------------------------

    def run_stages(self, start: int, x_f32: bytes, cancel: threading.Event) -> bytes:
        """Encoder stages [start, end) on the boundary tensor entering `start` -> embeddings."""
        return self._encode(x_f32, start, self._stage_done(cancel))

    def embed_image(
        self, key: str, image: Any, cancel: threading.Event, source: SourceImage | None = None
    ) -> EncodedImage:
        """Encode `image` (H, W, C uint8, any buffer) once; later calls with `key` hit the cache.
        `source`: the upload `image` was decoded from, kept with the embeddings (counted by the
        same LRU) for `everything`."""
        cached = self.cached(key)
        if cached is not None:
            return cached
        checkpoint = self._stage_done(cancel)
        x, info = self.runtimes[self.plan.parts[PREPROCESS]].preprocess(image)
        checkpoint(PREPROCESS)
        state = EncodedImage(self._encode(x, 0, checkpoint), info, source)
        self.cache.put(key, state)
        return state

    def embeddings(self, state: EncodedImage) -> bytes:
        return state.embeddings

    def predict(self, state: EncodedImage, prompt: Prompt) -> Prediction:
        return self.runtimes[self.plan.parts[DECODE]].decode(state.embeddings, state.info, prompt)

    def everything(
        self, state: EncodedImage, options: dict[str, Any], cancel: threading.Event
    ) -> list[dict[str, Any]]:
        """The automatic mask generator (`options`: its checked keyword arguments) on a cached
        upload, on the wgpu model: records with COCO RLE segmentations. The whole image's
        embeddings are the cached ones; crops are encoded. Once `cancel` is set the work
        stops at the next encoder block or decoder batch (raising Cancelled)."""
        from ..amg.generator import AutomaticMaskGenerator
        from .images import decode_upload

        if self.predictor is None or state.source is None:
            raise InputError("segment everything needs the wgpu model and the uploaded image")
        checkpoint = self._stage_done(cancel)
        checkpoint(EVERYTHING)
        image = decode_upload(state.source.data, state.source.media_type)
        predictor = _UploadPredictor(self.predictor, state, checkpoint)
        generator = AutomaticMaskGenerator(predictor, output_mode="coco_rle", **options)
        return asyncio.run(
            generator.generate_async(image, lambda done, total: checkpoint(EVERYTHING))
        )

    def _encode(self, x: bytes, start: int, checkpoint: Callable[[str], None]) -> bytes:
        """Stages [start, end), each consecutive run of stages on one runtime in one call."""
        names = [s.name for s in self.stages]
        while start < len(names):
            runtime = self.plan.parts[names[start]]
            stop = start + 1
            while stop < len(names) and self.plan.parts[names[stop]] == runtime:
                stop += 1
            x = self.runtimes[runtime].run_stages(x, start, stop, checkpoint)
            start = stop
        return x

    def cached(self, key: str, source: bool = False) -> EncodedImage | None:
        """The image uploaded as `key` if the cache still has it (`source`: with the upload)."""
        return self.cache.get(key, source)

    def measure(self, repeat: int = 2) -> ServerProfile:
        """Time preprocessing, every stage and one decode on a synthetic image on every loaded
        runtime (medians of `repeat` runs after a first that compiles and warms up), on the
        GPU thread. With `auto`, each part then runs on the runtime that was fastest for it.
        Returns the seconds of the runtimes chosen (the planner's view of this server)."""
        return self._executor.submit(self._measure, repeat).result()

    def _measure(self, repeat: int) -> ServerProfile:
        image = bytes(range(256)) * (IMG_SIZE * 768 * 3 // 256)
        view = memoryview(image).cast("B", (768, IMG_SIZE, 3))
        for name, runtime in self.runtimes.items():
            runs: dict[str, list[float]] = {}
            for _ in range(repeat + 1):
                for part, seconds in self._timed_image(runtime, view).items():
                    runs.setdefault(part, []).append(seconds)
            medians = {part: statistics.median(values[1:]) for part, values in runs.items()}
            self.runtime_profiles[name] = ServerProfile(
                preprocess_s=medians.pop(PREPROCESS), decode_s=medians.pop(DECODE), stage_s=medians
            )
        if self.requested_runtime == "auto":
            self.plan = self._fastest_plan()
        return self._planned_profile()

    def _timed_image(self, runtime: Runtime, image: memoryview) -> dict[str, float]:
        times: dict[str, float] = {}
        start = time.perf_counter()
        x, info = runtime.preprocess(image)
        times[PREPROCESS] = time.perf_counter() - start
        for index, stage in enumerate(self.stages):
            start = time.perf_counter()
            x = runtime.run_stages(x, index, index + 1, lambda _stage: None)
            times[stage.name] = time.perf_counter() - start
        start = time.perf_counter()
        runtime.decode(x, info, Prompt.of([[500, 300]], [1]))
        times[DECODE] = time.perf_counter() - start
        return times

    def _fastest_plan(self) -> RuntimePlan:
        parts = {}
        for part in [PREPROCESS, *(s.name for s in self.stages), DECODE]:
            seconds = {name: _part_seconds(p, part) for name, p in self.runtime_profiles.items()}
            parts[part] = min(seconds, key=seconds.__getitem__)
        totals = ", ".join(
            f"{name} {sum(p.stage_s.values()) + p.preprocess_s:.2f} s per image, decode "
            f"{p.decode_s:.2f} s"
            for name, p in self.runtime_profiles.items()
        )
        return RuntimePlan(parts, f"auto: the fastest runtime per part, measured ({totals})")

    def _planned_profile(self) -> ServerProfile:
        def seconds(part: str) -> float:
            return _part_seconds(self.runtime_profiles[self.plan.parts[part]], part)

        return ServerProfile(
            preprocess_s=seconds(PREPROCESS),
            stage_s={s.name: seconds(s.name) for s in self.stages},
            decode_s=seconds(DECODE),
        )

    def _load_runtime(
        self,
        name: str,
        weights: Path,
        onnx_cache: Path | None,
        progress: Callable[[str], None] | None,
    ) -> Runtime:
        if name == WGPU:
            from ..runtime.wgpu_runtime import WgpuRuntime

            assert self.predictor is not None
            return WgpuRuntime(self.predictor)
        from ..export import stage_graphs
        from ..runtime.ort_runtime import OrtRuntime

        if onnx_cache is None:
            from .serve_cli import sandseg_home

            onnx_cache = sandseg_home() / "onnx"
        return OrtRuntime(stage_graphs(weights, onnx_cache, progress))

    def _stage_done(self, cancel: threading.Event) -> Callable[[str], None]:
        return lambda stage: self._checkpoint(cancel, stage)

    def _checkpoint(self, cancel: threading.Event, stage: str) -> None:
        """Stop here if the job was cancelled. Waits for the GPU first, so that a cancel
        stops the work after the block in flight (a fraction of a second), not after all.
        Cancelled carries the stage the work stopped in."""
        if cancel.is_set():
            raise Cancelled(stage)
        if self.device is not None:
            self.device.wait_idle()
        if cancel.is_set():
            raise Cancelled(stage)


class _UploadPredictor(Predictor):
    """The wgpu predictor as the mask generator drives it for a cached upload: the whole
    image's embeddings come from the cache (the upload encoded it), crop encodes stop at
    block boundaries, and every batch of prompts (batched.MAX_BATCH at most) first passes
    `checkpoint` (which waits for the GPU, then raises Cancelled if the job was cancelled).
    Its own image state; the model shared."""

    def __init__(
        self, predictor: Predictor, state: EncodedImage, checkpoint: Callable[[str], None]
    ) -> None:
        super().__init__(predictor.model)
        self._state = state
        self._checkpoint = checkpoint

    async def set_image_async(
        self,
        image: Any,
        image_format: str = "RGB",
        *,
        after_stage: Callable[[str], None] | None = None,
        between_blocks: Callable[[str], None] | None = None,
    ) -> None:
        self._checkpoint(EVERYTHING)
        original = self._state.info.original
        # A crop of the image's own size is the image (crops are clipped to it).
        if tuple((memoryview(image).shape or ())[:2]) == original:
            self.set_image_embedding(self._state.embeddings, original)
            return
        await super().set_image_async(
            image, image_format, after_stage=self._checkpoint, between_blocks=self._checkpoint
        )

    def record_batch(
        self, points: list[tuple[float, float]], shared: SharedImage
    ) -> tuple[Tensor, Tensor]:
        self._checkpoint(EVERYTHING)
        return super().record_batch(points, shared)


def _part_seconds(profile: ServerProfile, part: str) -> float:
    if part == PREPROCESS:
        return profile.preprocess_s
    return profile.decode_s if part == DECODE else profile.stage_s[part]


def _exported_stage_infos() -> list[StageInfo]:
    from ..export import BOUNDARIES, STAGES

    return [StageInfo(name, BOUNDARIES[i], BOUNDARIES[i + 1]) for i, name in enumerate(STAGES)]


def _stage_infos(predictor: Predictor) -> list[StageInfo]:
    encoder = predictor.model.image_encoder
    shape: tuple[int, int, int] = (IMG_SIZE, IMG_SIZE, 3)
    infos = []
    for stage in encoder.stages:
        infos.append(StageInfo(stage.name, shape, stage.output_shape))
        shape = stage.output_shape
    return infos
