"""Polygons traced from a mask: the boundaries of its pixels, simplified with Douglas-Peucker.

Coordinates are pixel corners (COCO's convention): pixel (x, y) is the square [x, x+1] x
[y, y+1], so an unsimplified polygon encloses exactly the mask's pixels. Foreground is
8-connected (as OpenCV's findContours and the mask generator's regions see it), so the
background inside an object (its holes) is 4-connected. On screen (y down) outer contours run
clockwise and holes counter-clockwise: the foreground is always on the right of the walk, so
both the even-odd and the nonzero fill rule fill exactly the foreground.

The boundary is walked on runs, not pixels: horizontal edges come from two rows XOR-ed as
integers, vertical edges from the ends of each row's runs.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from ..amg.regions import components, row_runs

Ring = list[tuple[int, int]]  # closed polygon, first vertex not repeated at the end
# Edge keys are corner * 4 + direction, directions on screen (y down) numbered 0 right,
# 1 down, 2 left, 3 up, so that (d + 3) % 4 turns left and (d + 1) % 4 turns right.


@dataclass(frozen=True)
class Region:
    """One 8-connected piece of foreground: its outer contour and the holes inside it."""

    outer: Ring
    holes: list[Ring]


def trace(mask: bytes, width: int, height: int) -> list[Region]:
    """Row-major (height, width) 0/1 mask bytes -> its regions, in raster order of their
    top-left pixel; holes in raster order of their top-left pixel."""
    runs = row_runs(mask, height, width, 1)
    labels, _ = components(runs)
    edges, starts = _boundary_edges(mask, width, height, runs)
    row_starts: dict[int, tuple[list[int], list[int]]] = {}
    for index, (y, x0, _) in enumerate(runs):
        xs, ids = row_starts.setdefault(y, ([], []))
        xs.append(x0)
        ids.append(index)

    def component(x: int, y: int) -> int:
        xs, ids = row_starts[y]
        return labels[ids[bisect_right(xs, x) - 1]]

    outers: dict[int, Ring] = {}
    holes: dict[int, list[Ring]] = {}
    pitch = width + 1
    for key in starts:
        if key not in edges:
            continue  # walked already, as part of an earlier loop
        ring = _walk(edges, key, pitch)
        point, direction = divmod(key, 4)
        y, x = divmod(point, pitch)
        # The foreground pixel beside the first edge: below a rightward edge, above-left of
        # the start of a leftward one.
        label = component(x, y) if direction == 0 else component(x - 1, y - 1)
        if _twice_area(ring) > 0:
            outers[label] = ring
        else:
            holes.setdefault(label, []).append(ring)
    return [Region(outers[c], holes.get(c, [])) for c in sorted(outers)]


def _boundary_edges(
    mask: bytes, width: int, height: int, runs: list[tuple[int, int, int]]
) -> tuple[dict[int, int], list[int]]:
    """Directed boundary edges with the foreground on their right: {start * 4 + direction:
    end} over corner points numbered y * (width + 1) + x, horizontal edges maximal, vertical
    ones a pixel long; and the horizontal edges' keys in raster order (where walks start)."""
    pitch = width + 1
    edges: dict[int, int] = {}
    starts: list[int] = []
    for y, x0, x1 in runs:
        edges[((y + 1) * pitch + x0) * 4 + 3] = y * pitch + x0  # left side, walking up
        edges[(y * pitch + x1) * 4 + 1] = (y + 1) * pitch + x1  # right side, walking down
    above = 0
    for y in range(height + 1):
        row = mask[y * width : (y + 1) * width] if y < height else b""
        below = int.from_bytes(row) if row else 0
        both = above & below
        base = y * pitch
        for x0, x1 in _one_runs(below ^ both, width):  # foreground starts below: a top side
            edges[(base + x0) * 4] = base + x1
            starts.append((base + x0) * 4)
        for x0, x1 in _one_runs(above ^ both, width):  # foreground ends above: a bottom side
            edges[(base + x1) * 4 + 2] = base + x0
            starts.append((base + x1) * 4 + 2)
        above = below
    starts.sort()
    return edges, starts


def _one_runs(bits: int, width: int) -> list[tuple[int, int]]:
    """[x0, x1) runs of 0x01 bytes in a row packed as a big-endian integer."""
    if not bits:
        return []
    row = bits.to_bytes(width)
    out = []
    x = row.find(1)
    while x >= 0:
        end = row.find(0, x)
        end = width if end < 0 else end
        out.append((x, end))
        x = row.find(1, end)
    return out


def _walk(edges: dict[int, int], first: int, pitch: int) -> Ring:
    """Follow edges from the edge `first` until it comes round again, consuming them; at a
    corner where two pieces touch diagonally, turn left (joining them: 8-connectivity).
    Returns the corners where the walk changes direction."""
    ring: Ring = []
    direction = first % 4
    point = edges[first]
    while True:
        # Left, straight on, right: only a diagonal touch offers two ways out.
        for turn in (3, 0, 1):
            key = point * 4 + (direction + turn) % 4
            if key in edges:
                break
        if key == first:
            break
        if key % 4 != direction:
            ring.append(_xy(point, pitch))
        direction = key % 4
        point = edges.pop(key)
    del edges[first]
    if first % 4 != direction:
        ring.append(_xy(point, pitch))
    return ring


def _xy(point: int, pitch: int) -> tuple[int, int]:
    y, x = divmod(point, pitch)
    return x, y


def _twice_area(ring: Ring) -> int:
    """Shoelace sum: positive for a clockwise ring on screen (y down), negative otherwise."""
    total = 0
    x0, y0 = ring[-1]
    for x1, y1 in ring:
        total += x0 * y1 - x1 * y0
        x0, y0 = x1, y1
    return total


def simplify(ring: Ring, tolerance: float) -> Ring:
    """Douglas-Peucker on a closed ring: the vertices (a subset, in order) that keep every
    dropped vertex within `tolerance` pixels of the simplified outline. A ring that would
    collapse below 3 vertices or lose its orientation stays as it was."""
    if tolerance <= 0 or len(ring) <= 3:
        return ring
    x0, y0 = ring[0]
    far = max(range(len(ring)), key=lambda i: (ring[i][0] - x0) ** 2 + (ring[i][1] - y0) ** 2)
    closed = [*ring, ring[0]]
    keep = [False] * len(closed)
    keep[0] = keep[far] = keep[-1] = True
    limit = tolerance * tolerance
    stack = [(0, far), (far, len(closed) - 1)]
    while stack:
        a, b = stack.pop()
        (ax, ay), (bx, by) = closed[a], closed[b]
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        worst, worst_at = -1.0, -1
        for i in range(a + 1, b):
            px, py = closed[i]
            if length2:
                cross = dx * (py - ay) - dy * (px - ax)
                d2 = cross * cross / length2
            else:
                d2 = (px - ax) ** 2 + (py - ay) ** 2
            if d2 > worst:
                worst, worst_at = d2, i
        if worst > limit:
            keep[worst_at] = True
            stack += [(a, worst_at), (worst_at, b)]
    out = [p for p, kept in zip(closed[:-1], keep, strict=False) if kept]
    same_side = (_twice_area(out) > 0) == (_twice_area(ring) > 0)
    return out if len(out) >= 3 and _twice_area(out) != 0 and same_side else ring


def keyhole(outer: Ring, holes: list[Ring]) -> Ring:
    """One ring for an outer contour and its holes: each hole spliced in by a bridge walked
    there and back, from the hole's first vertex to the nearest vertex of the outer contour.
    The bridge's two walks cancel under both fill rules, and the hole runs the other way
    round, so the one polygon encloses the outer contour minus the holes."""
    if not holes:
        return list(outer)
    nearest = _NearestVertex(outer)
    attached: dict[int, list[Ring]] = {}
    for hole in holes:
        attached.setdefault(nearest(hole[0]), []).append(hole)
    ring: Ring = []
    for i, point in enumerate(outer):
        ring.append(point)
        for hole in attached.get(i, ()):
            ring += [*hole, hole[0], point]
    return ring


class _NearestVertex:
    """The index of a ring's vertex nearest to a point: a sweep outwards from the point's
    row over the vertices sorted by y, stopping once rows are further away than the best
    vertex so far, or after WINDOW vertices each way (then it is a near vertex, not always
    the nearest: any bridge cancels, the nearest is only the tidiest)."""

    WINDOW = 64

    def __init__(self, ring: Ring) -> None:
        self.order = sorted(range(len(ring)), key=lambda i: ring[i][1])
        self.ys = [ring[i][1] for i in self.order]
        self.ring = ring

    def __call__(self, point: tuple[int, int]) -> int:
        px, py = point
        start = bisect_right(self.ys, py)
        best, best_d2 = self.order[max(start - 1, 0)], math.inf
        for step in (-1, 1):
            k = start - 1 if step < 0 else start
            for _ in range(self.WINDOW):
                if not 0 <= k < len(self.ys) or (self.ys[k] - py) ** 2 > best_d2:
                    break
                x, y = self.ring[self.order[k]]
                d2 = (x - px) ** 2 + (y - py) ** 2
                if d2 < best_d2:
                    best, best_d2 = self.order[k], d2
                k += step
        return best
