"""Small-region removal (sandseg.amg.regions) against a flood-fill reference (8-connected,
as OpenCV's connectedComponentsWithStats with connectivity 8)."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.amg.regions import components, remove_small_regions, row_runs


def _label(mask: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Flood fill in raster order: labels 0.. for set pixels (-1 elsewhere), sizes."""
    labels = np.full(mask.shape, -1)
    sizes: list[int] = []
    h, w = mask.shape
    for start in zip(*np.nonzero(mask), strict=True):
        if labels[start] >= 0:
            continue
        labels[start] = len(sizes)
        stack, size = [start], 0
        while stack:
            y, x = stack.pop()
            size += 1
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and labels[ny, nx] < 0:
                        labels[ny, nx] = len(sizes)
                        stack.append((ny, nx))
        sizes.append(size)
    return labels, sizes


def _reference(mask: np.ndarray, area: int, mode: str) -> tuple[np.ndarray, bool]:
    holes = mode == "holes"
    labels, sizes = _label(mask != holes)
    small = [c for c, s in enumerate(sizes) if s < area]
    if not small:
        return mask, False
    if holes:
        return mask | np.isin(labels, small), True
    keep = [c for c in range(len(sizes)) if c not in small] or [int(np.argmax(sizes))]
    return np.isin(labels, keep), True


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (40, 33)])
@pytest.mark.parametrize("density", [0.3, 0.6])
def test_components_match_flood_fill(rng, shape, density):
    mask = rng.random(shape) < density
    runs = row_runs(mask.astype(np.uint8).tobytes(), *shape, 1)
    labels, sizes = components(runs)
    want_labels, want_sizes = _label(mask)
    assert sizes == want_sizes
    for (y, x0, x1), label in zip(runs, labels, strict=True):
        assert (want_labels[y, x0:x1] == label).all()


def test_diagonal_pixels_are_one_component_and_sizes_count_pixels():
    mask = np.eye(4, dtype=np.uint8)
    mask[0, 3] = 1
    assert components(row_runs(mask.tobytes(), 4, 4, 1)) == ([0, 1, 0, 0, 0], [4, 1])


@pytest.mark.parametrize("mode", ["holes", "islands"])
@pytest.mark.parametrize("area", [1, 3, 8, 1000])
def test_remove_small_regions_matches_reference(rng, mode, area):
    mask = rng.random((30, 41)) < 0.55
    got, changed = remove_small_regions(mask.astype(np.uint8).tobytes(), 30, 41, area, mode)
    want, want_changed = _reference(mask, area, mode)
    assert changed == want_changed
    np.testing.assert_array_equal(np.frombuffer(got, np.uint8).reshape(30, 41), want)


def test_all_islands_small_keeps_the_largest_first_in_raster_order():
    mask = np.zeros((5, 9), np.uint8)
    mask[0, 0:2] = 1  # two pixels, first
    mask[4, 5:7] = 1  # two pixels, later
    mask[2, 4] = 1
    got, changed = remove_small_regions(mask.tobytes(), 5, 9, 10, "islands")
    want = np.zeros_like(mask)
    want[0, 0:2] = 1
    assert changed and got == want.tobytes()
