"""MobileSAM against the official implementation's outputs (../shared/conformance, seed 1234).

Encoder stages run from the reference input of each stage; one test runs the whole pipeline
at full size from the decoded photo. Decoder tests start from the reference embeddings.
"""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.inputs import Prompt
from sandseg.model import ImageInfo
from sandseg.ops import resize_longest_side
from tests.gpu_helpers import from_gpu, to_gpu
from tests.model.conftest import describe, mask_iou, rel_l2

PROMPTS = ["center_point", "two_points", "center_box"]
# (stage index, reference input key, reference output key); tokens (1, L, C) are (H, W, C).
STAGES = [
    (0, "input_tensor", "patch_embed"),
    (1, "patch_embed", "layers_0"),
    (2, "layers_0", "layers_1"),
    (3, "layers_1", "layers_2"),
    (4, "layers_2", "layers_3"),
    (5, "layers_3", "neck"),
]


def _channels_last(array: np.ndarray, side: int) -> np.ndarray:
    if array.ndim == 4:  # (1, C, H, W)
        return array[0].transpose(1, 2, 0)
    return array[0].reshape(side, side, -1)  # (1, L, C) tokens


def _stage_input(name: str, reference, stages) -> np.ndarray:
    data = reference["input_tensor"] if name == "input_tensor" else stages[name]
    side = {"input_tensor": 1024, "patch_embed": 256, "layers_0": 128}.get(name, 64)
    return _channels_last(data, side)


@pytest.mark.parametrize(("index", "src", "dst"), STAGES, ids=[s[2] for s in STAGES])
def test_encoder_stage_matches_reference(predictor, reference, stages, index, src, dst):
    model = predictor.model
    x = to_gpu(predictor.device, _stage_input(src, reference, stages))
    got = from_gpu(model.encode(x, index, index + 1))
    want = _stage_input(dst, reference, stages)
    assert got.shape == want.shape
    assert rel_l2(got, want) <= 1e-4, f"{dst}: {describe(got, want)}"


@pytest.mark.slow
def test_full_pipeline_from_decoded_photo(predictor, reference):
    """image_rgb -> PIL-exact resize -> normalise -> encoder -> embeddings -> masks."""
    predictor.set_image(reference["image_rgb"])
    got = predictor.get_image_embedding()
    want = reference["image_embeddings"]
    assert rel_l2(got, want) <= 1e-4, describe(got, want)
    assert np.abs(got - want).max() <= 1e-3, describe(got, want)
    for prompt in PROMPTS:
        masks, _, _ = _predict(predictor, reference, prompt, multimask=True)
        want_masks = reference[f"{prompt}__multi__masks"][0]
        for c in range(3):
            assert mask_iou(masks[c], want_masks[c]) >= 0.999, f"{prompt} mask {c}"


def _predict(predictor, reference, prompt, *, multimask, return_logits=False):
    coords = reference.get(f"{prompt}__point_coords")
    labels = reference.get(f"{prompt}__point_labels")
    box = reference.get(f"{prompt}__box")
    return predictor.predict(coords, labels, box, None, multimask, return_logits=return_logits)


@pytest.fixture(scope="module")
def reference_embedded(predictor, reference):
    h, w = reference["image_rgb"].shape[:2]
    hwc = np.ascontiguousarray(reference["image_embeddings"][0].transpose(1, 2, 0))
    predictor.set_image_embedding(hwc.tobytes(), (h, w))
    return predictor


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("tag", ["multi", "single"])
def test_decoder_matches_reference(reference_embedded, reference, prompt, tag):
    p = reference_embedded
    logits, iou, low_res = _predict(
        p, reference, prompt, multimask=tag == "multi", return_logits=True
    )
    key = f"{prompt}__{tag}__"
    want_low = reference[key + "low_res_masks"][0]
    assert np.abs(low_res - want_low).max() <= 1e-4, f"low-res: {describe(low_res, want_low)}"
    assert np.abs(iou - reference[key + "iou_predictions"][0]).max() <= 1e-4
    want_logits = reference[key + "mask_logits"][0]
    assert np.abs(logits - want_logits).max() <= 1e-4, f"logits: {describe(logits, want_logits)}"
    masks, _, _ = _predict(p, reference, prompt, multimask=tag == "multi")
    for c, want in enumerate(reference[key + "masks"][0]):
        assert mask_iou(masks[c], want) >= 0.999, f"{prompt} {tag} mask {c}"


@pytest.mark.parametrize("prompt", PROMPTS)
def test_sparse_embeddings_match_reference(predictor, reference, prompt):
    h, w = reference["image_rgb"].shape[:2]
    coords, labels = Prompt.of(
        reference.get(f"{prompt}__point_coords"),
        reference.get(f"{prompt}__point_labels"),
        reference.get(f"{prompt}__box"),
    ).tokens(ImageInfo((h, w), resize_longest_side(h, w, 1024)))
    got = from_gpu(predictor.model.prompt_encoder.sparse(coords, labels))
    want = reference[f"{prompt}__sparse_embeddings"][0]
    assert np.abs(got - want).max() <= 1e-4, describe(got, want)


def test_dense_positional_encoding_matches_reference(predictor, common):
    got = from_gpu(predictor.model.prompt_encoder.dense_pe()).reshape(64, 64, 256)
    want = common["dense_pe"][0].transpose(1, 2, 0)
    assert np.abs(got - want).max() <= 1e-4, describe(got, want)
