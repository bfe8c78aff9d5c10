"""Run-length encoding of binary masks, in COCO's conventions (pure Python).

An uncompressed RLE is `{"size": [H, W], "counts": [n0, n1, ...]}`: runs of alternating 0s
and 1s over the mask in column-major (Fortran) order, starting with a (possibly empty) run of
0s. COCO's compressed form writes the same counts as a string (`counts_to_string`), as
pycocotools' `rleToString` does. Masks here are bytes of 0/1, one byte a pixel.
"""

from __future__ import annotations

from typing import Any

RLE = dict[str, Any]


def runs(data: bytes) -> list[int]:
    """Lengths of the alternating runs of b"\\x00" and b"\\x01" in data, 0s first."""
    counts: list[int] = []
    pos, value, n = 0, 0, len(data)
    needles = (b"\x01", b"\x00")
    while pos < n:
        nxt = data.find(needles[value], pos)
        if nxt < 0:
            nxt = n
        counts.append(nxt - pos)
        pos, value = nxt, value ^ 1
    return counts


def row_major(mask: bytes, height: int, width: int) -> bytes:
    """Column-major mask bytes of an (H, W) mask -> row-major."""
    return b"".join(mask[y::height] for y in range(height))


def encode(mask: bytes, height: int, width: int) -> RLE:
    """Row-major (H, W) 0/1 mask bytes -> uncompressed RLE."""
    return encode_in_frame(mask, height, width, (0, 0), (height, width))


def encode_in_frame(
    mask: bytes, height: int, width: int, origin: tuple[int, int], frame: tuple[int, int]
) -> RLE:
    """Row-major (height, width) mask bytes of a crop whose top-left pixel is at origin
    (x0, y0) of a frame (H, W) -> uncompressed RLE of the frame-sized mask, 0 outside."""
    (x0, y0), (frame_h, frame_w) = origin, frame
    if len(mask) != height * width:
        raise ValueError(f"mask has {len(mask)} bytes, expected {height} x {width}")
    above, below = bytes(y0), bytes(frame_h - y0 - height)
    parts = [bytes(x0 * frame_h)]
    for x in range(width):
        parts += [above, mask[x::width], below]
    parts.append(bytes((frame_w - x0 - width) * frame_h))
    return {"size": [frame_h, frame_w], "counts": runs(b"".join(parts))}


def decode_column_major(rle: RLE) -> bytes:
    """Uncompressed RLE -> the mask's 0/1 bytes in column-major order."""
    h, w = rle["size"]
    parts = [(b"\x00", b"\x01")[i & 1] * n for i, n in enumerate(rle["counts"])]
    data = b"".join(parts)
    if len(data) != h * w:
        raise ValueError(f"RLE counts cover {len(data)} pixels, size {h} x {w} needs {h * w}")
    return data


def decode(rle: RLE) -> bytes:
    """Uncompressed RLE -> row-major (H, W) 0/1 mask bytes."""
    h, w = rle["size"]
    return row_major(decode_column_major(rle), h, w)


def area(rle: RLE) -> int:
    """Pixels set: the sum of the 1-runs."""
    return sum(rle["counts"][1::2])


def counts_to_string(counts: list[int]) -> str:
    """COCO's compressed counts: each count (minus the count two before it, from the third
    on) as a little-endian base-32 varint of 5-bit groups, sign-terminated, plus 48."""
    out = []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def string_to_counts(text: str) -> list[int]:
    """Inverse of counts_to_string."""
    counts: list[int] = []
    p, n = 0, len(text)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n:
                raise ValueError("COCO RLE string ends inside a count")
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def to_coco(rle: RLE) -> RLE:
    """Uncompressed RLE -> `{"size": [H, W], "counts": str}` (what pycocotools'
    frPyObjects gives, with counts as text so that it serialises as JSON)."""
    return {"size": list(rle["size"]), "counts": counts_to_string(rle["counts"])}


def from_coco(rle: RLE) -> RLE:
    return {"size": list(rle["size"]), "counts": string_to_counts(rle["counts"])}
