"""The wgpu runtime keeps one image's embeddings on the GPU across its clicks; a click on
another image must never decode against the previous image's embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.inputs import Prompt
from sandseg.model import ImageInfo
from sandseg.ops import resize_longest_side
from tests.conftest import require


def embedded(name: str) -> tuple[bytes, ImageInfo, dict[str, np.ndarray]]:
    with np.load(require(name)) as data:
        ref = {k: data[k] for k in data.files}
    h, w = ref["image_rgb"].shape[:2]
    hwc = np.ascontiguousarray(ref["image_embeddings"][0].transpose(1, 2, 0), np.float32)
    return hwc.tobytes(), ImageInfo((h, w), resize_longest_side(h, w, 1024)), ref


@pytest.mark.gpu
def test_clicks_alternating_between_two_images_use_each_ones_embeddings(wgpu_runtime):
    pictures = [embedded("picture1_seed1234.npz"), embedded("dogs_seed1234.npz")]
    prompts = ["center_point", "left_point"]
    for embeddings, info, ref in [*pictures, pictures[0]]:
        prompt = next(p for p in prompts if f"{p}__point_coords" in ref)
        got = wgpu_runtime.decode(
            embeddings,
            info,
            Prompt.of(ref[f"{prompt}__point_coords"], ref[f"{prompt}__point_labels"]),
        )
        want = ref[f"{prompt}__multi__iou_predictions"][0]
        np.testing.assert_allclose(got.iou, want, atol=1e-4)
