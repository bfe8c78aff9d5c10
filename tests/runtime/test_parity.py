"""RT-1: the onnxruntime runtime against the official outputs (../shared/conformance): every
encoder stage from the official tensor entering it, the whole encoder from the decoded photo
(host pre-processing), the decoder with host post-processing, on picture1 (769 x 770) and
the landscape dogs.jpg (1072 x 603); and every composition of a wgpu prefix with an
onnxruntime suffix.

Tolerances: embeddings relative L2 <= 1e-4 and max abs <= 1e-3 (conformance/README.md's
float32 figures); a single stage from the official input the same; masks IoU >= 0.999 with
the official masks; IoU predictions within 1e-3.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sandseg.export import STAGES
from sandseg.inputs import Prompt
from tests.model.conftest import describe, rel_l2

PICTURE1_PROMPTS = ["center_point", "two_points", "center_box"]
DOGS_PROMPTS = ["left_point", "point_pair", "wide_box"]


def _nothing(_stage: str) -> None:
    pass


def _prompt(reference: dict[str, np.ndarray], prompt: str, **extra: Any) -> Prompt:
    return Prompt.of(
        point_coords=reference.get(f"{prompt}__point_coords"),
        point_labels=reference.get(f"{prompt}__point_labels"),
        box=reference.get(f"{prompt}__box"),
        **extra,
    )


def masks_iou(got: np.ndarray, want: np.ndarray) -> list[float]:
    got, want = got.reshape(want.shape).astype(bool), want.astype(bool)
    inter = np.logical_and(got, want).reshape(len(want), -1).sum(1)
    union = np.logical_or(got, want).reshape(len(want), -1).sum(1)
    return [float(v) for v in inter / np.maximum(union, 1)]


def check_prediction(prediction, reference, prompt: str, tag: str) -> tuple[float, float]:
    """Masks and IoU predictions against the official ones; returns (min IoU, max IoU error)."""
    masks = np.frombuffer(prediction.masks, np.uint8).reshape(prediction.shape)
    want = reference[f"{prompt}__{tag}__masks"].reshape(masks.shape)
    ious = masks_iou(masks, want)
    assert min(ious) >= 0.999, f"{prompt} {tag}: IoU with the official masks {ious}"
    want_iou = reference[f"{prompt}__{tag}__iou_predictions"].ravel()
    iou_error = float(np.abs(np.asarray(prediction.iou) - want_iou).max())
    assert iou_error <= 1e-3, (prediction.iou, want_iou)
    return min(ious), iou_error


def encode(runtime, image: np.ndarray):
    x, info = runtime.preprocess(image)
    embeddings = runtime.run_stages(x, 0, len(STAGES), _nothing)
    return embeddings, info


def as_nchw(embeddings: bytes) -> np.ndarray:
    return np.frombuffer(embeddings, np.float32).reshape(64, 64, 256).transpose(2, 0, 1)[None]


@pytest.mark.requirement("RT-1")
@pytest.mark.parametrize("index", range(len(STAGES)))
def test_every_stage_matches_the_official_stage(ort_runtime, encoder_stages, index) -> None:
    name = STAGES[index]
    leaving = STAGES[index + 1] if index + 1 < len(STAGES) else "embeddings"
    x = np.ascontiguousarray(encoder_stages[name], np.float32)
    got = np.frombuffer(ort_runtime.run_stages(x.tobytes(), index, index + 1, _nothing), "f4")
    want = encoder_stages[leaving].reshape(-1)
    assert rel_l2(got, want) <= 1e-4, describe(got, want)
    assert np.abs(got - want).max() <= 1e-3, describe(got, want)


@pytest.fixture(scope="module")
def picture1_encoded(ort_runtime, reference):
    return encode(ort_runtime, reference["image_rgb"])


@pytest.fixture(scope="module")
def dogs_encoded(ort_runtime, dogs):
    return encode(ort_runtime, dogs["image_rgb"])


@pytest.mark.requirement("RT-1")
@pytest.mark.parametrize("photo", ["picture1", "dogs"])
def test_the_whole_model_gives_the_official_outputs(
    request, ort_runtime, reference, dogs, photo, evidence
) -> None:
    official = reference if photo == "picture1" else dogs
    embeddings, info = request.getfixturevalue(f"{photo}_encoded")
    assert info.original == official["image_rgb"].shape[:2]
    got, want = as_nchw(embeddings), official["image_embeddings"]
    assert rel_l2(got, want) <= 1e-4, describe(got, want)
    assert np.abs(got - want).max() <= 1e-3, describe(got, want)
    worst_iou, worst_error = 1.0, 0.0
    for prompt in PICTURE1_PROMPTS if photo == "picture1" else DOGS_PROMPTS:
        for tag in ("multi", "single"):
            prediction = ort_runtime.decode(
                embeddings, info, _prompt(official, prompt, multimask_output=tag == "multi")
            )
            iou, error = check_prediction(prediction, official, prompt, tag)
            worst_iou, worst_error = min(worst_iou, iou), max(worst_error, error)
    evidence(
        "RT-1",
        f"onnxruntime, {photo}: embeddings rel L2 {rel_l2(got, want):.1e}, masks IoU >= "
        f"{worst_iou:.5f}, IoU predictions within {worst_error:.1e}",
    )


@pytest.mark.requirement("RT-1")
def test_refining_with_a_mask_input_gives_the_official_mask(ort_runtime, dogs, dogs_encoded):
    embeddings, info = dogs_encoded
    mask_input = np.ascontiguousarray(dogs["left_point_refine__mask_input"], np.float32)
    prediction = ort_runtime.decode(
        embeddings,
        info,
        _prompt(
            dogs,
            "left_point_refine",
            mask_input=memoryview(mask_input).cast("B").cast("f"),
            multimask_output=False,
        ),
    )
    check_prediction(prediction, dogs, "left_point_refine", "single")
    low_res = np.frombuffer(prediction.low_res, np.float32)
    want = dogs["left_point_refine__single__low_res_masks"].ravel()
    assert np.abs(low_res - want).max() <= 1e-3, describe(low_res, want)


@pytest.fixture(scope="module")
def wgpu_boundaries(wgpu_runtime, reference) -> list[bytes]:
    """The wgpu runtime's boundary tensors of picture1: entering stage 0 .. leaving the last."""
    x, _ = wgpu_runtime.preprocess(reference["image_rgb"])
    boundaries = [x]
    for index in range(len(STAGES)):
        boundaries.append(wgpu_runtime.run_stages(boundaries[-1], index, index + 1, _nothing))
    return boundaries


@pytest.mark.requirement("RT-1")
@pytest.mark.parametrize("split", range(1, len(STAGES)))
def test_a_wgpu_prefix_and_an_onnxruntime_suffix_give_the_official_masks(
    ort_runtime, wgpu_boundaries, picture1_encoded, reference, split
) -> None:
    """wgpu runs stages [0, split), onnxruntime [split, end) and the decoder."""
    embeddings = ort_runtime.run_stages(wgpu_boundaries[split], split, len(STAGES), _nothing)
    got, want = as_nchw(embeddings), reference["image_embeddings"]
    assert rel_l2(got, want) <= 1e-4, describe(got, want)
    _, info = picture1_encoded
    for prompt in ("center_point", "center_box"):
        prediction = ort_runtime.decode(embeddings, info, _prompt(reference, prompt))
        check_prediction(prediction, reference, prompt, "multi")


@pytest.mark.requirement("RT-1")
def test_onnxruntime_embeddings_decode_on_wgpu(wgpu_runtime, picture1_encoded, reference):
    """And the other way: the onnxruntime encoder's embeddings on the wgpu decoder."""
    embeddings, info = picture1_encoded
    prediction = wgpu_runtime.decode(embeddings, info, _prompt(reference, "two_points"))
    check_prediction(prediction, reference, "two_points", "multi")
