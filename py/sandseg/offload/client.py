"""The offload API's client: one method per route, over a pluggable transport.

Transports move bytes: `UrllibTransport` natively (standard library, in a thread), and the
browser's fetch in the worker (sandseg.browser.fetch). Every reply is measured (bytes up and
down, elapsed time, the server's compute time from its Server-Timing header) and reported to
`on_request`, which is how the planner learns the network's RTT and throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..predictor import Prediction
from ..weights import dtype_name
from . import messages
from .planner import Profile
from .wire import MEDIA_TYPE, WireError

API = "/api/v1"


class OffloadError(Exception):
    """The server refused or failed a request; `status` is its HTTP status (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ServerUnreachable(OffloadError):
    """No answer at all: the server is down, or the network is."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes  # decoded (gunzipped) body
    up_bytes: int
    down_bytes: int  # as transferred
    elapsed_s: float


class Transport(Protocol):
    async def request(
        self, method: str, path: str, body: bytes | None, content_type: str | None
    ) -> Reply: ...


@dataclass(frozen=True)
class ModelDescription:
    weights_sha256: str
    stages: list[tuple[str, tuple[int, int, int]]]  # (name, input shape), in order
    profile: Profile | None


class OffloadClient:
    def __init__(
        self,
        transport: Transport,
        on_request: Callable[[int, int, float, float], None] | None = None,
    ) -> None:
        self.transport = transport
        self.on_request = on_request
        self.bytes_up = 0
        self.bytes_down = 0
        self.server_seconds = 0.0
        self.last_cached = False  # the last reply came from the server's image cache

    async def describe(self) -> ModelDescription:
        data = json.loads((await self._call("GET", f"{API}/model")).body)
        stages = [(s["name"], tuple(s["input"]["shape"])) for s in data["stages"]]
        profile = None
        if all(s["server_seconds"] is not None for s in data["stages"]):
            profile = Profile(
                stage_seconds={s["name"]: s["server_seconds"] for s in data["stages"]},
                preprocess_seconds=data["profile"]["preprocess_seconds"],
                decode_seconds=data["profile"]["decode_seconds"],
            )
        return ModelDescription(data["weights_sha256"], stages, profile)  # type: ignore[arg-type]

    async def run_stages(
        self,
        stage: str,
        x_f32: bytes,
        shape: tuple[int, ...],
        upload_dtype: str = "F32",
        download_dtype: str = "F32",
    ) -> bytes:
        """Stages [stage, end) on the server -> embeddings, float32 bytes (64, 64, 256).
        The tensors travel as upload_dtype / download_dtype ("F32" or "F16")."""
        body = messages.encode_tensor("x", x_f32, shape, upload_dtype)
        path = f"{API}/stages/{stage}?dtype={dtype_name(download_dtype)}"
        reply = await self._call("POST", path, body, MEDIA_TYPE)
        return _parse(lambda: messages.decode_embeddings(reply.body))[0]

    async def image_embeddings(
        self, image: bytes, content_type: str, dtype: str = "F32"
    ) -> tuple[bytes, str, tuple[int, int]]:
        """Upload an image (file or safetensors pixels) -> (embeddings, sha256, (H, W))."""
        reply = await self._call(
            "POST", f"{API}/images/embeddings?dtype={dtype_name(dtype)}", image, content_type
        )
        data, meta = _parse(lambda: messages.decode_embeddings(reply.body))
        return data, meta["image_sha256"], (int(meta["height"]), int(meta["width"]))

    async def upload_image(self, image: bytes, content_type: str) -> tuple[str, tuple[int, int]]:
        """Upload an image for server mode -> (sha256, (H, W)); the server encodes it once."""
        data = json.loads((await self._call("POST", f"{API}/images", image, content_type)).body)
        return data["image_sha256"], (data["height"], data["width"])

    async def predict(self, image_sha: str, prompt: bytes) -> Prediction:
        reply = await self._call("POST", f"{API}/images/{image_sha}/predict", prompt, MEDIA_TYPE)
        return _parse(lambda: messages.decode_prediction(reply.body))

    async def everything(self, image_sha: str, params: dict[str, object]) -> dict[str, Any]:
        """Segment everything on a cached image (generator parameters, each optional) -> the
        COCO-style document `sandseg everything` writes (amg/document.py)."""
        body = json.dumps(params, allow_nan=False).encode()
        path = f"{API}/images/{image_sha}/everything"
        reply = await self._call("POST", path, body, "application/json")
        try:
            document = json.loads(reply.body)
            if not isinstance(document.get("annotations"), list):
                raise ValueError("no annotations")
        except (ValueError, AttributeError) as exc:
            raise OffloadError(200, f"the server's answer is malformed: {exc}") from None
        return document  # type: ignore[no-any-return]

    async def _call(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> Reply:
        reply = await self.transport.request(method, path, body, content_type)
        if reply.status >= 300:
            raise OffloadError(reply.status, f"the server answered {reply.status}: {_error(reply)}")
        timing = reply.headers.get("server-timing", "")
        server_s = server_seconds(timing)
        self.last_cached = 'desc="hit"' in timing
        self.bytes_up += reply.up_bytes
        self.bytes_down += reply.down_bytes
        self.server_seconds += server_s
        if self.on_request is not None:
            self.on_request(reply.up_bytes, reply.down_bytes, reply.elapsed_s, server_s)
        return reply


def server_seconds(header: str) -> float:
    """The queue + compute durations of a Server-Timing header, in seconds."""
    total = 0.0
    for metric in header.split(","):
        for param in metric.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key == "dur":
                with contextlib.suppress(ValueError):
                    total += float(value) / 1000
    return total


class UrllibTransport:
    """Native transport: urllib in a worker thread, so awaiting it never blocks the loop."""

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 300) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    async def request(
        self, method: str, path: str, body: bytes | None, content_type: str | None
    ) -> Reply:
        return await asyncio.to_thread(self._request, method, path, body, content_type)

    def _request(
        self, method: str, path: str, body: bytes | None, content_type: str | None
    ) -> Reply:
        headers = {"Accept-Encoding": "gzip"}
        if content_type:
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.base_url + path, data=body, method=method, headers=headers
        )
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                status, raw = response.status, response.read()
                reply_headers = {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
            reply_headers = {k.lower(): v for k, v in exc.headers.items()}
            exc.close()
        except (OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerUnreachable(0, f"no connection to {self.base_url}: {reason}") from None
        elapsed = time.perf_counter() - start
        data = gzip.decompress(raw) if reply_headers.get("content-encoding") == "gzip" else raw
        return Reply(status, reply_headers, data, len(body or b""), len(raw), elapsed)


def _error(reply: Reply) -> str:
    try:
        return str(json.loads(reply.body)["error"])
    except (ValueError, KeyError, TypeError):
        return "no details"


def _parse[T](parse: Callable[[], T]) -> T:
    try:
        return parse()
    except WireError as exc:
        raise OffloadError(200, f"the server's answer is malformed: {exc}") from None
