"""One `Session` per worker: the model on this device (recovery.LocalModel), the server, and
the offload session that decides where each image is encoded and each prompt decoded.

The worker (JavaScript) verifies and fetches the files, decodes images and measures time;
this module does everything else. Arguments come from JavaScript: the weights and the pixels
as JS typed arrays (read without a copy of the whole file), prompts as JS objects
(prompt.PagePrompt). Results go back as plain JS objects holding typed arrays (marshal.py).
"""

from __future__ import annotations

import time
from typing import Any

from .. import ops
from ..gpu import GPUError
from ..model import probe_image
from ..model.tuning import tune_model
from ..offload.client import OffloadClient, OffloadError
from ..offload.session import ImageResult, OffloadSession
from ..predictor import LOW_RES, MAX_IMAGE_PIXELS, InputError, Prediction, check_image_size
from . import everything, marshal
from .fetch import FetchTransport
from .prompt import PagePrompt
from .recovery import LocalModel, recovering
from .runtimes import ClientRuntimes

# Image files the server decodes; others travel as pixels.
UPLOAD_TYPES = ("image/jpeg", "image/png", "image/webp")


class Session:
    """The model in one worker, in any offload mode.

    Boot: `await open_device()` (None, or why this browser cannot run the model), then
    `await load_model(weights)` and `await compile_pipelines()` when it can, then
    `await connect(server)`. Then `set_mode`, `set_image`, `predict`."""

    def __init__(self, token: str | None = None) -> None:
        self.local = LocalModel()
        self.runtimes = ClientRuntimes(self.local)  # which of webgpu, wasm runs here
        self.offload: OffloadSession | None = None
        self.client = OffloadClient(FetchTransport(token))
        self.server_error: str | None = None  # why the server cannot be used, if it cannot
        self.weights_sha: str | None = None  # the server's weights
        self._image: tuple[bytes, int, int, tuple[bytes, str] | None] | None = None
        self._previous: bytes | None = None

    @property
    def adapter(self) -> str:
        device = self.local.device
        return device.adapter_name if device else "none"

    @property
    def max_image_pixels(self) -> int:
        return MAX_IMAGE_PIXELS

    def gpu_wait_ms(self) -> float:
        """How long the GPU has kept the work in progress waiting (PY-3's watchdog)."""
        device = self.local.device
        return device.gpu_wait_s() * 1000 if device else 0.0

    async def open_device(self) -> str | None:
        """Create the WebGPU device; None when it works, else why not (GP-1, GP-4)."""
        return await self.local.open_device()

    async def load_model(self, weights: Any) -> str | None:
        """Upload the weights (a JS Uint8Array, safetensors); None when it worked, else why
        not (out of GPU memory, GP-6): the session then offloads everything."""
        return await self.local.load_model(weights)

    async def compile_pipelines(self) -> str | None:
        """Create every pipeline the model uses without running it, and wait until the
        browser has compiled them (a dry run of pre-processing, encoder and decoder). None
        when that worked; else why not, and the WebGPU model is dropped (GP-6: the page goes
        on without it, on wasm or the server)."""
        device, model = self.local.ready()
        # The one tensor the model computes once and caches: computed for real first, so the
        # dry run cannot cache an empty one.
        model.prompt_encoder.dense_pe()
        try:
            async with device.compile_only():
                x, info = model.preprocess(*probe_image())
                embeddings = model.encode(x)
                mask = device.empty((LOW_RES, LOW_RES, 1))
                for mask_input in (None, mask):
                    low_res, _ = model.decode(embeddings, [(1.0, 1.0)], [1], mask_input, True)
                    ops.threshold(model.postprocess(low_res, info), 0.0)
            await device.finish()
        except GPUError as exc:
            self.local.drop()
            return f"the GPU could not compile the model's kernels ({exc})"
        return None

    async def tune_kernels(self) -> Any:
        """Choose every kernel variant the WebGPU model runs on this adapter: measured where the
        table (kept in IndexedDB by the worker) lacks the choice, reused where it has it ->
        {choices, measured, reused, ms}. Pipelines of variants newly chosen are created where
        they are first used."""
        started = time.perf_counter()
        choices = await tune_model(self.local.ready_device())
        measured = sum(c.measured for c in choices)
        return marshal.js_object(
            {
                "choices": len(choices),
                "measured": measured,
                "reused": len(choices) - measured,
                "ms": (time.perf_counter() - started) * 1000,
            }
        )

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
        predictor = self.runtimes.predictor()
        if predictor is None and client is None:
            raise RuntimeError(f"{client_problem}; and {self.server_error}")
        self.offload = OffloadSession(predictor, client, low_res="best")
        if client is not None:
            await self.offload.connect(probe=predictor is not None)
        if client_problem:
            self.offload.disable_client(client_problem)
        return self.mode_info()

    def attach_wasm(self, bridge: Any) -> None:
        """The wasm runtime loaded (web/ort_runtime.js's OrtRuntime): it can be chosen."""
        self.runtimes.attach_wasm(bridge)

    def runtime_problem(self, runtime: str, problem: str) -> None:
        """Why `runtime` ("webgpu", "wasm") cannot run in this browser."""
        self.runtimes.problem(runtime, problem)

    async def measure_runtime(self, runtime: str) -> bool:
        """auto's probe: time one encoder stage on `runtime` once it is loaded (runtimes.py)
        -> whether auto wants the wasm runtime loaded and timed too."""
        await self.runtimes.measure(runtime)
        return self.runtimes.wants_wasm()

    def runtime_probe(self) -> Any:
        """What auto measured: runtimes.ClientRuntimes.probe."""
        return marshal.js_object(self.runtimes.probe())

    def select_runtime(self, requested: str) -> Any:
        """At boot, before `connect`: the client runtime to use ("auto", "webgpu", "wasm")."""
        return marshal.js_object(self.runtimes.state(self.runtimes.choose(requested)))

    async def set_runtime(self, requested: str) -> Any:
        """Switch the client runtime (the worker loaded what it needs) -> {runtime (the one
        in force), available (whether `requested` could be used), reason}. The current image
        is dropped: the next setImage runs on the new runtime."""
        before = self.runtimes.current
        available = self.runtimes.choose(requested)
        offload = self._offload()
        if available and self.runtimes.current != before:
            offload.predictor = self.runtimes.predictor()
            offload.planner.client_available = True
            offload.image_mode = None
            self._image = None
            if offload.client is not None:
                await offload.connect(probe=True)
        return marshal.js_object(self.runtimes.state(available))

    def _ran_here(self, mode: str | None) -> str | None:
        """The client runtime that ran a result in `mode` (None: nothing ran here)."""
        return self.runtimes.current if mode not in (None, "server", "split:image") else None

    def mode_choices(self) -> Any:
        """Every mode, for the page's picker (marshal.mode_choices), naming the client runtime
        chosen at boot."""
        return marshal.js_object(marshal.mode_choices(self.runtimes.current))

    def set_mode(self, mode: str) -> Any:
        self._offload().set_mode(mode)
        return self.mode_info()

    def mode_info(self) -> Any:
        info = marshal.mode_info(self._offload(), self.server_error, self.weights_sha)
        return marshal.js_object(info)

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
        self.local.kept = None
        offload = self._offload()
        result = await recovering(self._encode, self.local, offload, replay=None)
        plan = offload.planner.last_plan if offload.mode == "auto" else None
        fields = marshal.image_result(result, plan, offload.notice)
        return marshal.js_object({**fields, "runtime": self._ran_here(result.mode)})

    async def predict(self, js_prompt: Any) -> Any:
        """js_prompt: {points, labels, box, maskInput, multimask, preview} (prompt.PagePrompt);
        maskInput "previous" is the best mask of the last prediction that was not a preview.
        Returns marshal.prediction_result's fields."""
        prompt = PagePrompt.from_js(js_prompt)
        before = self._traffic()
        offload = self._offload()
        prediction = await recovering(
            lambda: self._decode(prompt),
            self.local,
            offload,
            replay=self._replay,
        )
        up, down, server_s = (a - b for a, b in zip(self._traffic(), before, strict=True))
        if not prompt.preview:
            self._previous = _best_low_res(prediction)
        result = marshal.prediction_result(
            prediction, offload.image_mode, offload.notice, (up, down, server_s)
        )
        runtime = self.runtimes.current if offload.image_mode != "server" else None
        return marshal.js_object({**result, "runtime": runtime})

    async def everything(self, js_params: Any, step: Any, signal: Any = None) -> Any:
        """Segment everything on the current image where it was encoded (browser/everything.py)
        -> {annotations (the CLI's records), backend ("client" or "server"), runtime}.
        js_params: the generator's parameters (a JS object, or null); step(done, total): the
        page's progress callback, returning true to cancel at the next batch; signal: an
        AbortSignal that aborts the server's request."""
        params = everything.check_parameters(_to_py(js_params))
        offload = self._offload()
        if self._image is None or offload.image_mode is None:
            raise InputError("no image is set: open an image (setImage) first")

        def progress(done: int, total: int) -> bool:
            return bool(step(done, total))

        predictor = self.local.predictor
        here = offload.image_mode != "server" and self.runtimes.current == "webgpu"
        if not here or predictor is None:
            # On the server: where the image lives, or where a client runtime that has no
            # batched decoder (wasm) hands it (uploaded once; its mode stays).
            if offload.client is None:
                raise InputError(
                    "segment everything runs on WebGPU or on the server; this image was "
                    f"encoded by the {self.runtimes.current or 'no'} client runtime and there "
                    "is no server: choose the webgpu runtime and open the image again"
                )
            if progress(0, everything.SERVER_TOTAL):
                raise everything.Cancelled()
            sha = await offload.server_copy()
            document = await self._everything_remotely(sha, params, signal)
            if progress(everything.SERVER_TOTAL, everything.SERVER_TOTAL):
                raise everything.Cancelled()
            annotations, backend, runtime = document["annotations"], "server", None
        else:
            data, height, width, _ = self._image
            annotations = await everything.run_locally(
                predictor, data, height, width, params, progress
            )
            backend, runtime = "client", "webgpu"
        return marshal.js_object(
            {"annotations": annotations, "backend": backend, "runtime": runtime}
        )

    # -- internals ------------------------------------------------------------------------

    async def _everything_remotely(
        self, sha: str, params: dict[str, Any], signal: Any
    ) -> dict[str, Any]:
        transport = self.client.transport
        if isinstance(transport, FetchTransport):
            transport.signal = signal
        try:
            return await self.client.everything(sha, params)
        except OffloadError:
            if signal is not None and bool(signal.aborted):
                raise everything.Cancelled() from None
            raise
        finally:
            if isinstance(transport, FetchTransport):
                transport.signal = None

    def _traffic(self) -> tuple[float, float, float]:
        return self.client.bytes_up, self.client.bytes_down, self.client.server_seconds

    def _offload(self) -> OffloadSession:
        if self.offload is None:
            raise RuntimeError("the session is not connected yet")
        return self.offload

    async def _encode(self) -> ImageResult:
        assert self._image is not None
        data, height, width, upload = self._image
        result = await self._offload().set_image(data, height, width, 4, upload)
        webgpu = self.runtimes.current == "webgpu"
        if webgpu and self.local.device is not None and self.local.predictor is not None:
            await self.local.device.finish()
            if result.mode != "server":
                await self.local.keep_embeddings(height, width)
        return result

    async def _replay(self, rebuilt: bool) -> None:
        """The current image on the rebuilt device (its kept embeddings when there are
        some); after a move to the server (rebuilt False), encoded again there."""
        offload = self._offload()
        if rebuilt and (self._image is None or offload.image_mode == "server"):
            return
        predictor, kept = self.local.predictor, self.local.kept
        if rebuilt and kept is not None and predictor is not None:
            predictor.set_image_embedding(*kept)
        else:
            await self._encode()

    async def _decode(self, prompt: PagePrompt) -> Prediction:
        offload = self._offload()
        if offload.image_mode is None:
            raise InputError("no image is set: call setImage first")
        return await offload.predict(prompt.resolve(self._previous))


def _to_py(value: Any) -> Any:
    """A JS value as Python (dicts, lists, numbers); Python values as they are."""
    return value.to_py() if hasattr(value, "to_py") else value


def _best_low_res(prediction: Prediction) -> bytes:
    """The best-scoring mask's low-res logits (the only plane when just one travelled)."""
    plane = LOW_RES * LOW_RES * 4
    kept = prediction.best if marshal.low_res_planes(prediction) == len(prediction.iou) else 0
    return prediction.low_res[kept * plane : (kept + 1) * plane]
