"""POST /api/v1/images/{sha}/everything: the automatic mask generator's parameters as a JSON
body, checked before any GPU work (RELIABILITY.md AM-1).

The names and defaults are `AutomaticMaskGenerator`'s (and `sandseg everything`'s); the bounds
below are the generator's own plus ceilings that change no result (no crop has more than
MAX_POINTS_PER_SIDE**2 points to batch, no mask more than MAX_IMAGE_PIXELS pixels). The same
table is the OpenAPI schema of the body, so the document and the checks cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..amg.params import (
    MAX_CROP_LAYERS,
    MAX_POINTS_PER_SIDE,
    MAX_STABILITY_OFFSET,
    GeneratorParams,
)
from ..predictor import MAX_IMAGE_PIXELS, InputError

MAX_BODY_BYTES = 16 * 1024
# name -> (JSON Schema type, minimum, maximum or None)
BOUNDS: dict[str, tuple[str, float, float | None]] = {
    "points_per_side": ("integer", 1, MAX_POINTS_PER_SIDE),
    "points_per_batch": ("integer", 1, MAX_POINTS_PER_SIDE**2),
    "pred_iou_thresh": ("number", 0, 1),
    "stability_score_thresh": ("number", 0, 1),
    "stability_score_offset": ("number", 0, MAX_STABILITY_OFFSET),
    "box_nms_thresh": ("number", 0, 1),
    "crop_n_layers": ("integer", 0, MAX_CROP_LAYERS),
    "crop_nms_thresh": ("number", 0, 1),
    "crop_overlap_ratio": ("number", 0, 1),
    "crop_n_points_downscale_factor": ("integer", 1, MAX_POINTS_PER_SIDE),
    "min_mask_region_area": ("integer", 0, MAX_IMAGE_PIXELS),
}
DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(GeneratorParams) if f.name in BOUNDS
}
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def body_schema() -> dict[str, Any]:
    """The JSON Schema of the body (OpenAPI)."""
    properties = {}
    for name, (kind, low, high) in BOUNDS.items():
        schema: dict[str, Any] = {"type": kind, "minimum": low, "default": DEFAULTS[name]}
        if high is not None:
            schema["maximum"] = high
        properties[name] = schema
    return {"type": "object", "properties": properties, "additionalProperties": False}


def parse_parameters(body: bytes) -> dict[str, Any]:
    """The body (a JSON object of generator parameters, each optional) -> keyword arguments
    for AutomaticMaskGenerator, all checked. InputError names what is wrong."""
    try:
        value = json.loads(body, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except InputError:
        raise
    except RecursionError:
        raise InputError("the body is not a JSON object of parameters: nested too deep") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"the body is not JSON: {exc.msg} at character {exc.pos}") from None
    except ValueError:  # not UTF-8, or an integer of over 4300 digits
        raise InputError("the body is not JSON (UTF-8, numbers of sane size)") from None
    if not isinstance(value, dict):
        raise InputError(
            "the body must be a JSON object of generator parameters, e.g. "
            '{"points_per_side": 16}; {} takes every default'
        )
    for name, given in value.items():
        if name not in BOUNDS:
            shown = repr(name) if name.isidentifier() and len(name) <= 40 else "a parameter"
            raise InputError(f"unknown parameter {shown}; the parameters are {', '.join(BOUNDS)}")
        kind, low, high = BOUNDS[name]
        _check(name, given, kind, low, high)
    try:
        GeneratorParams(**value)  # what depends on several values (points left per layer)
    except TypeError:
        raise InputError("the parameters do not fit together") from None
    return value


def _check(name: str, value: Any, kind: str, low: float, high: float | None) -> None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer" and not (number and isinstance(value, int)):
        raise InputError(f"{name} must be an integer, got {_what(value)}")
    if kind == "number" and not number:
        raise InputError(f"{name} must be a number, got {_what(value)}")
    if value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise InputError(f"{name} must be {bound}, got {value:g}")


def _what(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    return _JSON_TYPES.get(type(value), "another type")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            shown = repr(key) if key.isidentifier() and len(key) <= 40 else "a key"
            raise InputError(f"the body names {shown} twice")
        seen[key] = value
    return seen


def _no_constant(name: str) -> Any:
    raise InputError(f"the body holds {name}, which is not JSON: give finite numbers")
