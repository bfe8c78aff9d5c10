"""The batched decoder (sandseg.model.batched) against the one-prompt decoder and the official
outputs, on the conformance embeddings of picture1 (seed 1234): real MobileSAM shapes."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.gpu.device import MAX_STORAGE_BINDING
from sandseg.inputs import Prompt
from sandseg.model import batched
from tests.gpu_helpers import from_gpu
from tests.model.conftest import describe

# Measured on lavapipe: the batched logits equal the one-prompt ones bit for bit (max
# difference 0.0 on logits of about +-0.5). The tolerance leaves room for a matmul variant
# that sums in another order at the batch's row count; masks may then differ only at pixels
# whose logit lies within it of the threshold.
ATOL = 1e-6


@pytest.fixture(scope="module")
def embedded(predictor, reference):
    h, w = reference["image_rgb"].shape[:2]
    hwc = np.ascontiguousarray(reference["image_embeddings"][0].transpose(1, 2, 0))
    predictor.set_image_embedding(hwc.tobytes(), (h, w))
    state = predictor.image_state()
    return predictor, state, predictor.model.share_image(state.embeddings)


def _points(reference, count):
    """The conformance center point, then grid-like points across the image (x, y)."""
    h, w = reference["image_rgb"].shape[:2]
    center = tuple(float(v) for v in reference["center_point__point_coords"][0])
    others = [((i + 0.5) * w / count, (count - i - 0.5) * h / count) for i in range(count - 1)]
    return [center, *others]


def _masks(predictor, state, low_res):
    """Full-size masks (C, H, W) bool from low-res logits (C, 256, 256) on the GPU."""
    logits = from_gpu(predictor.model.postprocess(low_res, state.info))
    return logits > 0, logits


# Tests that read results take `device`: guard mode, so a write past any output shows (GP-3).


def test_batched_decoder_gives_the_one_prompt_results(device, embedded, reference, monkeypatch):
    predictor, state, shared = embedded
    # Five prompts in batches of two: two full batches and a last one of a single prompt.
    monkeypatch.setattr(batched, "MAX_BATCH", 2)
    points = _points(reference, 5)
    prompts = [Prompt.of([p], [1]).tokens(state.info) for p in points]
    low_res, iou = predictor.model.decode_batch(shared, prompts)
    assert low_res.shape == (15, 256, 256) and iou.shape == (15,)
    got_low, got_iou = from_gpu(low_res), from_gpu(iou)
    got_masks, _ = _masks(predictor, state, low_res)
    for k, point in enumerate(points):
        logits, want_iou, want_low = predictor.record_prediction([point], [1])
        planes = slice(3 * k, 3 * k + 3)
        low = got_low[planes]
        assert np.abs(low - from_gpu(want_low)).max() <= ATOL, describe(low, from_gpu(want_low))
        assert np.abs(got_iou[planes] - from_gpu(want_iou).ravel()).max() <= ATOL
        want = from_gpu(logits)
        near = np.abs(want) <= ATOL
        assert np.array_equal(got_masks[planes] | near, (want > 0) | near), f"prompt {k}"


def test_batched_decoder_matches_the_official_outputs(device, embedded, reference):
    predictor, state, shared = embedded
    point = tuple(float(v) for v in reference["center_point__point_coords"][0])
    # The prompt among others, not first: its row of the batch must not depend on its place.
    points = [*_points(reference, 3)[1:], point]
    prompts = [Prompt.of([p], [1]).tokens(state.info) for p in points]
    low_res, iou = predictor.model.decode_batch(shared, prompts)
    got_low, got_iou = from_gpu(low_res)[6:9], from_gpu(iou)[6:9]
    want_low = reference["center_point__multi__low_res_masks"][0]
    assert np.abs(got_low - want_low).max() <= 1e-4, describe(got_low, want_low)
    assert np.abs(got_iou - reference["center_point__multi__iou_predictions"][0]).max() <= 1e-4
    single_low, single_iou = predictor.model.decode_batch(shared, prompts[2:], multimask=False)
    assert single_low.shape == (1, 256, 256) and single_iou.shape == (1,)
    want_single = reference["center_point__single__low_res_masks"][0]
    assert np.abs(from_gpu(single_low) - want_single).max() <= 1e-4


@pytest.mark.requirement("GP-4")
def test_batched_decoder_keeps_every_buffer_within_one_binding(
    device, embedded, monkeypatch, evidence
):
    predictor, state, shared = embedded
    # The largest tensor a batch of two allocates: each per-prompt buffer grows with the
    # batch, so at MAX_BATCH prompts it must still fit one storage binding.
    sizes = []
    empty = device.empty

    def recording_empty(shape, dtype="f32"):
        t = empty(shape, dtype)
        sizes.append(t.nbytes)
        return t

    limit = batched.MAX_BATCH
    prompts = [Prompt.of([p], [1]).tokens(state.info) for p in [(10.0, 20.0), (30.0, 40.0)]]
    with monkeypatch.context() as m:
        m.setattr(batched, "MAX_BATCH", 2)
        m.setattr(device, "empty", recording_empty)
        low_res, _ = predictor.model.decode_batch(shared, prompts)
    from_gpu(low_res)
    per_prompt = max(sizes) // 2
    assert per_prompt == 256 * 256 * 32 * 4  # the upscaled map
    assert limit * per_prompt <= MAX_STORAGE_BINDING < (limit + 1) * per_prompt
    evidence(
        "GP-4",
        f"batched decoder: {limit} prompts a batch x {per_prompt} bytes, the largest buffer "
        f"per prompt, fit the {MAX_STORAGE_BINDING}-byte storage binding",
    )


def test_decode_batch_refuses_prompts_of_different_lengths(embedded):
    predictor, state, shared = embedded
    one = Prompt.of([(10.0, 10.0)], [1]).tokens(state.info)
    two = Prompt.of([(10.0, 10.0), (20.0, 20.0)], [1, 0]).tokens(state.info)
    with pytest.raises(ValueError, match="decode_batch: every prompt must have as many tokens"):
        predictor.model.decode_batch(shared, [one, two])
