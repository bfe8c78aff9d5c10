"""Which client runtime runs this browser's share of the model (DESIGN.md, runtimes):
`webgpu` (the WGSL model on WebGPU: recovery.LocalModel) or `wasm` (onnxruntime-web on the
server's stage graphs: wasm.WasmPredictor). `auto` takes WebGPU where it works and wasm where
it does not (no WebGPU, limits too small, out of GPU memory).

The worker loads what a choice needs (the WebGPU model, or onnxruntime-web and the graphs)
and tells this module what loaded and, for what did not, why (`problem`).
"""

from __future__ import annotations

from typing import Any, cast

from ..predictor import InputError, Predictor
from .recovery import LocalModel
from .wasm import WASM, WEBGPU, WasmPredictor

AUTO = "auto"
RUNTIMES = (AUTO, WEBGPU, WASM)


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise InputError(f"unknown runtime {runtime!r}; the runtimes are {', '.join(RUNTIMES)}")
    return runtime


class ClientRuntimes:
    """The runtimes this browser has loaded, the one in force (`current`, None when neither
    can run) and why it was chosen (`reason`)."""

    def __init__(self, local: LocalModel) -> None:
        self.local = local
        self.wasm: WasmPredictor | None = None
        self.problems: dict[str, str] = {}
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

    def predictor(self) -> Predictor | None:
        """The local model in force, for OffloadSession (WasmPredictor has the part of
        Predictor's interface it uses: model.preprocess, model.image_encoder.steps,
        device.finish and read, restore_image, set_image_embedding, predict_prompt)."""
        if self.current == WEBGPU:
            return self.local.predictor
        return cast(Predictor, self.wasm) if self.current == WASM else None

    def choose(self, requested: str) -> bool:
        """Put `requested` (or auto's pick) in force when it can run; False, and the runtime in
        force unchanged, when it cannot (`reason` says why)."""
        if check_runtime(requested) == AUTO:
            picks = [r for r in (WEBGPU, WASM) if self.available(r)]
            if not picks:
                self.current = None
                self.reason = f"auto: no client runtime can run here ({self._why_not()})"
                return False
            self.current = picks[0]
            why = "" if picks[0] == WEBGPU else f", since WebGPU cannot ({self._why(WEBGPU)})"
            self.reason = f"auto: {picks[0]}{why}"
            return True
        if not self.available(requested):
            self.reason = f"{requested} cannot run here ({self._why(requested)})"
            return False
        self.current = requested
        self.reason = f"{requested}, as chosen"
        return True

    def state(self, available: bool) -> dict[str, Any]:
        """setRuntime's answer: {runtime (in force), available (the one asked for), reason}."""
        return {"runtime": self.current, "available": available, "reason": self.reason}

    def _why(self, runtime: str) -> str:
        return self.problems.get(runtime, "not loaded")

    def _why_not(self) -> str:
        return "; ".join(f"{r}: {self._why(r)}" for r in (WEBGPU, WASM))
