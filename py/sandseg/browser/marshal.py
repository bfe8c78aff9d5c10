"""Results for JavaScript, with the field names web/client.js documents. Each function
builds plain Python values (what the native tests check; the masks are typed arrays
already) and `js_object` converts the whole result once, dicts to plain JS objects, so
worker.js forwards it as it is."""

from __future__ import annotations

from typing import Any

import js
from pyodide.ffi import to_js

from ..offload.planner import MODES, Estimate, Plan, needs, split_stage
from ..offload.session import ImageResult, Notice, OffloadSession
from ..predictor import LOW_RES, Prediction

# The page's words for the modes that are not splits: (the picker's label, what produced a
# result in that mode: the page's backend badge); {client} is the client runtime's name.
_WORDS = {
    "auto": ("Auto (planner picks)", "auto"),
    "client": ("Client: all on this device", "{client} client"),
    "split:image": ("Server encodes, client decodes", "server encoder + {client} decoder"),
    "server": ("Server: all on the server", "server"),
}
# The client runtimes' names on the page (browser/runtimes.py).
RUNTIME_NAMES = {"webgpu": "WebGPU", "wasm": "WASM"}


def js_object(value: Any) -> Any:
    """Dicts -> plain JS objects, lists -> arrays; JS values inside are left as they are."""
    return to_js(value, dict_converter=js.Object.fromEntries)


def mode_choices(runtime: str | None = "webgpu") -> list[dict[str, Any]]:
    """The page's mode picker, in order: {value, label, runs (what produces a result in that
    mode, naming the client `runtime`), needsClient, needsServer (what the mode needs to be
    chosen)}."""
    client = RUNTIME_NAMES.get(runtime or "webgpu", "WebGPU")
    choices = []
    for mode in MODES:
        stage = split_stage(mode)
        words = (f"Split after {stage}", f"split after {stage} ({client} + server)")
        label, runs = words if stage else _WORDS[mode]
        runs = runs.format(client=client)
        needs_client, needs_server = needs(mode)
        choices.append(
            {
                "value": mode,
                "label": label,
                "runs": runs,
                "needsClient": needs_client,
                "needsServer": needs_server,
            }
        )
    return choices


def notice(n: Notice | None) -> dict[str, str] | None:
    """A fallback: {mode: the mode now in force, text: why, for the page}."""
    return {"mode": n.mode, "text": n.text} if n else None


def estimate(e: Estimate) -> dict[str, Any]:
    return {
        "mode": e.mode,
        "firstMaskS": e.first_mask_s,
        "clickS": e.click_s,
        "clientS": e.client_s,
        "serverS": e.server_s,
        "uploadBytes": e.upload_bytes,
        "downloadBytes": e.download_bytes,
    }


def plan_fields(plan: Plan | None) -> dict[str, Any]:
    """The planner's choice and why, and every mode's estimate (none without a plan)."""
    return {
        "plan": plan.reason if plan else None,
        "estimates": [estimate(e) for e in plan.estimates] if plan else [],
    }


def mode_info(
    offload: OffloadSession, server_error: str | None, weights_sha: str | None
) -> dict[str, Any]:
    """The mode state: client.js's `modes`."""
    return {
        "mode": offload.mode,
        "clientAvailable": offload.predictor is not None,
        "serverAvailable": offload.client is not None,
        "serverError": server_error,
        "notice": notice(offload.notice),
        **plan_fields(offload.planner.last_plan),
        "weightsSha256": weights_sha,
    }


def image_result(result: ImageResult, plan: Plan | None, last: Notice | None) -> dict[str, Any]:
    """What setImage did; plan: auto's plan for this image (None in a fixed mode)."""
    return {
        **produced_by(result.mode),
        "reason": result.reason,
        **plan_fields(plan),
        "notice": notice(last),
        "uploadBytes": result.upload_bytes,
        "downloadBytes": result.download_bytes,
        "serverMs": result.server_seconds * 1000,
        "clientMs": {k: v * 1000 for k, v in result.client_parts.items()},
        "submissionsMs": [[name, s * 1000] for name, s in result.submissions],
    }


def prediction_result(
    prediction: Prediction,
    mode: str | None,
    last: Notice | None,
    traffic: tuple[float, float, float],
) -> dict[str, Any]:
    """A predict's masks (Uint8Array, C*H*W) and low-res logits (Float32Array, K*256*256;
    K = C, or 1 where only the best mask's logits travel); traffic: bytes up, bytes down and
    server seconds for this prediction."""
    up, down, server_s = traffic
    return {
        "masks": to_js(memoryview(prediction.masks)),
        "shape": list(prediction.shape),
        "iouPredictions": prediction.iou,
        "lowResMasks": to_js(memoryview(prediction.low_res).cast("f")),
        "lowResShape": [low_res_planes(prediction), LOW_RES, LOW_RES],
        **produced_by(mode),
        "notice": notice(last),
        "uploadBytes": up,
        "downloadBytes": down,
        "serverMs": server_s * 1000,
        "submissionsMs": [[name, s * 1000] for name, s in prediction.submissions],
    }


def produced_by(mode: str | None) -> dict[str, str | None]:
    """The mode that produced a result, under both of the names the page's results have
    always had (`backend` and `mode`, the same value)."""
    return {"backend": mode, "mode": mode}


def low_res_planes(prediction: Prediction) -> int:
    return len(prediction.low_res) // (LOW_RES * LOW_RES * 4)
