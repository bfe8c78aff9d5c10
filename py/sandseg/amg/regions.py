"""Small-region removal (`min_mask_region_area`): connected components, 8-connected, on runs.

The official generator uses OpenCV's `connectedComponentsWithStats`; this is the same
labelling in pure Python, fast because it works on horizontal runs of pixels rather than on
pixels: runs in consecutive rows that touch (diagonals included) join one component.
Components are numbered in raster order of their first pixel, as OpenCV numbers them.
Masks are row-major (H, W) bytes of 0/1.
"""

from __future__ import annotations

Run = tuple[int, int, int]  # row, first column, one past the last column


def row_runs(mask: bytes, height: int, width: int, value: int) -> list[Run]:
    """Runs of `value` in each row, in raster order."""
    want, other = (b"\x01", b"\x00") if value else (b"\x00", b"\x01")
    out: list[Run] = []
    for y in range(height):
        row = mask[y * width : (y + 1) * width]
        x = row.find(want)
        while x >= 0:
            end = row.find(other, x)
            end = width if end < 0 else end
            out.append((y, x, end))
            x = row.find(want, end)
    return out


def components(runs: list[Run]) -> tuple[list[int], list[int]]:
    """-> (component of each run, pixel count of each component), components numbered in
    raster order of their first run."""
    parent = list(range(len(runs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    prev_start, prev_end = 0, 0  # runs of the previous row: [prev_start, prev_end)
    i = 0
    while i < len(runs):
        row = runs[i][0]
        j = i
        while j < len(runs) and runs[j][0] == row:
            j += 1
        if prev_end > prev_start and runs[prev_start][0] == row - 1:
            k = prev_start
            for r in range(i, j):
                _, x0, x1 = runs[r]
                # Skip previous-row runs that end before this one's diagonal neighbour.
                while k < prev_end and runs[k][2] < x0:
                    k += 1
                m = k
                while m < prev_end and runs[m][1] <= x1:
                    a, b = find(r), find(m)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
                    m += 1
        prev_start, prev_end = i, j
        i = j
    labels: list[int] = []
    numbering: dict[int, int] = {}
    sizes: list[int] = []
    for r, (_, x0, x1) in enumerate(runs):
        root = find(r)
        if root not in numbering:
            numbering[root] = len(sizes)
            sizes.append(0)
        label = numbering[root]
        labels.append(label)
        sizes[label] += x1 - x0
    return labels, sizes


def remove_small_regions(
    mask: bytes, height: int, width: int, area_thresh: float, mode: str
) -> tuple[bytes, bool]:
    """Fill holes ("holes") or drop islands ("islands") smaller than area_thresh pixels.
    Returns the mask and whether it changed. If every island is small, the largest stays."""
    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', got {mode!r}")
    holes = mode == "holes"
    runs = row_runs(mask, height, width, 0 if holes else 1)
    labels, sizes = components(runs)
    small = {c for c, size in enumerate(sizes) if size < area_thresh}
    if not small:
        return mask, False
    if holes:
        paint, value = small, 1
        out = bytearray(mask)
    else:
        keep = set(range(len(sizes))) - small
        if not keep:
            keep = {max(range(len(sizes)), key=lambda c: (sizes[c], -c))}
        paint, value = keep, 1
        out = bytearray(len(mask))
    fill = bytes([value]) * width
    for (y, x0, x1), label in zip(runs, labels, strict=True):
        if label in paint:
            out[y * width + x0 : y * width + x1] = fill[: x1 - x0]
    return bytes(out), True
