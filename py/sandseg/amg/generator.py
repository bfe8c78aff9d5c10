"""SAM's automatic mask generator ("segment everything") on the GPU, in the core.

The algorithm and its order of operations are segment-anything's `SamAutomaticMaskGenerator`:
for each crop (the whole image, then the crop layers' boxes) encode the crop once, prompt the
decoder with each grid point (three masks each; a batch of points is decoded as one batch,
see sandseg.model.batched), filter by predicted IoU, then by stability
score, drop masks whose box touches an inner crop edge, de-duplicate within the crop (box NMS
by predicted IoU), then across crops (box NMS preferring smaller crops), then optionally
remove small regions. Per-pixel work stays on the GPU: each mask's stability counts, area and
box come back as 8 words (`ops.mask_stats`), and only the masks that pass every filter are
thresholded and read back, then run-length encoded on the host.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .. import ops
from ..gpu import Tensor
from ..gpu.device import MAX_STORAGE_BINDING
from ..inputs import image_bytes
from ..model import ImageInfo, batched
from ..model.batched import SharedImage
from ..predictor import LOW_RES, Predictor, _unpack_masks, check_image_size
from ..weights.layout import IMG_SIZE as INPUT_SIZE
from . import rle
from .grids import Box, Point, generate_crop_boxes, xyxy_to_xywh
from .nms import f32, nms
from .params import GeneratorParams
from .regions import remove_small_regions, row_runs

MASK_THRESHOLD = 0.0
MULTIMASK = 3
# Crop-edge filtering: a box within this many pixels of an inner crop edge is dropped.
EDGE_TOLERANCE = 20.0
# A batch's low-res logits (3 planes of 256 x 256 float32 per prompt) must fit one storage
# binding; larger points_per_batch values are cut into batches this big (no result changes:
# the decoder gives each prompt what it gives that prompt alone).
MAX_BATCH_PROMPTS = MAX_STORAGE_BINDING // (MULTIMASK * LOW_RES * LOW_RES * 4)
Progress = Callable[[int, int], None]


@dataclass
class Candidate:
    """One mask that passed the filters. box: (x0, y0, x1, y1), x1 and y1 inclusive, and
    point (x, y), both in image pixels once uncropped; rle: the image-sized mask."""

    iou: float
    stability: float
    box: Box
    point: Point
    crop_box: Box
    rle: rle.RLE


@dataclass(frozen=True)
class _Image:
    pixels: bytes
    height: int
    width: int
    channels: int

    def crop(self, box: Box) -> memoryview:
        x0, y0, x1, y1 = box
        c, w = self.channels, self.width
        data = b"".join(self.pixels[(y * w + x0) * c : (y * w + x1) * c] for y in range(y0, y1))
        shape = (y1 - y0, x1 - x0, c) if c > 1 else (y1 - y0, x1 - x0)
        return memoryview(data).cast("B", shape)


class AutomaticMaskGenerator:
    """Masks for everything in an image, as segment-anything's SamAutomaticMaskGenerator.

    Parameters are the official ones (see GeneratorParams; bounded by RELIABILITY.md AM-1,
    InputError names a bad one). point_grids: one list of (x, y) in [0, 1] per crop layer.
    """

    def __init__(
        self,
        predictor: Predictor,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[list[Point]] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
    ) -> None:
        self.params = GeneratorParams(
            points_per_side,
            points_per_batch,
            pred_iou_thresh,
            stability_score_thresh,
            stability_score_offset,
            box_nms_thresh,
            crop_n_layers,
            crop_nms_thresh,
            crop_overlap_ratio,
            crop_n_points_downscale_factor,
            point_grids,
            min_mask_region_area,
            output_mode,
        )
        self.predictor = predictor
        self.point_grids = self.params.grids()

    # -- public API -----------------------------------------------------------------------

    async def generate_async(
        self, image: Any, progress: Progress | None = None
    ) -> list[dict[str, Any]]:
        """image: (H, W, 3) RGB uint8 (any buffer; RGBA and gray work too). Returns one record
        per mask, in the official order: `segmentation` (binary_mask: row-major (H, W) bytes
        of 0/1; uncompressed_rle: {"size", "counts": list}; coco_rle: counts a string),
        `area`, `bbox` [x, y, w, h], `predicted_iou`, `point_coords` [[x, y]],
        `stability_score`, `crop_box` [x, y, w, h]; pixels of the original image.
        `progress(done, total)` is called after each batch of prompts."""
        pixels, height, width, channels = image_bytes(image, "RGB")
        check_image_size(width, height)
        masks = await self._generate(_Image(pixels, height, width, channels), progress)
        return [self._record(m) for m in masks]

    def generate(self, image: Any, progress: Progress | None = None) -> list[dict[str, Any]]:
        """Native: generate_async, with binary_mask segmentations as numpy (H, W) bool."""
        import asyncio

        import numpy as np

        records = asyncio.run(self.generate_async(image, progress))
        if self.params.output_mode == "binary_mask":
            h, w = (memoryview(image).shape or (0, 0))[:2]
            for r in records:
                r["segmentation"] = np.frombuffer(r["segmentation"], np.uint8).reshape(h, w) > 0
        return records

    # -- the algorithm --------------------------------------------------------------------

    async def _generate(self, image: _Image, progress: Progress | None = None) -> list[Candidate]:
        p = self.params
        orig = (image.height, image.width)
        crop_boxes, layers = generate_crop_boxes(orig, p.crop_n_layers, p.crop_overlap_ratio)
        size = self._batch_size()
        batches = [math.ceil(len(self.point_grids[layer]) / size) for layer in layers]
        done = [0, sum(batches)]

        def step() -> None:
            done[0] += 1
            if progress is not None:
                progress(done[0], done[1])

        masks: list[Candidate] = []
        for crop_box, layer in zip(crop_boxes, layers, strict=True):
            masks += await self._process_crop(image, crop_box, self.point_grids[layer], step)
        if len(crop_boxes) > 1:
            # Prefer masks from smaller crops.
            scores = [f32(1 / _area(m.crop_box)) for m in masks]
            keep = nms([m.box for m in masks], scores, p.crop_nms_thresh)
            masks = [masks[i] for i in keep]
        if p.min_mask_region_area > 0:
            masks = _remove_small_regions(
                masks, p.min_mask_region_area, max(p.box_nms_thresh, p.crop_nms_thresh)
            )
        return masks

    async def _process_crop(
        self, image: _Image, crop_box: Box, grid: list[Point], step: Callable[[], None]
    ) -> list[Candidate]:
        x0, y0, x1, y1 = crop_box
        crop_w, crop_h = x1 - x0, y1 - y0
        await self.predictor.set_image_async(image.crop(crop_box))
        state = self.predictor.image_state()
        assert state is not None
        shared = self.predictor.model.share_image(state.embeddings)
        points = [(x * crop_w, y * crop_h) for x, y in grid]
        size = self._batch_size()
        masks: list[Candidate] = []
        try:
            for start in range(0, len(points), size):
                batch = points[start : start + size]
                masks += await self._process_batch(
                    batch, shared, crop_box, (image.height, image.width)
                )
                step()
        finally:
            self.predictor.reset_image()
        keep = nms([m.box for m in masks], [m.iou for m in masks], self.params.box_nms_thresh)
        return [_uncrop(masks[i], crop_box) for i in keep]

    def _batch_size(self) -> int:
        return min(self.params.points_per_batch, MAX_BATCH_PROMPTS)

    async def _process_batch(
        self, points: list[Point], shared: SharedImage, crop_box: Box, orig: tuple[int, int]
    ) -> list[Candidate]:
        """Decode the points as one batch, reduce their masks on the GPU and keep those
        passing the filters (boxes and points still in crop coordinates, masks already
        image-sized)."""
        device = self.predictor.device
        state = self.predictor.image_state()
        assert state is not None
        n = len(points) * MULTIMASK
        low_all = device.empty((n, LOW_RES, LOW_RES))
        iou_all = device.empty((n,))
        # One decoder batch at a time through the predictor, which may stop between them
        # (the server's deadline and cancel checkpoints).
        step = batched.MAX_BATCH
        for start in range(0, len(points), step):
            low, iou = self.predictor.record_batch(points[start : start + step], shared)
            device.copy(low, low_all, dst_start=start * MULTIMASK * LOW_RES * LOW_RES)
            device.copy(iou, iou_all, dst_start=start * MULTIMASK)
        stats_all = self._mask_stats(low_all, state.info)
        words = array("I", await device.read(stats_all))
        ious = array("f", await device.read(iou_all))
        kept = [
            (i, c)
            for i in range(n)
            if (c := self._filter(i, ious[i], words, points[i // MULTIMASK], crop_box, orig))
        ]
        bits = await self._read_masks(low_all, [i for i, _ in kept])
        frame = (orig[0], orig[1])
        h, w = crop_box[3] - crop_box[1], crop_box[2] - crop_box[0]
        return [
            replace(c, rle=rle.encode_in_frame(mask, h, w, (crop_box[0], crop_box[1]), frame))
            for (_, c), mask in zip(kept, bits, strict=True)
        ]

    def _filter(
        self,
        i: int,
        iou: float,
        words: array[int],
        point: Point,
        crop_box: Box,
        orig: tuple[int, int],
    ) -> Candidate | None:
        p = self.params
        if p.pred_iou_thresh > 0.0 and not iou > f32(p.pred_iou_thresh):
            return None
        hi, lo, area, x0, y0, x1, y1 = words[i * 8 : i * 8 + 7]
        stability = f32(hi / lo) if lo else math.nan
        if p.stability_score_thresh > 0.0 and not stability >= f32(p.stability_score_thresh):
            return None
        box = (x0, y0, x1, y1) if area else (0, 0, 0, 0)
        if _near_crop_edge(box, crop_box, orig):
            return None
        return Candidate(iou, stability, box, point, crop_box, {})

    def _mask_stats(self, low_all: Tensor, info: ImageInfo) -> Tensor:
        """ops.mask_stats of every plane's full-size logits, (N, 8) words, upscaled in
        chunks of planes that fit one storage binding."""
        device = self.predictor.device
        n = low_all.shape[0]
        per_chunk = _planes_per_binding(info.original)
        plane, words = LOW_RES * LOW_RES, ops.mask.STATS_WORDS
        stats_all = device.empty((n, words), "u32")
        for start in range(0, n, per_chunk):
            count = min(per_chunk, n - start)
            low = device.empty((count, LOW_RES, LOW_RES))
            device.copy(low_all, low, src_start=start * plane, count=count * plane)
            logits = self.predictor.model.postprocess(low, info)
            stats = ops.mask_stats(logits, MASK_THRESHOLD, self.params.stability_score_offset)
            device.copy(stats, stats_all, dst_start=start * words)
        return stats_all

    async def _read_masks(self, low_all: Tensor, planes: list[int]) -> list[bytes]:
        """Masks (logits > 0 at the crop's size, row-major 0/1 bytes) of the chosen planes,
        recomputed from their low-res logits in chunks that fit one storage binding."""
        state = self.predictor.image_state()
        assert state is not None
        device = self.predictor.device
        h, w = state.info.original
        per_chunk = _planes_per_binding((h, w))
        plane = LOW_RES * LOW_RES
        out: list[bytes] = []
        for start in range(0, len(planes), per_chunk):
            chunk = planes[start : start + per_chunk]
            low = device.empty((len(chunk), LOW_RES, LOW_RES))
            for j, i in enumerate(chunk):
                device.copy(low_all, low, src_start=i * plane, dst_start=j * plane, count=plane)
            packed = ops.threshold(
                self.predictor.model.postprocess(low, state.info), MASK_THRESHOLD
            )
            data = _unpack_masks(await device.read(packed), len(chunk), h * w)
            out += [data[j * h * w : (j + 1) * h * w] for j in range(len(chunk))]
        return out

    def _record(self, m: Candidate) -> dict[str, Any]:
        mode = self.params.output_mode
        if mode == "coco_rle":
            segmentation: Any = rle.to_coco(m.rle)
        elif mode == "binary_mask":
            segmentation = rle.decode(m.rle)
        else:
            segmentation = m.rle
        return {
            "segmentation": segmentation,
            "area": rle.area(m.rle),
            "bbox": xyxy_to_xywh(m.box),
            "predicted_iou": m.iou,
            "point_coords": [list(m.point)],
            "stability_score": m.stability,
            "crop_box": xyxy_to_xywh(m.crop_box),
        }


def _planes_per_binding(size: tuple[int, int]) -> int:
    """How many planes of full-size logits (the (1024, 1024) padded ones on the way, then
    the image's (H, W)) fit one storage binding."""
    return max(1, MAX_STORAGE_BINDING // (4 * max(INPUT_SIZE * INPUT_SIZE, size[0] * size[1])))


def _area(box: Box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _near_crop_edge(box: Box, crop_box: Box, orig: tuple[int, int]) -> bool:
    """Whether the box (crop coordinates) lies near an edge of the crop that is not an edge
    of the image."""
    x0, y0 = crop_box[0], crop_box[1]
    uncropped = (box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0)
    image_box = (0, 0, orig[1], orig[0])
    return any(
        abs(b - c) <= EDGE_TOLERANCE and not abs(b - e) <= EDGE_TOLERANCE
        for b, c, e in zip(uncropped, crop_box, image_box, strict=True)
    )


def _uncrop(m: Candidate, crop_box: Box) -> Candidate:
    x0, y0 = crop_box[0], crop_box[1]
    box = (m.box[0] + x0, m.box[1] + y0, m.box[2] + x0, m.box[3] + y0)
    return replace(m, box=box, point=(m.point[0] + x0, m.point[1] + y0))


def _mask_box(mask: bytes, height: int, width: int) -> Box:
    """Box (x0, y0, x1, y1), inclusive, of the set pixels; (0, 0, 0, 0) if none."""
    runs = row_runs(mask, height, width, 1)
    if not runs:
        return (0, 0, 0, 0)
    xs0 = min(r[1] for r in runs)
    xs1 = max(r[2] for r in runs) - 1
    return (xs0, runs[0][0], xs1, runs[-1][0])


def _remove_small_regions(
    masks: list[Candidate], min_area: int, nms_thresh: float
) -> list[Candidate]:
    """Fill small holes and drop small islands, then box NMS preferring unchanged masks;
    masks that changed and survive get their new RLE and box."""
    if not masks:
        return masks
    updated: list[tuple[bytes, Box, bool]] = []
    for m in masks:
        h, w = m.rle["size"]
        mask = rle.decode(m.rle)
        mask, holes_changed = remove_small_regions(mask, h, w, min_area, "holes")
        mask, islands_changed = remove_small_regions(mask, h, w, min_area, "islands")
        updated.append((mask, _mask_box(mask, h, w), holes_changed or islands_changed))
    scores = [0.0 if changed else 1.0 for _, _, changed in updated]
    keep = nms([box for _, box, _ in updated], scores, nms_thresh)
    out = []
    for i in keep:
        mask, box, changed = updated[i]
        m = masks[i]
        if changed:
            h, w = m.rle["size"]
            m = replace(m, rle=rle.encode(mask, h, w), box=box)
        out.append(m)
    return out
