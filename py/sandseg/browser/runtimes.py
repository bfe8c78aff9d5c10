"""Which client runtime runs this browser's share of the model (DESIGN.md, runtimes):
`webgpu` (the WGSL model on WebGPU: recovery.LocalModel) or `wasm` (onnxruntime-web on the
server's stage graphs: wasm.WasmPredictor).

`auto` chooses by measurement, never by adapter name. At boot the worker loads WebGPU and
this module times one encoder stage on it (PROBE_STAGE, on a zero input of its boundary
shape; the second of two runs), scaled to a whole encode by the stage's share of the
encoder's FLOPs (model/flops.py). Within FAST_ENOUGH_S per encode WebGPU is kept and the
wasm runtime never downloaded; otherwise (or where WebGPU cannot run at all) the worker
loads wasm, the same stage is timed there, and the faster runtime is put in force. A probe
that fails falls back to the rule without measurement (WebGPU where it works, else wasm),
the failure named in the reason.

The worker loads what a choice needs (the WebGPU model, or onnxruntime-web and the graphs)
and tells this module what loaded and, for what did not, why (`problem`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, cast

from pyodide.ffi import to_js

from ..model.flops import stage_share
from ..predictor import InputError, Predictor
from ..weights.layout import ENCODER_STAGES, STAGE_BOUNDARIES
from .recovery import LocalModel
from .wasm import WASM, WEBGPU, WasmPredictor, WasmTensor

AUTO = "auto"
RUNTIMES = (AUTO, WEBGPU, WASM)
NAMES = {WEBGPU: "WebGPU", WASM: "wasm"}
# The stage auto times: 7.1% of the encoder's FLOPs, so a slow adapter costs seconds at boot,
# not a whole encode; compute-bound convolutions, whose share of a measured encode on
# WebGPU/SwiftShader (7.8%) matched their FLOP share. patch_embed, the cheapest (3.7%), took
# 5.7%: memory-bound at 512 x 512, it overestimates an encode.
PROBE_STAGE = "neck"
# A WebGPU adapter estimated at most this per encode is kept without trying wasm: a real
# GPU encodes in well under a second, SwiftShader (CPU emulation) in 20-40 s, wasm in ~5 s
# on two busy cores.
FAST_ENOUGH_S = 2.0


@dataclass(frozen=True)
class Measured:
    """One runtime's probe: `stage` took `stage_s` (the second of two runs)."""

    stage: str
    stage_s: float

    @property
    def encode_s(self) -> float:
        """The whole encoder's estimated seconds: the stage's time over its FLOP share."""
        return self.stage_s / stage_share(self.stage)

    def summary(self) -> dict[str, Any]:
        stage_ms, encode_ms = self.stage_s * 1e3, self.encode_s * 1e3
        return {"stage": self.stage, "stageMs": stage_ms, "encodeMs": encode_ms}


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise InputError(f"unknown runtime {runtime!r}; the runtimes are {', '.join(RUNTIMES)}")
    return runtime


class ClientRuntimes:
    """The runtimes this browser has loaded, the one in force (`current`, None when neither
    can run), why it was chosen (`reason`) and what auto's probe measured (`measured`,
    `probe_errors`; `probe()` for the page)."""

    def __init__(self, local: LocalModel) -> None:
        self.local = local
        self.wasm: WasmPredictor | None = None
        self.problems: dict[str, str] = {}
        self.measured: dict[str, Measured] = {}
        self.probe_errors: dict[str, str] = {}
        self.current: str | None = None
        self.reason = "no client runtime chosen yet"

    def attach_wasm(self, bridge: Any) -> None:
        """bridge: web/ort_runtime.js's OrtRuntime, loaded and checked."""
        self.wasm = WasmPredictor(bridge)
        self.problems.pop(WASM, None)

    def problem(self, runtime: str, text: str) -> None:
        """Why `runtime` cannot run in this browser."""
        self.problems[check_runtime(runtime)] = text

    def available(self, runtime: str) -> bool:
        if runtime == WEBGPU:
            return self.local.predictor is not None
        return self.wasm is not None

    def _local(self, runtime: str) -> Predictor | None:
        if runtime == WEBGPU:
            return self.local.predictor
        return cast(Predictor, self.wasm) if runtime == WASM else None

    def predictor(self) -> Predictor | None:
        """The local model in force, for OffloadSession (WasmPredictor has the part of
        Predictor's interface it uses: model.preprocess, model.image_encoder.steps,
        device.finish and read, restore_image, set_image_embedding, predict_prompt)."""
        return self._local(self.current) if self.current else None

    async def measure(self, runtime: str) -> None:
        """Time PROBE_STAGE on `runtime` once it is loaded (nothing when it is not, or was
        timed already); a failure is kept in probe_errors, not raised."""
        predictor = self._local(check_runtime(runtime))
        if predictor is None or runtime in self.measured:
            return
        try:
            self.measured[runtime] = Measured(PROBE_STAGE, await time_stage(predictor))
            self.probe_errors.pop(runtime, None)
        except Exception as exc:  # any failure: auto falls back to the unmeasured rule
            self.probe_errors[runtime] = f"{type(exc).__name__}: {exc}"

    def wants_wasm(self) -> bool:
        """After WebGPU's probe: whether auto should load wasm and time it too (WebGPU cannot
        run, or measured slower than FAST_ENOUGH_S per encode; not after a failed probe, which
        keeps WebGPU)."""
        if not self.available(WEBGPU):
            return True
        webgpu = self.measured.get(WEBGPU)
        return webgpu is not None and webgpu.encode_s > FAST_ENOUGH_S

    def probe(self) -> dict[str, Any]:
        """What auto measured, for the page: {runtime: {stage, stageMs, encodeMs} or {error}}
        for each runtime probed, with the rule's figures (stageShare, fastEnoughMs)."""
        out: dict[str, Any] = {
            "stage": PROBE_STAGE,
            "stageShare": stage_share(PROBE_STAGE),
            "fastEnoughMs": FAST_ENOUGH_S * 1e3,
        }
        for runtime in (WEBGPU, WASM):
            if runtime in self.measured:
                out[runtime] = self.measured[runtime].summary()
            elif runtime in self.probe_errors:
                out[runtime] = {"error": self.probe_errors[runtime]}
        return out

    def choose(self, requested: str) -> bool:
        """Put `requested` (or auto's pick) in force when it can run; False, and the runtime in
        force unchanged, when it cannot (`reason` says why)."""
        if check_runtime(requested) == AUTO:
            if not any(self.available(r) for r in (WEBGPU, WASM)):
                self.current = None
                self.reason = f"auto: no client runtime can run here ({self._why_not()})"
                return False
            self.current, why = self._auto()
            self.reason = f"auto: {self.current}{why}"
            return True
        if not self.available(requested):
            self.reason = f"{requested} cannot run here ({self._why(requested)})"
            return False
        self.current = requested
        self.reason = f"{requested}, as chosen"
        return True

    def _auto(self) -> tuple[str, str]:
        """auto's pick among the runtimes that can run (one at least), and why."""
        if not self.available(WEBGPU):
            return WASM, f", since WebGPU cannot ({self._why(WEBGPU)}){self._figure(WASM, '; ')}"
        webgpu = self.measured.get(WEBGPU)
        if webgpu is None:
            failed = self.probe_errors.get(WEBGPU)
            return WEBGPU, f" (not measured: the probe failed: {failed})" if failed else ""
        if webgpu.encode_s <= FAST_ENOUGH_S and WASM not in self.measured:
            within = f": within {_seconds(FAST_ENOUGH_S)}, so wasm was not tried"
            return WEBGPU, f"{self._figure(WEBGPU, ', ')}{within}"
        wasm = self.measured.get(WASM)
        if wasm is None:
            failed = self.probe_errors.get(WASM)
            why = f"its probe failed: {failed}" if failed else self._why(WASM)
            return WEBGPU, f"{self._figure(WEBGPU, ', ')}; wasm cannot be measured here ({why})"
        pick, other = (WASM, WEBGPU) if wasm.encode_s < webgpu.encode_s else (WEBGPU, WASM)
        return pick, (
            f"{self._figure(pick, ', ')}; {NAMES[other]} measured "
            f"{_seconds(self.measured[other].encode_s)} per image on this adapter"
        )

    def _figure(self, runtime: str, lead: str) -> str:
        """`runtime`'s measured figures in words ("" when it was not measured)."""
        measured = self.measured.get(runtime)
        if measured is None:
            return ""
        return (
            f"{lead}{_seconds(measured.encode_s)} per image (measured: {measured.stage} in "
            f"{measured.stage_s * 1e3:.0f} ms)"
        )

    def state(self, available: bool) -> dict[str, Any]:
        """setRuntime's answer: {runtime (in force), available (the one asked for), reason}."""
        return {"runtime": self.current, "available": available, "reason": self.reason}

    def _why(self, runtime: str) -> str:
        return self.problems.get(runtime, "not loaded")

    def _why_not(self) -> str:
        return "; ".join(f"{r}: {self._why(r)}" for r in (WEBGPU, WASM))


async def time_stage(predictor: Predictor, stage: str = PROBE_STAGE) -> float:
    """Seconds for one run of encoder `stage` on a zero input of its boundary shape: the
    second of two runs (the first allocates and warms up), on either runtime."""
    index = ENCODER_STAGES.index(stage)
    x = _zeros(predictor, STAGE_BOUNDARIES[index])
    seconds = 0.0
    for _ in range(2):
        await predictor.device.finish()
        start = time.perf_counter()
        predictor.model.encode(x, index, index + 1)
        await predictor.device.finish()
        seconds = time.perf_counter() - start
    return seconds


def _zeros(predictor: Predictor, shape: tuple[int, int, int]) -> Any:
    """A zero (H, W, C) float32 tensor where `predictor`'s encoder reads its input."""
    data = bytes(4 * math.prod(shape))
    if isinstance(predictor, WasmPredictor):
        return WasmTensor(shape, to_js(memoryview(data).cast("f")))
    return predictor.device.upload(data, shape)


def _seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.2g} s"
