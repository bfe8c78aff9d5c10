"""The host's pre- and post-processing (runtime/host.py) against the official arrays: the
resize + normalise + pad gives the official encoder input exactly; the mask upscaling gives
the official full-size logits (bilinear to 1024, crop, bilinear to H x W)."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.model import ImageInfo
from sandseg.ops import resize_longest_side
from sandseg.runtime import host
from tests.model.conftest import describe


def test_preprocessing_gives_the_official_input_tensor(reference) -> None:
    x, info = host.preprocess(reference["image_rgb"])
    assert info == ImageInfo((770, 769), (1024, 1023))
    np.testing.assert_array_equal(x.transpose(2, 0, 1)[None], reference["input_tensor"])


@pytest.mark.parametrize("channels", [1, 4])
def test_gray_and_rgba_are_made_rgb_as_pil_does(reference, channels) -> None:
    rgb = reference["image_rgb"]
    if channels == 1:
        image, want_rgb = rgb[:, :, 0], np.repeat(rgb[:, :, :1], 3, axis=2)
    else:
        image, want_rgb = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)]), rgb
    got, _ = host.preprocess(image)
    want, _ = host.preprocess(want_rgb)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("prompt", ["center_point", "two_points", "center_box"])
def test_upscaling_gives_the_official_logits(reference, prompt) -> None:
    h, w = reference["image_rgb"].shape[:2]
    info = ImageInfo((h, w), resize_longest_side(h, w, 1024))
    for tag in ("multi", "single"):
        low_res = reference[f"{prompt}__{tag}__low_res_masks"][0]
        got = host.upscale(low_res, info)
        want = reference[f"{prompt}__{tag}__mask_logits"][0]
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-5, describe(got, want)


def test_a_bad_image_is_refused_in_words() -> None:
    from sandseg.predictor import InputError

    with pytest.raises(InputError, match="uint8"):
        host.preprocess(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(InputError, match="2 channels"):
        host.preprocess(np.zeros((4, 4, 2), np.uint8))
