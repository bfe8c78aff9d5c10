"""`sandseg segment`: the native command line around Predictor (Pillow and numpy at the edge)."""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..annotations import SEGMENTATIONS, coco_document
from ..predictor import InputError, Predictor, check_prompts
from ..weights.files import atomic_writer
from . import Progress, Subparsers


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("segment", help="segment an image from point and box prompts")
    parser.add_argument("--weights", required=True, help=".safetensors (or .pt) weights")
    parser.add_argument("--image", required=True, help="image file (JPEG, PNG, ...)")
    parser.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y,LABEL",
        help="a point in image pixels; LABEL 1 foreground, 0 background",
    )
    parser.add_argument("--box", metavar="X0,Y0,X1,Y1", help="a box in image pixels")
    parser.add_argument(
        "--mask-input",
        metavar="LOWRES.npy",
        help="previous low-res logits (1x256x256 or 256x256 float32) to refine",
    )
    parser.add_argument("--multimask", action="store_true", help="return 3 masks instead of 1")
    parser.add_argument("--out", help="output .npz path (--out, --coco or both)")
    parser.add_argument(
        "--coco",
        metavar="OUT.json",
        help="also (or instead) write the masks as a COCO document, one annotation per mask "
        "(as the page exports its objects)",
    )
    parser.add_argument(
        "--coco-segmentation",
        choices=SEGMENTATIONS,
        default="rle",
        help="COCO segmentation: compressed RLE, exact (default), or polygons",
    )
    parser.add_argument(
        "--polygon-tolerance",
        type=float,
        default=1.0,
        metavar="PIXELS",
        help="Douglas-Peucker tolerance of the COCO polygons (default 1.0)",
    )
    parser.add_argument("--overlay", metavar="PNG", help="also write the best mask over the image")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    image = _read_image(args.image)
    points = [_numbers(p, 3, "--point X,Y,LABEL") for p in args.point]
    box = _numbers(args.box, 4, "--box X0,Y0,X1,Y1") if args.box else None
    mask_input = _read_mask_input(args.mask_input) if args.mask_input else None
    if not (args.out or args.coco):
        raise InputError("nothing to write: give --out OUT.npz, --coco OUT.json or both")
    for path in (Path(p) for p in (args.out, args.coco) if p):
        if not path.parent.is_dir():
            raise InputError(f"output folder {path.parent} does not exist")
    if not (math.isfinite(args.polygon_tolerance) and args.polygon_tolerance >= 0):
        raise InputError(f"--polygon-tolerance must be >= 0 pixels, got {args.polygon_tolerance}")

    coords = np.array([p[:2] for p in points], np.float64) if points else None
    labels = np.array([p[2] for p in points]) if points else None
    check_prompts(image.shape[:2], coords, labels, box)

    start = time.perf_counter()
    progress(f"loading weights {args.weights}")
    predictor = Predictor.from_weights(args.weights)
    progress(
        f"encoding {args.image} ({image.shape[1]}x{image.shape[0]}) "
        f"on {predictor.device.adapter_name}"
    )
    predictor.set_image(image)
    progress("decoding prompts")
    logits, iou, low_res = predictor.predict(
        coords, labels, box, mask_input, args.multimask, return_logits=True
    )
    written = _write_outputs(args, image, logits, iou, low_res)
    if args.overlay:
        _save_overlay(Path(args.overlay), image, logits[int(np.argmax(iou))] > 0.0, points, box)
        progress(f"wrote {args.overlay}")
    progress(
        f"wrote {' and '.join(written)}: {logits.shape[0]} mask(s), "
        f"IoU {[round(float(v), 3) for v in iou]}, {time.perf_counter() - start:.1f} s"
    )
    return 0


def _write_outputs(
    args: argparse.Namespace,
    image: np.ndarray,
    logits: np.ndarray,
    iou: np.ndarray,
    low_res: np.ndarray,
) -> list[str]:
    """OUT.npz and/or OUT.json, each replaced whole or not at all; returns the paths."""
    masks = logits > 0.0
    written = []
    if args.out:
        _save_npz_atomically(
            Path(args.out),
            masks=masks,
            iou_predictions=iou,
            low_res_masks=low_res,
            mask_logits=logits,
        )
        written.append(args.out)
    if args.coco:
        document = coco_document(
            file_name=Path(args.image).name,
            width=image.shape[1],
            height=image.shape[0],
            objects=coco_objects(masks, iou),
            segmentation=args.coco_segmentation,
            tolerance=args.polygon_tolerance,
        )
        with atomic_writer(args.coco) as f:
            f.write(json.dumps(document).encode())
        written.append(args.coco)
    return written


def coco_objects(masks: np.ndarray, iou: np.ndarray) -> list[dict[str, Any]]:
    """The C masks of one prompt as sandseg.annotations objects: "object 1", or with
    --multimask "object 1 (mask k of 3)" in the order of the .npz's masks."""
    count = len(masks)
    return [
        {
            "name": "object 1" if count == 1 else f"object 1 (mask {k + 1} of {count})",
            "mask": mask.astype(np.uint8).tobytes(),
            "iou": float(score),
        }
        for k, (mask, score) in enumerate(zip(masks, iou, strict=True))
    ]


def _read_image(path: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            opened.load()
            img = opened if opened.mode in ("RGB", "RGBA", "L") else opened.convert("RGB")
            return np.asarray(img)
    except FileNotFoundError:
        raise InputError(f"image {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read image {path}: {exc}") from None


def _numbers(text: str, count: int, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise InputError(f"{what} expects {count} comma-separated numbers, got {text!r}")
    return values


def _read_mask_input(path: str) -> np.ndarray:
    try:
        mask = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read --mask-input {path}: {exc}") from None
    if mask.shape not in ((256, 256), (1, 256, 256)):
        raise InputError(
            f"--mask-input must be 256x256 (or 1x256x256) low-res logits; got {mask.shape}"
        )
    return np.ascontiguousarray(mask.reshape(1, 256, 256), dtype=np.float32)


def _save_overlay(
    path: Path,
    image: np.ndarray,
    mask: np.ndarray,
    points: list[list[float]],
    box: list[float] | None,
) -> None:
    """The image with the mask tinted blue, points green (foreground) / red, the box yellow."""
    from PIL import Image, ImageDraw

    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
    tinted = rgb.astype(np.float32)
    tinted[mask] = 0.45 * tinted[mask] + 0.55 * np.array([30, 144, 255], np.float32)
    picture = Image.fromarray(tinted.astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for x, y, label in points:
        colour = (0, 220, 0) if label == 1 else (230, 0, 0)
        draw.ellipse((x - 6, y - 6, x + 6, y + 6), fill=colour, outline=(255, 255, 255))
    if box is not None:
        draw.rectangle(tuple(box), outline=(255, 215, 0), width=3)
    picture.save(path)


def _save_npz_atomically(path: Path, **arrays: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, allow_pickle=False, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
