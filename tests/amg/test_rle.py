"""RLE (sandseg.amg.rle) against numpy masks and pycocotools, COCO's own implementation."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.amg import rle

from . import coco

SHAPES = [(1, 1), (5, 3), (37, 64), (770, 769)]


def _masks(rng: np.random.Generator, shape: tuple[int, int]) -> list[np.ndarray]:
    h, w = shape
    blob = np.zeros(shape, bool)
    blob[h // 4 : h // 2 + 1, w // 3 : w - 1] = True
    return [
        np.zeros(shape, bool),
        np.ones(shape, bool),
        rng.random(shape) < 0.5,  # many short runs: counts far apart, negative differences
        blob,
    ]


def _reference_counts(mask: np.ndarray) -> list[int]:
    """Runs over the column-major pixels, 0s first (COCO's uncompressed RLE)."""
    flat = mask.T.ravel().astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], edges, [flat.size]])
    counts = np.diff(bounds).tolist()
    return [0, *counts] if flat[0] else counts


@pytest.mark.parametrize("shape", SHAPES)
def test_encode_matches_column_major_runs_and_decodes_back(rng, shape):
    for mask in _masks(rng, shape):
        data = mask.astype(np.uint8).tobytes()
        encoded = rle.encode(data, *shape)
        assert encoded["size"] == list(shape)
        assert encoded["counts"] == _reference_counts(mask)
        assert rle.area(encoded) == int(mask.sum())
        assert rle.decode(encoded) == data


@pytest.mark.parametrize("shape", SHAPES)
def test_coco_string_is_what_pycocotools_writes_and_decodes(rng, shape):
    for mask in _masks(rng, shape):
        encoded = rle.encode(mask.astype(np.uint8).tobytes(), *shape)
        compressed = rle.to_coco(encoded)
        assert compressed["counts"] == coco.encode_counts(encoded)
        np.testing.assert_array_equal(coco.decode(compressed), mask)
        assert rle.from_coco(compressed) == encoded


def test_encode_in_frame_pads_the_crop_with_zeros(rng):
    crop = rng.random((6, 4)) < 0.5
    frame = np.zeros((10, 9), bool)
    frame[3:9, 2:6] = crop
    got = rle.encode_in_frame(crop.astype(np.uint8).tobytes(), 6, 4, (2, 3), (10, 9))
    assert got == rle.encode(frame.astype(np.uint8).tobytes(), 10, 9)


def test_malformed_inputs_are_refused():
    with pytest.raises(ValueError, match="mask has 5 bytes, expected 2 x 3"):
        rle.encode(bytes(5), 2, 3)
    with pytest.raises(ValueError, match="RLE counts cover 5 pixels, size 2 x 3 needs 6"):
        rle.decode({"size": [2, 3], "counts": [2, 3]})
    with pytest.raises(ValueError, match="ends inside a count"):
        rle.string_to_counts("0P")  # "P" (32 + 48) says more follows
