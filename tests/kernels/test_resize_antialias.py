"""resize_antialias (shaders/resize_antialias.wgsl) against PIL itself, bit for bit, and the
official preprocessing's resized image in the conformance vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops.image import resize_antialias, resize_longest_side
from tests.gpu_helpers import from_gpu, to_gpu
from tests.reference import image as ref

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"


def _resize(device, image: np.ndarray, new_h: int, new_w: int) -> np.ndarray:
    h, w = image.shape[:2]
    channels = image.shape[2] if image.ndim == 3 else 1
    words = to_gpu(device, ref.pack_bytes(image), "u32")
    got = from_gpu(resize_antialias(words, h, w, channels, new_h, new_w))
    assert got.shape == (new_h, new_w, 3)
    return got


def _assert_same_bytes(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape
    differ = np.argwhere(got != expected)
    assert len(differ) == 0, (
        f"{len(differ)} of {got.size} values differ; first at {tuple(differ[0])}: "
        f"got {got[tuple(differ[0])]}, want {expected[tuple(differ[0])]}"
    )


def test_resize_antialias_reproduces_sam_preprocessing_of_picture1(device):
    data = np.load(CONFORMANCE / "picture1_seed1234.npz")
    image = data["image_rgb"]  # (770, 769, 3)
    new_h, new_w = resize_longest_side(*image.shape[:2])
    assert (new_h, new_w) == (1024, 1023)
    _assert_same_bytes(_resize(device, image, new_h, new_w), data["resized_rgb"])


@pytest.mark.parametrize(
    ("shape", "new_size"),
    [
        ((1500, 1000, 3), None),  # downscale to 1024 x 683: antialiased, 3 taps and more
        ((200, 300, 3), None),  # upscale to 683 x 1024
        ((77, 51), None),  # gray, replicated to RGB
        ((40, 64, 4), None),  # RGBA, alpha dropped
        ((13, 7, 3), (5, 3)),  # odd sizes, strong downscale
        ((9, 31, 3), (20, 4)),  # up in y, down in x
        ((12, 50, 3), (4, 66)),  # down in y, up in x: Pillow 13 resamples vertically first
        ((1500, 400, 3), None),  # a tall photo to 1024 x 273: vertical first too
        ((36, 4), (16, 2)),  # both down, y by more than twice as many pixels: vertical first
        ((10, 17, 3), (10, 33)),  # only the width changes: one pass
        ((17, 10, 1), (5, 10)),  # only the height changes: one pass, from packed bytes
        ((6, 5, 3), (6, 5)),  # no change: one pass as a copy
        ((1, 1, 3), (1024, 1024)),
        ((1, 1, 4), (1, 1)),
    ],
)
def test_resize_antialias_matches_pil(device, rng, shape, new_size):
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    new_h, new_w = new_size or resize_longest_side(*shape[:2])
    _assert_same_bytes(
        _resize(device, image, new_h, new_w), ref.resize_antialias(image, new_h, new_w)
    )


def test_resize_antialias_matches_pil_at_random_sizes(device, rng):
    for _ in range(12):
        h, w, new_h, new_w = (int(v) for v in rng.integers(1, 70, 4))
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        expected = ref.resize_antialias(image, new_h, new_w)
        _assert_same_bytes(_resize(device, image, new_h, new_w), expected)


def test_resize_antialias_matches_pil_on_extremes(device):
    # Black and white stripes push the sums to the ends of clip8's range.
    image = np.zeros((37, 53, 3), dtype=np.uint8)
    image[::2] = 255
    image[:, ::3, 1] = 255
    for new_h, new_w in [(11, 19), (100, 141)]:
        _assert_same_bytes(
            _resize(device, image, new_h, new_w), ref.resize_antialias(image, new_h, new_w)
        )


@pytest.mark.parametrize(
    ("size", "new_size", "dispatches"),
    [
        ((20, 30), (40, 60), 2),
        ((20, 30), (20, 60), 1),
        ((20, 30), (40, 30), 1),
        ((20, 30), (20, 30), 1),
    ],
)
def test_resize_antialias_skips_passes_like_pil(device, size, new_size, dispatches):
    words = device.empty((size[0] * size[1],), "u32")
    before = device.dispatch_count
    resize_antialias(words, *size, 4, *new_size)
    assert device.dispatch_count - before == dispatches


def test_resize_longest_side_follows_sam():
    assert resize_longest_side(770, 769) == (1024, 1023)
    assert resize_longest_side(200, 300) == (683, 1024)
    assert resize_longest_side(1, 1) == (1024, 1024)
    assert resize_longest_side(4000, 3, target=64) == (64, 0)


@pytest.mark.parametrize(
    ("words", "args", "fragment"),
    [
        ((100,), (10, 10, 3, 20, 20), r"image_words must be \(75,\) for a 10x10x3 image"),
        ((75,), (10, 10, 2, 20, 20), "channels must be 1, 3 or 4"),
        ((75,), (10, 10, 3, 0, 20), "sizes must be positive"),
    ],
)
def test_resize_antialias_rejects_bad_inputs(device, words, args, fragment):
    with pytest.raises(OpError, match=fragment) as info:
        resize_antialias(device.empty(words, "u32"), *args)
    assert str(info.value).startswith("resize_antialias:")


def test_resize_antialias_rejects_f32_input(device):
    with pytest.raises(OpError, match="resize_antialias: image_words must be u32"):
        resize_antialias(device.empty((75,)), 10, 10, 3, 20, 20)
