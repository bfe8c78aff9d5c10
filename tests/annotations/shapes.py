"""Masks to annotate: shapes with holes, islands in holes, diagonal touches, thin parts."""

from __future__ import annotations

import numpy as np

H, W = 240, 320


def disk(cy: float, cx: float, r: float, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2 < r * r


def ellipse(cy: float, cx: float, a: float, b: float, angle: float) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    y, x = yy + 0.5 - cy, xx + 0.5 - cx
    c, s = np.cos(angle), np.sin(angle)
    return ((c * x + s * y) / a) ** 2 + ((-s * x + c * y) / b) ** 2 < 1


def shapes() -> dict[str, np.ndarray]:
    """Named (H, W) bool masks."""
    donut = disk(120, 160, 100) & ~disk(120, 160, 45)
    holes = disk(120, 160, 110) & ~disk(80, 120, 30) & ~disk(150, 210, 25)
    island = holes | disk(80, 120, 12)  # foreground inside a hole
    frame = np.zeros((H, W), bool)
    frame[20:220, 30:290] = True
    frame[60:180, 70:250] = False
    frame[100:140, 130:190] = True
    return {
        "donut": donut,
        "two holes": holes,
        "island in a hole": island,
        "rotated ellipse": ellipse(120, 160, 140, 60, 0.6),
        "frame with a block": frame,
        "two disks": disk(60, 80, 40) | disk(170, 230, 55),
    }


def awkward(rng: np.random.Generator) -> list[np.ndarray]:
    """Small masks where the walk's choices matter: noise of every density, diagonal
    touches, one pixel, one row, one column, all set."""
    sizes = rng.integers(1, 24, (150, 2))
    masks = [rng.random((int(h), int(w))) < rng.random() for h, w in sizes]
    checker = (np.indices((9, 11)).sum(axis=0) % 2).astype(bool)
    one = np.zeros((5, 5), bool)
    one[2, 2] = True
    return [
        *masks,
        checker,
        one,
        np.ones((1, 7), bool),
        np.ones((6, 1), bool),
        np.ones((4, 4), bool),
    ]
