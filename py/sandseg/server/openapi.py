"""The OpenAPI 3.1 document of the offload API, served at /api/v1/openapi.json.

Written by hand next to the routes (server/api.py): it is the contract clients and the API
fuzzer read, so it names every route, parameter, body and error status.
"""

from __future__ import annotations

from typing import Any

from .everything import body_schema
from .onnx_route import GRAPHS as ONNX_GRAPHS

SAFETENSORS = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
IMAGE_BODY = {
    **{
        kind: {"schema": {"type": "string", "format": "binary"}}
        for kind in ("image/jpeg", "image/png", "image/webp")
    },
    **SAFETENSORS,
}
ERROR = {
    "description": "an error, in words",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}},
                "required": ["error"],
            }
        }
    },
}
DTYPE = {
    "name": "dtype",
    "in": "query",
    "required": False,
    "description": "float dtype of the returned tensor",
    "schema": {"type": "string", "enum": ["float32", "float16"], "default": "float32"},
}


_SECONDS = {"type": ["number", "null"]}
_RUNTIME = {"type": "string", "enum": ["wgpu", "onnxruntime"]}
MODEL_PROPERTIES: dict[str, Any] = {
    "replicas": {
        "type": "object",
        "description": (
            "this: the id of the replica that answered (also in X-Sandseg-Replica); count: "
            "replicas serving the app (autoscaled: those running now, as Ray reports them; "
            "null when Ray cannot say); autoscale: {min, max} or null; "
            "adapter: the wgpu adapter a Ray replica took ({index, device, type, backend, "
            "reason}), null where none was chosen (one process, --runtime onnxruntime)"
        ),
        "properties": {
            "this": {"type": "string"},
            "count": {"type": ["integer", "null"]},
            "autoscale": {"type": ["object", "null"]},
            "adapter": {"type": ["object", "null"]},
        },
    },
    "weights": {
        "type": "object",
        "description": (
            "the weights served: name (the checkpoint they were converted from, else the file "
            "name), sha256 (of the .safetensors file) and demo (the seeded random demo "
            "weights, recognised by their tensors: masks look like noise)"
        ),
        "properties": {
            "name": {"type": "string"},
            "sha256": {"type": "string"},
            "demo": {"type": "boolean"},
        },
        "required": ["name", "sha256", "demo"],
    },
    "stages": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "server_seconds": _SECONDS,
                "runtime": {**_RUNTIME, "description": "the runtime that runs this stage"},
                "runtime_seconds": {
                    "type": "object",
                    "description": "seconds of this stage measured on each runtime at start-up",
                    "additionalProperties": {"type": "number"},
                },
            },
        },
    },
    "runtime": {
        "type": "object",
        "description": (
            "--runtime as requested (auto, wgpu, onnxruntime), the runtimes loaded, the one "
            "running pre-processing, each stage and the decoder, why, and what each measured"
        ),
        "properties": {
            "requested": {"type": "string", "enum": ["auto", "wgpu", "onnxruntime"]},
            "available": {"type": "object", "additionalProperties": {"type": "string"}},
            "preprocess": _RUNTIME,
            "stages": {"type": "object", "additionalProperties": _RUNTIME},
            "decoder": _RUNTIME,
            "reason": {"type": "string"},
            "measured": {"type": "object"},
        },
    },
}


_XYWH = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}
EVERYTHING_DOCUMENT: dict[str, Any] = {
    "image": {
        "type": "object",
        "description": "file_name is the image's sha256 (the server keeps no file name)",
        "properties": {
            "file_name": {"type": "string"},
            "height": {"type": "integer"},
            "width": {"type": "integer"},
        },
    },
    "annotations": {
        "type": "array",
        "description": "one per mask, in the generator's order (as `sandseg everything`)",
        "items": {
            "type": "object",
            "properties": {
                "segmentation": {
                    "type": "object",
                    "description": "COCO compressed RLE (pycocotools.mask.decode reads it)",
                    "properties": {
                        "size": {"type": "array", "items": {"type": "integer"}},
                        "counts": {"type": "string"},
                    },
                },
                "area": {"type": "integer"},
                "bbox": {**_XYWH, "description": "XYWH, image pixels"},
                "predicted_iou": {"type": "number"},
                "point_coords": {
                    "type": "array",
                    "items": {"type": "array", "items": {"type": "number"}},
                },
                "stability_score": {"type": ["number", "null"]},
                "crop_box": {**_XYWH, "description": "XYWH, image pixels"},
            },
        },
    },
}


def _errors(*statuses: int) -> dict[str, Any]:
    common = (400, 403, 408, 413, 415, 503, 504)
    return {str(status): ERROR for status in sorted({*common, *statuses})}


def _json(description: str, properties: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _binary(description: str) -> dict[str, Any]:
    return {"description": description, "content": SAFETENSORS}


def openapi_document(stage_names: list[str]) -> dict[str, Any]:
    stage_param = {
        "name": "stage",
        "in": "path",
        "required": True,
        "description": "the first stage to run on the server",
        "schema": {"type": "string", "enum": stage_names},
    }
    sha_param = {
        "name": "sha",
        "in": "path",
        "required": True,
        "description": "sha256 of an uploaded image, as POST /api/v1/images returned it",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    }
    paths = {
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document (needs no token)",
                "responses": {"200": _json("the OpenAPI 3.1 document", {})},
            }
        },
        "/api/v1/model": {
            "get": {
                "summary": (
                    "The model: the weights (name, sha256, demo), stages with boundary shapes, "
                    "the runtime that runs each part and the seconds every runtime measured"
                ),
                "responses": {"200": _json("the description", MODEL_PROPERTIES)},
            }
        },
        "/api/v1/stages/{stage}": {
            "post": {
                "summary": "Run encoder stages [stage, end) on the boundary tensor entering it",
                "parameters": [stage_param, DTYPE],
                "requestBody": {
                    "required": True,
                    "description": 'safetensors: "x", (H, W, C) float32 or float16',
                    "content": SAFETENSORS,
                },
                "responses": {
                    "200": _binary('safetensors: "embeddings", (64, 64, 256)'),
                    **_errors(404, 422),
                },
            }
        },
        "/api/v1/images": {
            "post": {
                "summary": "Upload an image once: encoded and cached by the body's sha256",
                "requestBody": {
                    "required": True,
                    "description": 'an image file, or safetensors "image" (H, W, C) uint8',
                    "content": IMAGE_BODY,
                },
                "responses": {
                    "200": _json(
                        "the cached image",
                        {
                            "image_sha256": {"type": "string"},
                            "height": {"type": "integer"},
                            "width": {"type": "integer"},
                            "cached": {"type": "boolean"},
                        },
                    ),
                    **_errors(422),
                },
            }
        },
        "/api/v1/images/embeddings": {
            "post": {
                "summary": "Upload an image, get its embeddings (server encodes, client decodes)",
                "parameters": [DTYPE],
                "requestBody": {"required": True, "content": IMAGE_BODY},
                "responses": {
                    "200": _binary('safetensors: "embeddings", (64, 64, 256)'),
                    **_errors(422),
                },
            }
        },
        "/api/v1/images/{sha}/predict": {
            "post": {
                "summary": "Decode prompts against a cached image; returns masks",
                "parameters": [sha_param],
                "requestBody": {
                    "required": True,
                    "description": (
                        'safetensors: optional "point_coords" (N, 2) float32 with N <= 1024, '
                        '"point_labels" (N,) int32, "box" (4,) float32, "mask_input" '
                        '(1, 256, 256) float32; metadata "multimask_output" and "low_res" '
                        "(all, best, none)"
                    ),
                    "content": SAFETENSORS,
                },
                "responses": {
                    "200": _binary(
                        'safetensors: "masks" (C, H, W) uint8, "iou_predictions" (C,) float32, '
                        '"low_res_masks" (K, 256, 256) float32'
                    ),
                    **_errors(404, 422),
                },
            }
        },
        "/api/v1/images/{sha}/everything": {
            "post": {
                "summary": (
                    "Segment everything in a cached image: the automatic mask generator, "
                    "COCO-style JSON as `sandseg everything` writes it (gzip when accepted)"
                ),
                "parameters": [sha_param],
                "requestBody": {
                    "required": True,
                    "description": (
                        "the generator's parameters, each optional (the official defaults); "
                        "at most 64 points per side and 2 crop layers (AM-1)"
                    ),
                    "content": {"application/json": {"schema": body_schema()}},
                },
                "responses": {
                    "200": _json("the masks", EVERYTHING_DOCUMENT),
                    **_errors(404, 422),
                },
            }
        },
        "/api/v1/onnx/{graph}": {
            "get": {
                "summary": (
                    "One ONNX graph of the served weights (an encoder stage or the decoder, "
                    "channels-last boundaries; sandseg.export.stages), for the browser's WASM "
                    "runtime; X-Sandseg-Sha256 is the body's sha256"
                ),
                "parameters": [
                    {
                        "name": "graph",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(ONNX_GRAPHS)},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "the ONNX model",
                        "headers": {
                            "X-Sandseg-Sha256": {
                                "description": "sha256 of the body, hex",
                                "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                            }
                        },
                        "content": SAFETENSORS,
                    },
                    **_errors(404, 503),
                },
            }
        },
        "/healthz": {
            "get": {"summary": "Liveness", "responses": {"200": _json("alive", {})}},
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: false while starting and once shutting down",
                "responses": {"200": _json("ready", {}), "503": ERROR},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sandseg offload API",
            "version": "1",
            "description": (
                "Tensors travel as safetensors bytes (application/octet-stream), channels-last. "
                "With a token configured, /api/ routes need 'Authorization: Bearer <token>'."
            ),
        },
        "paths": paths,
    }
