"""The offload API (/api/v1): describe the model, run a suffix of the encoder, encode images
once (cached by sha256), decode prompts against a cached image, segment everything in a cached
image. OpenAPI: /api/v1/openapi.json.

Every compute route goes through the same path: check the media type (415), read the body
under a size cap and a deadline (413, 408), parse it against the route's signature (422),
wait for the GPU under bounded admission (503 + Retry-After), then run the job on the GPU
thread, stopping it if the client goes away or the end-to-end deadline passes (504).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from ..amg.document import coco_document, to_json
from ..offload import messages
from ..offload.wire import MEDIA_TYPE, WIRE_DTYPES, WireError, wire_dtype
from ..predictor import MAX_IMAGE_PIXELS, InputError, Prediction
from ..weights.identity import WeightsInfo
from .engine import DECODE, PREPROCESS, Cancelled, EncodedImage, Engine, SourceImage
from .everything import MAX_BODY_BYTES as EVERYTHING_BODY_BYTES
from .everything import parse_parameters
from .http_errors import ApiError
from .images import IMAGE_TYPES, PIXELS_TYPE, decode_upload
from .lifecycle import Readiness
from .limits import (
    Admission,
    ClientGone,
    Deadline,
    discard_body,
    read_body,
    require_content_type,
    until_disconnected,
)
from .openapi import openapi_document
from .replica import ReplicaInfo, process_replica

T = TypeVar("T")
log = logging.getLogger("sandseg.server")
PREFIX = "/api/v1"
MODEL_NAME = "MobileSAM (TinyViT-5M image encoder, vit_t)"
# How long a refused request's body is read and dropped before its 503 (see discard_body):
# a 16 MB boundary tensor over a 50 Mbit/s link.
DISCARD_S = 3.0


@dataclass(frozen=True)
class ApiSettings:
    max_body_bytes: int = 64 * 1024 * 1024  # SV-2
    body_timeout_s: float = 30.0  # LD-2: the whole body must arrive within this
    queue: int = 4  # LD-1: requests waiting for the GPU beyond the one running
    queue_timeout_s: float = 30.0
    deadline_s: float = 120.0  # LD-2: end to end, from the first byte of the request
    retry_after_s: int = 2


@dataclass(frozen=True)
class Upload:
    state: EncodedImage
    embeddings: bytes | None
    cached: bool


class OffloadApi:
    def __init__(
        self,
        engine: Engine,
        weights_sha: str,
        settings: ApiSettings,
        readiness: Readiness,
        replica: ReplicaInfo | None = None,
        weights: WeightsInfo | None = None,
    ) -> None:
        self.engine = engine
        self.replica = replica or process_replica()
        self.weights_sha = weights_sha
        # What the page shows (its demo-weights notice, window.sandseg.weights).
        self.weights: WeightsInfo = weights or {"name": "", "sha256": weights_sha, "demo": False}
        self.settings = settings
        self.readiness = readiness
        self.admission = Admission(
            workers=1,
            queue=settings.queue,
            queue_timeout_s=settings.queue_timeout_s,
            retry_after_s=settings.retry_after_s,
        )
        self.stage_index = {stage.name: i for i, stage in enumerate(engine.stages)}

    def routes(self) -> list[BaseRoute]:
        api = [
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/model", self.model, methods=["GET"]),
            Route("/stages/{stage}", self.run_stages, methods=["POST"]),
            Route("/images", self.upload_image, methods=["POST"]),
            Route("/images/embeddings", self.image_embeddings, methods=["POST"]),
            Route("/images/{sha}/predict", self.predict, methods=["POST"]),
            Route("/images/{sha}/everything", self.everything, methods=["POST"]),
        ]
        return [
            # Mounted, so that a wrong method on an API route is 405, not the static files' 404.
            Mount(PREFIX, routes=api),
            Route("/healthz", self.health, methods=["GET"]),
            Route("/readyz", self.ready, methods=["GET"]),
        ]

    # -- descriptions ---------------------------------------------------------------------

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document([s.name for s in self.engine.stages]))

    async def model(self, request: Request) -> Response:
        profile = self.engine.profile
        stages = [
            {
                "index": i,
                "name": stage.name,
                "input": {
                    "name": "x",
                    "dtypes": list(WIRE_DTYPES),
                    "shape": stage.input_shape,
                },
                "output": {"shape": stage.output_shape},
                "server_seconds": profile.stage_s[stage.name] if profile else None,
                "runtime": self.engine.plan.parts[stage.name],
                "runtime_seconds": {
                    name: measured.stage_s[stage.name]
                    for name, measured in self.engine.runtime_profiles.items()
                },
            }
            for i, stage in enumerate(self.engine.stages)
        ]
        return JSONResponse(
            {
                "name": MODEL_NAME,
                "weights_sha256": self.weights_sha,
                "weights": self.weights,
                "layout": "channels-last (H, W, C), little-endian",
                "stages": stages,
                "embeddings": {"name": "embeddings", "shape": messages.EMBEDDINGS_SHAPE},
                "profile": {
                    "preprocess_seconds": profile.preprocess_s if profile else None,
                    "decode_seconds": profile.decode_s if profile else None,
                },
                "runtime": self._runtime_description(),
                "replicas": self.replica.describe(),
                "limits": {
                    "max_body_bytes": self.settings.max_body_bytes,
                    "max_image_pixels": MAX_IMAGE_PIXELS,
                    "image_types": [*IMAGE_TYPES, PIXELS_TYPE],
                    "wire_dtypes": list(WIRE_DTYPES),
                },
            }
        )

    def _runtime_description(self) -> dict[str, object]:
        """Which runtime runs each part, why, and what every runtime measured per part."""
        engine, parts = self.engine, self.engine.plan.parts
        return {
            "requested": engine.requested_runtime,
            "available": {name: runtime.detail for name, runtime in engine.runtimes.items()},
            "preprocess": parts[PREPROCESS],
            "stages": {stage.name: parts[stage.name] for stage in engine.stages},
            "decoder": parts[DECODE],
            "reason": engine.plan.reason,
            "measured": {
                name: {
                    "preprocess_seconds": measured.preprocess_s,
                    "stage_seconds": measured.stage_s,
                    "decode_seconds": measured.decode_s,
                }
                for name, measured in engine.runtime_profiles.items()
            },
        }

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        if not self.readiness.ready:
            raise ApiError(503, "not ready: the server is starting or shutting down")
        body: dict[str, object] = {"ready": True}
        if self.engine.cache.shared:
            # SC-2: a shared cache that is down leaves this replica serving what it can (it
            # encodes again), so it stays ready and says so here.
            body["cache"] = await asyncio.to_thread(self.engine.cache.health)
        return JSONResponse(body)

    # -- compute --------------------------------------------------------------------------

    async def run_stages(self, request: Request) -> Response:
        """Body {"x": boundary tensor entering the stage} -> {"embeddings"}."""
        deadline = Deadline(self.settings.deadline_s)
        name = request.path_params["stage"]
        if name not in self.stage_index:
            raise ApiError(404, f"no stage {name!r}; the stages are {list(self.stage_index)}")
        start = self.stage_index[name]
        dtype = _query_dtype(request)
        body = await self._body(request, (MEDIA_TYPE,))
        shape = self.engine.stages[start].input_shape
        # float16 -> float32 is pure Python (~0.1 s for a boundary): off the event loop.
        x = await asyncio.to_thread(_parsed, lambda: messages.decode_tensor(body, "x", shape))
        result, timing = await self._compute(
            request, deadline, lambda cancel: self.engine.run_stages(start, x, cancel)
        )
        out = await asyncio.to_thread(messages.encode_embeddings, result, dtype, {"stage": name})
        return _binary(out, timing)

    async def upload_image(self, request: Request) -> Response:
        """An image (file or pixels) -> encoded and cached; answers its sha256 and size."""
        key, upload, timing = await self._encode_upload(request, with_embeddings=False)
        h, w = upload.state.info.original
        body = {"image_sha256": key, "height": h, "width": w, "cached": upload.cached}
        return JSONResponse(body, headers={"Server-Timing": timing})

    async def image_embeddings(self, request: Request) -> Response:
        """An image -> its embeddings ("server encodes, client decodes")."""
        dtype = _query_dtype(request)
        key, upload, timing = await self._encode_upload(request, with_embeddings=True)
        h, w = upload.state.info.original
        meta = {"image_sha256": key, "height": str(h), "width": str(w)}
        assert upload.embeddings is not None
        out = await asyncio.to_thread(messages.encode_embeddings, upload.embeddings, dtype, meta)
        return _binary(out, timing)

    async def predict(self, request: Request) -> Response:
        """Prompts against a cached image -> masks (server mode: only prompts and masks travel)."""
        deadline = Deadline(self.settings.deadline_s)
        sha = request.path_params["sha"]
        body = await self._body(request, (MEDIA_TYPE,))
        prompt, low_res = _parsed(lambda: messages.decode_prompt(body))
        state = await asyncio.to_thread(self.engine.cached, sha)
        if state is None:
            raise ApiError(
                404, "that image is not in the server's cache: upload it again (POST /images)"
            )
        result: Prediction
        result, timing = await self._compute(
            request, deadline, lambda _: self.engine.predict(state, prompt)
        )
        out = messages.encode_prediction(result, low_res)
        if "gzip" in request.headers.get("accept-encoding", ""):
            # Masks are 0/1 bytes: gzip makes them ~50x smaller for the slow links.
            packed = await asyncio.to_thread(gzip.compress, out, 1)
            return _binary(packed, timing, {"Content-Encoding": "gzip"})
        return _binary(out, timing)

    async def everything(self, request: Request) -> Response:
        """Generator parameters (JSON) -> every mask of a cached image, as `sandseg everything`
        writes them (COCO RLE); parameters are checked before any GPU work (AM-1)."""
        deadline = Deadline(self.settings.deadline_s)
        sha = request.path_params["sha"]
        require_content_type(request, ("application/json",))
        await self._admit(request)
        cap = min(self.settings.max_body_bytes, EVERYTHING_BODY_BYTES)
        body = await read_body(request, cap, self.settings.body_timeout_s)
        options = _parsed(lambda: parse_parameters(body))
        if self.engine.predictor is None:
            raise ApiError(
                503,
                "segment everything runs on the wgpu model, which this server did not load "
                "(--runtime onnxruntime): start it with --runtime wgpu or auto",
            )
        state = await asyncio.to_thread(self.engine.cached, sha, True)
        if state is None or state.source is None:
            raise ApiError(
                404, "that image is not in the server's cache: upload it again (POST /images)"
            )
        records: list[dict[str, object]]
        records, timing = await self._compute(
            request, deadline, lambda cancel: self.engine.everything(state, options, cancel)
        )
        h, w = state.info.original
        out = await asyncio.to_thread(lambda: to_json(coco_document(records, sha, h, w)))
        headers = {"Server-Timing": timing}
        if "gzip" in request.headers.get("accept-encoding", ""):
            out = await asyncio.to_thread(gzip.compress, out, 6)
            headers["Content-Encoding"] = "gzip"
        return Response(out, media_type="application/json", headers=headers)

    # -- the shared path ------------------------------------------------------------------

    async def _body(self, request: Request, types: tuple[str, ...]) -> bytes:
        require_content_type(request, types)
        await self._admit(request)
        return await read_body(request, self.settings.max_body_bytes, self.settings.body_timeout_s)

    async def _admit(self, request: Request) -> None:
        """LD-1: a full queue refuses before the body is parsed or converted. The body is
        still read (and dropped, for at most DISCARD_S) so that the 503 reaches the client."""
        try:
            self.admission.check()
        except ApiError:
            await discard_body(request, self.settings.max_body_bytes, DISCARD_S)
            raise

    async def _encode_upload(
        self, request: Request, with_embeddings: bool
    ) -> tuple[str, Upload, str]:
        deadline = Deadline(self.settings.deadline_s)
        media_type = require_content_type(request, (*IMAGE_TYPES, PIXELS_TYPE))
        await self._admit(request)
        body = await read_body(request, self.settings.max_body_bytes, self.settings.body_timeout_s)
        key = hashlib.sha256(body).hexdigest()
        image = None
        # The same image is never encoded twice.
        if await asyncio.to_thread(self.engine.cached, key) is None:
            image = _parsed(lambda: decode_upload(body, media_type))

        def job(cancel: threading.Event) -> Upload:
            state = self.engine.cached(key)
            cached = state is not None
            if state is None:
                # Decoded here only if it left the cache since the check above.
                pixels = image if image is not None else decode_upload(body, media_type)
                source = SourceImage(body, media_type)
                state = self.engine.embed_image(key, pixels, cancel, source)
            embeddings = self.engine.embeddings(state) if with_embeddings else None
            return Upload(state, embeddings, cached)

        upload, timing = await self._compute(request, deadline, job)
        if upload.cached:  # so that clients do not mistake a cache hit for a fast server
            timing += ', cache;desc="hit"'
        return key, upload, timing

    async def _compute(
        self, request: Request, deadline: Deadline, job: Callable[[threading.Event], T]
    ) -> tuple[T, str]:
        """Run `job` on the GPU thread under admission, the deadline and disconnect watch.
        Returns its result and a Server-Timing header value."""
        queued = time.perf_counter()
        async with self.admission.slot():
            started = time.perf_counter()
            cancel = threading.Event()
            work = asyncio.ensure_future(self.engine.run(job, cancel))
            gone = asyncio.ensure_future(until_disconnected(request))
            try:
                done, _ = await asyncio.wait(
                    {work, gone}, timeout=deadline.remaining(), return_when="FIRST_COMPLETED"
                )
            finally:
                gone.cancel()
            if work not in done:
                # Stop at the next block boundary; the slot stays taken until the GPU is free.
                cancel.set()
                await asyncio.wait({work})
                # Its outcome (Cancelled, as a rule) is expected: retrieve it, or asyncio logs
                # "Task exception was never retrieved" with a traceback for every such request.
                work.exception()
                if gone in done:
                    raise ClientGone()
                raise ApiError(
                    504, f"the work did not finish within {self.settings.deadline_s:g} s"
                )
            try:
                result = work.result()
            except Cancelled:
                raise ApiError(504, "the work was stopped") from None
            except InputError as exc:
                raise ApiError(422, str(exc)) from None
        compute_ms = (time.perf_counter() - started) * 1000
        queue_ms = (started - queued) * 1000
        return result, f"queue;dur={queue_ms:.1f}, compute;dur={compute_ms:.1f}"


def _parsed[T](parse: Callable[[], T]) -> T:
    try:
        return parse()
    except (WireError, InputError) as exc:
        raise ApiError(422, str(exc)) from None


def _query_dtype(request: Request) -> str:
    unknown = sorted(set(request.query_params) - {"dtype"})
    if unknown:
        raise ApiError(400, f"unknown query parameter {unknown[0]!r}; this route takes dtype")
    return _parsed(lambda: wire_dtype(request.query_params.get("dtype")))


def _binary(body: bytes, timing: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body, media_type=MEDIA_TYPE, headers={"Server-Timing": timing, **(headers or {})}
    )
