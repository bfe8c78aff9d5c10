"""preprocess (shaders/preprocess.wgsl) against reference.preprocess and the official image
encoder input in the conformance vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops.image import preprocess
from tests.gpu_helpers import assert_close, from_gpu, to_gpu
from tests.reference import image as ref

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
# |values| <= 2.7: f32 subtraction and division are within an ulp (2.4e-7) of float64.
ATOL = 1e-6


def test_preprocess_reproduces_the_official_encoder_input(device):
    data = np.load(CONFORMANCE / "picture1_seed1234.npz")
    resized = data["resized_rgb"]  # (1024, 1023, 3)
    got = from_gpu(preprocess(to_gpu(device, resized, "u32")))
    expected = data["input_tensor"][0].transpose(1, 2, 0)  # NCHW -> HWC
    assert_close(got, expected, atol=ATOL)
    assert np.all(got[:, 1023] == 0), "the padding column must be exactly zero"


@pytest.mark.parametrize(
    ("shape", "size"),
    [
        ((683, 1024, 3), 1024),  # a landscape photo: bottom padding
        ((1, 1, 3), 16),
        ((5, 3, 3), 8),
        ((8, 8, 3), 8),  # no padding
        ((33, 70, 3), 70),
    ],
)
def test_preprocess_pads_and_normalises(device, rng, shape, size):
    image = rng.integers(0, 256, shape).astype(np.uint32)
    got = preprocess(to_gpu(device, image, "u32"), size=size)
    assert got.shape == (size, size, 3)
    assert_close(from_gpu(got), ref.preprocess(image, size), atol=ATOL)


def test_preprocess_takes_other_statistics(device, rng):
    image = rng.integers(0, 256, (4, 6, 3)).astype(np.uint32)
    mean, std = (0.5, 1.5, 2.5), (2.0, 4.0, 0.5)
    got = preprocess(to_gpu(device, image, "u32"), size=6, mean=mean, std=std)
    assert_close(from_gpu(got), ref.preprocess(image, 6, mean, std), atol=ATOL)


@pytest.mark.parametrize(
    ("shape", "dtype", "kw", "fragment"),
    [
        ((1025, 10, 3), "u32", {}, r"resized \(1025, 10, 3\) does not fit in 1024x1024"),
        ((10, 10, 4), "u32", {}, r"must be \(h, w, 3\), got \(10, 10, 4\)"),
        ((10, 10, 3), "f32", {}, "resized must be u32"),
        ((10, 10, 3), "u32", {"std": (1.0, 0.0, 1.0)}, "std must be non-zero"),
    ],
)
def test_preprocess_rejects_bad_inputs(device, shape, dtype, kw, fragment):
    with pytest.raises(OpError, match=fragment) as info:
        preprocess(device.empty(shape, dtype), **kw)
    assert str(info.value).startswith("preprocess:")
