"""Reference for positional_encoding (SAM's PositionEmbeddingRandom and point labels), float64."""

from __future__ import annotations

import numpy as np


def grid_coords(h: int, w: int) -> np.ndarray:
    """The pixel indices (x, y) of an h x w grid in row-major order, (h * w, 2)."""
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float64)


def positional_encoding(
    coords, gaussian, image_size=(1024, 1024), offset=0.5, labels=None, label_table=None
):
    """coords (N, 2) pixels (x, y), gaussian (2, F) -> (N, 2F) = [sin, cos](2 pi c @ gaussian)
    with c = 2 * (coords + offset) / (w, h) - 1; labels as SAM's _embed_points/_embed_boxes."""
    h, w = image_size
    c = 2.0 * ((np.asarray(coords, np.float64) + offset) / (w, h)) - 1.0
    proj = 2.0 * np.pi * (c @ np.asarray(gaussian, np.float64))
    out = np.concatenate([np.sin(proj), np.cos(proj)], axis=-1)
    if labels is not None:
        table = np.asarray(label_table, np.float64)
        for i, label in enumerate(labels):
            if label == -1:
                out[i] = table[0]
            else:
                out[i] += table[label + 1]
    return out
