"""The bodies of the offload API, on top of the wire format: one function pair per message.

- a stage input: {"x": (H, W, C) float32|float16}, the boundary tensor entering a stage;
- embeddings: {"embeddings": (64, 64, 256)} channels-last, as the decoder takes them;
- an image as pixels: {"image": (H, W, C) uint8}, C = 1, 3 or 4 (RGB order);
- a prompt: optional "point_coords" (N, 2) float32 with N <= 1024, "point_labels" (N,)
  int32, "box" (4,) float32, "mask_input" (1, 256, 256) float32; metadata "multimask_output"
  ("true" or "false") and "low_res" ("all", "best" or "none": which low-res logits to send
  back);
- a prediction: "masks" (C, H, W) uint8 0/1, "iou_predictions" (C,) float32, and
  "low_res_masks" (K, 256, 256) float32 where K is C, 1 or 0 as the prompt asked.

Coordinates are original-image pixels, as in SamPredictor.
"""

from __future__ import annotations

from array import array

from ..inputs import MAX_PROMPT_POINTS, Prompt
from ..predictor import LOW_RES, Prediction
from ..weights import HostTensor
from ..weights.layout import EMBEDDINGS_SHAPE
from .wire import Spec, WireError, from_f32, pack, to_f32, unpack

FLOATS = ("F32", "F16")
LOW_RES_CHOICES = ("all", "best", "none")
PROMPT_SIGNATURE = {
    "point_coords": Spec(("F32",), (None, 2), required=False),
    "point_labels": Spec(("I32",), (None,), required=False),
    "box": Spec(("F32",), (4,), required=False),
    "mask_input": Spec(("F32",), (1, LOW_RES, LOW_RES), required=False),
}
IMAGE_SIGNATURE = {"image": Spec(("U8",), (None, None, None))}
EMBEDDINGS_SIGNATURE = {"embeddings": Spec(FLOATS, EMBEDDINGS_SHAPE)}


# -- tensors between stages -------------------------------------------------------------------


def encode_tensor(name: str, data_f32: bytes, shape: tuple[int, ...], dtype: str) -> bytes:
    return pack({name: from_f32(data_f32, shape, dtype)})


def decode_tensor(body: bytes, name: str, shape: tuple[int, ...]) -> bytes:
    """The float32 bytes of the one tensor `name` of `shape` (sent as float32 or float16)."""
    tensors, _ = unpack(body, {name: Spec(FLOATS, shape)})
    return to_f32(tensors[name])


def encode_embeddings(data_f32: bytes, dtype: str, metadata: dict[str, str]) -> bytes:
    return pack({"embeddings": from_f32(data_f32, EMBEDDINGS_SHAPE, dtype)}, metadata)


def decode_embeddings(body: bytes) -> tuple[bytes, dict[str, str]]:
    tensors, metadata = unpack(body, EMBEDDINGS_SIGNATURE)
    return to_f32(tensors["embeddings"]), metadata


# -- images -----------------------------------------------------------------------------------


def encode_image(pixels: bytes, height: int, width: int, channels: int) -> bytes:
    return pack({"image": HostTensor("U8", (height, width, channels), pixels)})


def decode_image(body: bytes) -> tuple[bytes, int, int, int]:
    """-> (pixels, height, width, channels)."""
    tensors, _ = unpack(body, IMAGE_SIGNATURE)
    h, w, c = tensors["image"].shape
    if c not in (1, 3, 4):
        raise WireError(f"tensor 'image' has {c} channels; expected 1, 3 or 4 (gray, RGB, RGBA)")
    if h == 0 or w == 0:
        raise WireError(f"tensor 'image' is empty ({h} x {w} pixels)")
    return tensors["image"].data, h, w, c


# -- prompts ----------------------------------------------------------------------------------


def encode_prompt(prompt: Prompt, low_res: str = "all") -> bytes:
    """A prompt as the server's predict route takes it; see the module docstring."""
    tensors: dict[str, HostTensor] = {}
    if prompt.point_coords is not None and prompt.point_labels is not None:
        flat = [v for xy in prompt.point_coords for v in xy]
        tensors["point_coords"] = HostTensor("F32", (len(flat) // 2, 2), _f32(flat))
        labels = list(prompt.point_labels)
        tensors["point_labels"] = HostTensor("I32", (len(labels),), _i32(labels))
    if prompt.box is not None:
        tensors["box"] = HostTensor("F32", (4,), _f32(list(prompt.box)))
    if prompt.mask_input is not None:
        tensors["mask_input"] = HostTensor("F32", (1, LOW_RES, LOW_RES), prompt.mask_input)
    multimask = "true" if prompt.multimask_output else "false"
    return pack(tensors, {"multimask_output": multimask, "low_res": low_res})


def decode_prompt(body: bytes) -> tuple[Prompt, str]:
    """-> (the prompt, checked: InputError says what is wrong; which low-res logits to send
    back: "all", "best" or "none")."""
    tensors, metadata = unpack(body, PROMPT_SIGNATURE)
    unknown = sorted(set(metadata) - {"multimask_output", "low_res"})
    if unknown:
        raise WireError(
            f"unknown metadata {unknown[0]!r}: the prompt takes multimask_output and low_res"
        )
    multimask = metadata.get("multimask_output", "true")
    if multimask not in ("true", "false"):
        raise WireError(f'metadata multimask_output must be "true" or "false"; got {multimask!r}')
    low_res = metadata.get("low_res", "all")
    if low_res not in LOW_RES_CHOICES:
        raise WireError(f"metadata low_res must be one of {LOW_RES_CHOICES}; got {low_res!r}")
    coords = tensors.get("point_coords")
    labels = tensors.get("point_labels")
    if coords is not None and coords.shape[0] > MAX_PROMPT_POINTS:
        raise WireError(
            f"tensor 'point_coords' has {coords.shape[0]} points; a prompt takes at most "
            f"{MAX_PROMPT_POINTS}"
        )
    box = tensors.get("box")
    mask = tensors.get("mask_input")
    prompt = Prompt.of(
        point_coords=_rows(array("f", coords.data).tolist(), 2) if coords else None,
        point_labels=array("i", labels.data).tolist() if labels else None,
        box=array("f", box.data).tolist() if box else None,
        mask_input=mask.data if mask else None,
        multimask_output=multimask == "true",
    )
    return prompt, low_res


# -- predictions ------------------------------------------------------------------------------


def encode_prediction(prediction: Prediction, low_res: str) -> bytes:
    count, h, w = prediction.shape
    plane = LOW_RES * LOW_RES * 4
    if low_res == "all":
        kept, planes = prediction.low_res, count
    elif low_res == "best":
        best = prediction.best
        kept, planes = prediction.low_res[best * plane : (best + 1) * plane], 1
    else:
        kept, planes = b"", 0
    return pack(
        {
            "masks": HostTensor("U8", (count, h, w), prediction.masks),
            "iou_predictions": HostTensor("F32", (count,), _f32(prediction.iou)),
            "low_res_masks": HostTensor("F32", (planes, LOW_RES, LOW_RES), kept),
        }
    )


def decode_prediction(body: bytes) -> Prediction:
    """A server's prediction; `low_res` holds the planes the prompt asked for."""
    tensors, _ = unpack(
        body,
        {
            "masks": Spec(("U8",), (None, None, None)),
            "iou_predictions": Spec(("F32",), (None,)),
            "low_res_masks": Spec(("F32",), (None, LOW_RES, LOW_RES)),
        },
    )
    masks, iou = tensors["masks"], tensors["iou_predictions"]
    if iou.shape[0] != masks.shape[0]:
        raise WireError(f"{iou.shape[0]} IoU predictions for {masks.shape[0]} masks")
    count, h, w = masks.shape
    return Prediction(
        shape=(count, h, w),
        masks=masks.data,
        logits=None,
        low_res=tensors["low_res_masks"].data,
        iou=array("f", iou.data).tolist(),
    )


def _f32(values: list[float]) -> bytes:
    return array("f", values).tobytes()


def _i32(values: list[int]) -> bytes:
    try:
        return array("i", values).tobytes()
    except OverflowError:
        raise WireError("a point label does not fit in int32") from None


def _rows(flat: list[float], width: int) -> list[list[float]]:
    return [flat[i : i + width] for i in range(0, len(flat), width)]
