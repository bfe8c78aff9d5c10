"""One image at a time in any offload mode; the browser worker and native code share it.

Modes: "client" (everything local), "server" (the server encodes and decodes: only prompts
and masks travel per click), "split:image" (the server encodes the uploaded image, the client
decodes), "split:<stage>" (the client runs the encoder up to and including <stage>, the server
the rest, the client decodes) and "auto" (the planner picks one of those per image, from
measured client times, the server's profile and the measured network).

Fallbacks: a server that does not answer while a remote mode is in use -> the client does
the work (when it can) and `notice` says so (a Notice: the mode now in force, and why); a
client that cannot run the model (no WebGPU, lost device) -> `disable_client(reason)` and
everything goes to the server.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..inputs import Prompt
from ..model import probe_image
from ..predictor import ImageState, InputError, Prediction, Predictor
from . import messages
from .client import OffloadClient, OffloadError, ServerUnreachable
from .planner import MODES, SPLIT_STAGES, STAGES, Planner, Sizes, needs, split_stage
from .wire import MEDIA_TYPE

# A safetensors header for one tensor is ~100 bytes; prompts are a few hundred.
HEADER_BYTES = 128
PROMPT_BYTES = 512


@dataclass
class ImageResult:
    """What set_image did: the mode used, why (auto), and what it cost."""

    mode: str
    reason: str
    seconds: float
    upload_bytes: int = 0
    download_bytes: int = 0
    server_seconds: float = 0.0
    client_parts: dict[str, float] = field(default_factory=dict)
    # The local encoder's submissions, in order: (block, seconds from submit to done); a
    # block may take several (Device.finish).
    submissions: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Notice:
    """A fallback the user should hear about: the mode in force after it, and why."""

    mode: str
    text: str


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; the modes are {', '.join(MODES)}")
    return mode


class OffloadSession:
    def __init__(
        self,
        predictor: Predictor | None,
        client: OffloadClient | None,
        planner: Planner | None = None,
        upload_dtype: str = "F32",
        download_dtype: str = "F16",
        low_res: str = "all",
    ) -> None:
        """predictor: the local model (None: this client cannot run it); client: the server
        (None: no server). upload_dtype / download_dtype: "F32" or "F16" for boundary tensors
        going up and embeddings coming down. The defaults keep every mode's masks within IoU
        0.999 of the client's: a float16 boundary early in the encoder does not (0.998 after
        patch_embed), float16 embeddings do (0.9998). low_res: which low-res logits server
        mode brings back ("all", "best", "none")."""
        if predictor is None and client is None:
            raise InputError("an offload session needs a local model, a server, or both")
        self.predictor = predictor
        self.client = client
        self.planner = planner or Planner()
        self.planner.client_available = predictor is not None
        self.upload_dtype = upload_dtype
        self.download_dtype = download_dtype
        self.low_res = low_res
        self.mode = "auto" if predictor and client else ("client" if predictor else "server")
        self.notice: Notice | None = None
        self.image_mode: str | None = None  # the mode that encoded the current image
        self._stages: list[tuple[str, tuple[int, int, int]]] = []
        self._image: tuple[Any, int, int, int, tuple[bytes, str] | None] | None = None
        self._server_image: str | None = None
        self._mask_bytes: int | None = None
        if client is not None:
            client.on_request = self.planner.observe_request

    # -- setup ----------------------------------------------------------------------------

    async def connect(self, probe: bool = True) -> None:
        """Read the server's description and profile; time a probe of the local encoder so
        `auto` can plan before any image has run locally."""
        assert self.client is not None
        description = await self.client.describe()
        self._stages = description.stages
        if description.profile is not None:
            self.planner.set_server_profile(description.profile)
        if probe and self.predictor is not None and description.profile is not None:
            seconds = await self._probe()
            self.planner.set_client_speed_ratio(
                seconds / description.profile.stage_seconds["patch_embed"]
            )

    def set_mode(self, mode: str) -> None:
        needs_client, needs_server = needs(check_mode(mode))
        if needs_client and self.predictor is None:
            raise InputError(f"mode {mode!r} needs the model on this device, which cannot run it")
        if needs_server and self.client is None:
            raise InputError(f"mode {mode!r} needs a server; none is configured")
        self.mode = mode

    def disable_client(self, reason: str) -> None:
        """The local model cannot run any more (lost device, out of memory): use the server."""
        self.predictor = None
        self.planner.client_available = False
        self.mode = "server"
        self.notice = Notice("server", f"{reason}: switched to server mode")

    # -- image ----------------------------------------------------------------------------

    async def set_image(
        self,
        pixels: Any,
        height: int,
        width: int,
        channels: int,
        upload: tuple[bytes, str] | None = None,
    ) -> ImageResult:
        """pixels: (height, width, channels) uint8 bytes (channels 1, 3 or 4, RGB order).
        upload: the image file and its media type, sent instead of the pixels when the
        server needs the image (smaller); the server decodes it to the same pixels."""
        self._image = (pixels, height, width, channels, upload)
        self._server_image = None
        self.image_mode = None
        mode, reason = self._resolve()
        try:
            result = await self._encode(mode)
        except OffloadError as exc:
            if self.predictor is None or not _client_can_take_over(exc):
                raise
            self._note_fallback(exc)
            result = await self._encode("client")
            reason = self.notice.text if self.notice else ""
        result.reason = reason
        self.image_mode = result.mode
        return result

    def _resolve(self) -> tuple[str, str]:
        if self.mode != "auto":
            return self.mode, f"{self.mode}, as chosen"
        if self.client is None or self.planner.server_profile is None:
            return "client", "auto: no server profile, so client"
        if self.predictor is None:
            return "server", "auto: the client cannot run the model"
        plan = self.planner.plan(self.sizes())
        return plan.choice.mode, f"auto: {plan.reason}"

    def _note_fallback(self, exc: OffloadError) -> None:
        """The client takes over: for good when the server is gone, for this image when it
        is only busy."""
        if isinstance(exc, ServerUnreachable):
            self.mode = "client"
            self.notice = Notice(
                "client", f"the server did not answer ({exc}): switched to client mode"
            )
        else:
            self.notice = Notice(
                self.mode, f"the server is busy ({exc}): this image ran on this device"
            )

    async def server_copy(self) -> str:
        """The sha256 the server keeps the current image under, uploading it first when it
        has none (in any mode; work that only the server runs, such as segment everything
        behind a client runtime that cannot, needs it). The image's mode does not change."""
        if self._image is None:
            raise InputError("no image is set: call set_image(image) first")
        if self.client is None:
            raise InputError("no offload server: this work needs one")
        if self._server_image is None:
            pixels, height, width, channels, upload = self._image
            body, media_type = upload or _pixels_body(pixels, height, width, channels)
            self._server_image, _ = await self.client.upload_image(body, media_type)
        return self._server_image

    async def _encode(self, mode: str) -> ImageResult:
        assert self._image is not None
        pixels, height, width, channels, upload = self._image
        start = time.perf_counter()
        up, down, server = self._traffic()
        parts: dict[str, float] = {}
        submissions: list[tuple[str, float]] = []
        stage = split_stage(mode)
        if mode == "client" or stage:
            stop = STAGES.index(stage) + 1 if stage else len(STAGES)
            await self._encode_locally(pixels, height, width, channels, stop, parts, submissions)
        elif mode == "split:image":
            assert self.client is not None and self.predictor is not None
            body, media_type = upload or _pixels_body(pixels, height, width, channels)
            data, _, size = await self.client.image_embeddings(
                body, media_type, self.download_dtype
            )
            self.predictor.set_image_embedding(data, size)
        else:
            assert self.client is not None
            body, media_type = upload or _pixels_body(pixels, height, width, channels)
            self._server_image, _ = await self.client.upload_image(body, media_type)
        up2, down2, server2 = self._traffic()
        self._observe_server(mode, server2 - server)
        return ImageResult(
            mode=mode,
            reason="",
            seconds=time.perf_counter() - start,
            upload_bytes=up2 - up,
            download_bytes=down2 - down,
            server_seconds=server2 - server,
            client_parts=parts,
            submissions=submissions,
        )

    async def _encode_locally(
        self,
        pixels: Any,
        height: int,
        width: int,
        channels: int,
        stop: int,
        parts: dict[str, float],
        submissions: list[tuple[str, float]],
    ) -> None:
        """Preprocess and encoder stages [0, stop) here, timing each; the rest on the server.

        Each encoder block is submitted and awaited before the next is recorded, as one or
        more submissions of at most the device's work budget each: the GPU never gets one long
        command buffer (GP-5, the browser's GPU watchdog), the worker's event loop turns
        between them, and `submissions` gets each one's block and time."""
        assert self.predictor is not None
        predictor, model = self.predictor, self.predictor.model
        device = predictor.device
        lap = _Lap(parts, self.planner.observe_client)

        async def submit(name: str) -> None:
            # The device cuts a block into submissions of its budget each and times them.
            submissions.extend((name, s.seconds) for s in await device.finish())

        x, info = model.preprocess(bytes(pixels), height, width, channels)
        await submit("preprocess")
        lap("preprocess")
        for step in model.image_encoder.steps(x, 0, stop):
            x = step.x
            await submit(f"{step.stage}[{step.block}]")
            if step.last:
                lap(step.stage)
        if stop == len(STAGES):
            predictor.restore_image(ImageState(x, info))
            return
        assert self.client is not None
        data = await device.read(x)
        embeddings = await self.client.run_stages(
            STAGES[stop], data, tuple(x.shape), self.upload_dtype, self.download_dtype
        )
        predictor.set_image_embedding(embeddings, (height, width))

    # -- prompts --------------------------------------------------------------------------

    async def predict(self, prompt: Prompt) -> Prediction:
        """Decode a prompt against the current image, where its mode says (see Predictor)."""
        if self._image is None or self.image_mode is None:
            raise InputError("no image is set: call set_image(image) before predict()")
        _, height, width, _, _ = self._image
        if self.image_mode != "server":
            return await self._predict_locally(prompt)
        prompt.check((height, width))
        assert self.client is not None and self._server_image is not None
        body = messages.encode_prompt(prompt, self.low_res)
        try:
            before = self.client.bytes_down
            prediction = await self._predict_remotely(body)
            self._mask_bytes = self.client.bytes_down - before
            return prediction
        except OffloadError as exc:
            if self.predictor is None or not _client_can_take_over(exc):
                raise
            self._note_fallback(exc)
            result = await self._encode("client")
            self.image_mode = result.mode
            return await self._predict_locally(prompt)

    async def _predict_remotely(self, body: bytes) -> Prediction:
        assert self.client is not None and self._server_image is not None
        try:
            return await self.client.predict(self._server_image, body)
        except OffloadError as exc:
            if exc.status != 404:
                raise
        # The server dropped the image from its cache (or restarted): upload it again.
        await self._encode("server")
        return await self.client.predict(self._server_image, body)

    async def _predict_locally(self, prompt: Prompt) -> Prediction:
        assert self.predictor is not None
        start = time.perf_counter()
        prediction = await self.predictor.predict_prompt(prompt)
        self.planner.observe_client("decode", time.perf_counter() - start)
        return prediction

    # -- planning inputs ------------------------------------------------------------------

    def sizes(self) -> Sizes:
        """Bytes each mode would move for the current image."""
        up_item = 2 if self.upload_dtype == "F16" else 4
        down_item = 2 if self.download_dtype == "F16" else 4
        if self._image is None:
            raise InputError("no image is set")
        _pixels, height, width, channels, upload = self._image
        image_bytes = len(upload[0]) if upload else height * width * channels + HEADER_BYTES
        inputs = dict(self._stages) or _default_inputs()
        boundary = {
            stage: math.prod(inputs[STAGES[i + 1]]) * up_item + HEADER_BYTES
            for i, stage in enumerate(SPLIT_STAGES)
        }
        embeddings = 64 * 64 * 256 * down_item + HEADER_BYTES
        return Sizes(
            image_bytes=image_bytes,
            boundary_bytes=boundary,
            embeddings_bytes=embeddings,
            prompt_bytes=PROMPT_BYTES,
            mask_bytes=self._mask_bytes or _mask_bytes_guess(height, width, self.low_res),
        )

    def _observe_server(self, mode: str, observed_s: float) -> None:
        """Tell the planner how long the server took against what its profile predicts."""
        profile = self.planner.server_profile
        if profile is None or mode == "client" or self.client is None or self.client.last_cached:
            return
        stage = split_stage(mode)
        if stage:
            first = STAGES.index(stage) + 1
            expected = sum(profile.stage_seconds[s] for s in STAGES[first:])
        else:
            expected = profile.preprocess_seconds + sum(profile.stage_seconds.values())
        self.planner.observe_server(expected, observed_s)

    def _traffic(self) -> tuple[int, int, float]:
        if self.client is None:
            return 0, 0, 0.0
        return self.client.bytes_up, self.client.bytes_down, self.client.server_seconds

    async def _probe(self) -> float:
        """Seconds for preprocess + patch_embed here (second of two runs: the first compiles)."""
        assert self.predictor is not None
        model, device = self.predictor.model, self.predictor.device
        seconds = 0.0
        for _ in range(2):
            x, _ = model.preprocess(*probe_image())
            await device.finish()
            start = time.perf_counter()
            model.encode(x, 0, 1)
            await device.finish()
            seconds = time.perf_counter() - start
        return seconds


class _Lap:
    def __init__(self, parts: dict[str, float], observe: Callable[[str, float], None]) -> None:
        self.parts, self.observe, self.last = parts, observe, time.perf_counter()

    def __call__(self, part: str) -> None:
        now = time.perf_counter()
        self.parts[part] = now - self.last
        self.observe(part, now - self.last)
        self.last = now


def _client_can_take_over(exc: OffloadError) -> bool:
    """No answer, or too busy to take the work: this device can do it instead."""
    return isinstance(exc, ServerUnreachable) or exc.status == 503


def _pixels_body(pixels: Any, height: int, width: int, channels: int) -> tuple[bytes, str]:
    return messages.encode_image(bytes(pixels), height, width, channels), MEDIA_TYPE


def _default_inputs() -> dict[str, tuple[int, ...]]:
    from ..model.tiny_vit import IMG_SIZE

    shapes = [(IMG_SIZE, IMG_SIZE, 3), (256, 256, 64), (128, 128, 128), (64, 64, 160)]
    shapes += [(64, 64, 320), (64, 64, 320)]
    return dict(zip(STAGES, shapes, strict=True))


def _mask_bytes_guess(height: int, width: int, low_res: str) -> int:
    # 0/1 masks gzip to a few percent; low-res logits (float32) hardly compress.
    planes = {"all": 3, "best": 1, "none": 0}[low_res]
    return 3 * height * width // 25 + planes * 256 * 256 * 4
