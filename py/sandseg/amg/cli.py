"""`sandseg everything`: the automatic mask generator on an image file, COCO-style JSON out.

Native edge (Pillow, numpy for the overlay). Output: {"image": {"file_name", "height",
"width"}, "annotations": [{"segmentation": {"size": [H, W], "counts": str}, "area", "bbox",
"predicted_iou", "point_coords", "stability_score", "crop_box"}, ...]} in the generator's
order; bbox and crop_box XYWH, point_coords [[x, y]], original pixels. Written atomically.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ..commands import Progress, Subparsers
from ..predictor import InputError, Predictor, check_image_size
from ..weights import WeightsError
from . import rle
from .document import coco_document, to_json
from .generator import AutomaticMaskGenerator
from .params import MAX_CROP_LAYERS, MAX_POINTS_PER_SIDE, GeneratorParams

# Generator options: (flag's name, type, help). Defaults are the generator's own.
OPTIONS: list[tuple[str, type, str]] = [
    ("points_per_side", int, f"grid points per side, at most {MAX_POINTS_PER_SIDE} (default 32)"),
    ("points_per_batch", int, "prompts decoded per batch (default 64)"),
    ("pred_iou_thresh", float, "keep masks whose predicted IoU is above this (default 0.88)"),
    ("stability_score_thresh", float, "keep masks at least this stable (default 0.95)"),
    ("stability_score_offset", float, "logit offset of the stability score (default 1.0)"),
    ("box_nms_thresh", float, "box IoU above which a crop's duplicates go (default 0.7)"),
    ("crop_n_layers", int, f"crop layers, at most {MAX_CROP_LAYERS} (default 0)"),
    ("crop_nms_thresh", float, "box IoU for duplicates across crops (default 0.7)"),
    ("crop_overlap_ratio", float, "overlap of the first layer's crops (default 512/1500)"),
    ("crop_n_points_downscale_factor", int, "points per side shrink per layer (default 1)"),
    ("min_mask_region_area", int, "fill holes and drop islands below this area (default 0)"),
]


def register(sub: Subparsers) -> None:
    """Add the `everything` parser; its handler is `run` (see sandseg.commands)."""
    parser = sub.add_parser(
        "everything", help="segment everything: the automatic mask generator, COCO JSON out"
    )
    parser.add_argument("--weights", required=True, help=".safetensors (or .pt) weights")
    parser.add_argument("--image", required=True, help="image file (JPEG, PNG, ...)")
    for name, kind, text in OPTIONS:
        metavar = "N" if kind is int else "F"
        parser.add_argument("--" + name.replace("_", "-"), type=kind, metavar=metavar, help=text)
    parser.add_argument("--out", required=True, help="output .json path")
    parser.add_argument("--overlay", metavar="PNG", help="also write every mask over the image")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    options = {n: getattr(args, n) for n, _, _ in OPTIONS if getattr(args, n) is not None}
    # Bad options are refused before the image is read or the weights are loaded (AM-1).
    GeneratorParams(**options)
    out = Path(args.out)
    for path in (out, Path(args.overlay) if args.overlay else None):
        if path is not None and not path.parent.is_dir():
            raise InputError(f"output folder {path.parent} does not exist")
    image = _read_image(args.image)
    height, width = image.shape[:2]
    check_image_size(width, height)

    start = time.perf_counter()
    progress(f"loading weights {args.weights}")
    try:
        predictor = Predictor.from_weights(args.weights)
    except WeightsError as exc:
        raise InputError(f"cannot use weights {args.weights}: {exc}") from None
    generator = AutomaticMaskGenerator(predictor, output_mode="coco_rle", **options)
    progress(f"segmenting {args.image} ({width}x{height}) on {predictor.device.adapter_name}")
    records = asyncio.run(
        generator.generate_async(
            image, lambda done, total: progress(f"batch {done}/{total} of prompts decoded")
        )
    )
    document = coco_document(records, Path(args.image).name, height, width)
    _write_atomically(out, to_json(document))
    if args.overlay:
        _save_overlay(Path(args.overlay), image, records)
        progress(f"wrote {args.overlay}")
    progress(f"wrote {out}: {len(records)} masks, {time.perf_counter() - start:.1f} s")
    return 0


def _read_image(path: str) -> Any:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            return np.asarray(opened.convert("RGB"))
    except FileNotFoundError:
        raise InputError(f"image {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read image {path}: {exc}") from None


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_overlay(path: Path, image: Any, records: list[dict[str, Any]]) -> None:
    """The image with each mask tinted in its own colour, the first (best) drawn last."""
    import numpy as np
    from PIL import Image

    h, w = image.shape[:2]
    tinted = image[..., :3].astype(np.float32)
    colours = np.random.default_rng(0).integers(40, 256, (max(len(records), 1), 3))
    for i in reversed(range(len(records))):
        mask_bytes = rle.decode(rle.from_coco(records[i]["segmentation"]))
        mask = np.frombuffer(mask_bytes, np.uint8).reshape(h, w).astype(bool)
        tinted[mask] = 0.5 * tinted[mask] + 0.5 * colours[i]
    _write_atomically_png(path, Image.fromarray(tinted.astype(np.uint8)))


def _write_atomically_png(path: Path, picture: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".png.tmp")
    os.close(fd)
    try:
        picture.save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
