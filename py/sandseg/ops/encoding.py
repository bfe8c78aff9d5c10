"""SAM's prompt-encoder positional encoding: `positional_encoding`."""

from __future__ import annotations

from ..gpu import Tensor
from ._common import MAX_GROUPS, OpError, ceil_div, check, check_f32, pack

WG = 64
SAM_IMAGE_SIZE = (1024, 1024)


def positional_encoding(
    coords: Tensor | None,
    gaussian: Tensor,
    *,
    grid: tuple[int, int] | None = None,
    image_size: tuple[int, int] | None = None,
    offset: float = 0.5,
    labels: Tensor | None = None,
    label_table: Tensor | None = None,
) -> Tensor:
    """Random-Fourier features of points, SAM's PositionEmbeddingRandom plus label embeddings.

    coords: (N, 2) f32 (x, y) in pixels of an image of image_size = (h, w) (default SAM's
    1024 x 1024), normalised as c = 2 * (coords + offset) / (w, h) - 1; or None for the dense
    grid of grid = (h, w) pixels (image_size defaults to grid), point n = (n % w, n // w).
    gaussian: (2, F) f32, positional_encoding_gaussian_matrix. Returns (N, 2F), (h * w, 2F) for
    the grid (i.e. (h, w, 2F) channels-last): [sin(2 pi c @ gaussian), cos(2 pi c @ gaussian)].
    labels: (N,) i32 with label_table (L, 2F) f32: label -1 replaces the encoding by
    label_table[0] (not_a_point_embed), label k adds label_table[k + 1] (point_embeddings[k]:
    0 negative, 1 positive, 2 and 3 box corners).
    """
    op = "positional_encoding"
    check_f32(op, coords=coords, gaussian=gaussian, label_table=label_table)
    check(
        gaussian.ndim == 2 and gaussian.shape[0] == 2 and gaussian.shape[1] >= 1,
        op,
        f"gaussian must be (2, F), got {gaussian.shape}",
    )
    feats = gaussian.shape[1]
    if coords is None:
        if grid is None or min(grid) < 1:
            raise OpError(f"{op}: without coords give a grid of at least 1 x 1, got {grid}")
        n, grid_w, grid_h = grid[0] * grid[1], grid[1], grid[0]
        image_size = grid if image_size is None else image_size
    else:
        check(grid is None, op, f"give coords {coords.shape} or a grid {grid}, not both")
        check(
            coords.ndim == 2 and coords.shape[1] == 2,
            op,
            f"coords must be (N, 2), got {coords.shape}",
        )
        n, grid_w, grid_h = coords.shape[0], coords.shape[0], 1
        image_size = SAM_IMAGE_SIZE if image_size is None else image_size
    check(min(image_size) > 0, op, f"image_size must be positive, got {image_size}")
    check(
        max(grid_w, grid_h) <= MAX_GROUPS,
        op,
        f"at most {MAX_GROUPS} points or grid rows and columns, got {n} points",
    )
    check((labels is None) == (label_table is None), op, "labels and label_table go together")
    rows = 0
    if labels is not None and label_table is not None:
        check(labels.dtype == "i32", op, f"labels must be i32, got {labels.dtype}")
        check(labels.shape == (n,), op, f"labels must be ({n},), got {labels.shape}")
        check(
            label_table.ndim == 2
            and label_table.shape[1] == 2 * feats
            and label_table.shape[0] >= 1,
            op,
            f"label_table must be (L, {2 * feats}), got {label_table.shape}",
        )
        rows = label_table.shape[0]
    out = gaussian.device.empty((n, 2 * feats))
    params = pack("IIIIfffI", feats, grid_w, rows, 0, offset, image_size[1], image_size[0], 0)
    constants = {"WG": WG, "HAS_COORDS": coords is not None, "HAS_LABELS": labels is not None}
    grid_dims = (ceil_div(feats, WG), grid_w, grid_h)
    gaussian.device.dispatch(
        op, [coords, gaussian, labels, label_table], [out], params, grid_dims, constants
    )
    return out
