"""`sandseg segment` as users run it, held to the official outputs: picture1 (nearly square)
and dogs (landscape, 1072 x 603), points, a box, and a refinement from a low-res mask; each
run also writes --coco, read back by pycocotools.

The command reads the reference's own decoded pixels, written losslessly, so that JPEG
decoder differences do not count. Tolerances as tests/model/test_conformance.py's: masks
IoU >= 0.999, IoU predictions and low-res logits within 1e-4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sandseg.cli import main
from tests.annotations.coco_reader import annotation_mask
from tests.conftest import require
from tests.model.conftest import describe, mask_iou

# (file, prompt, tag): one command each (each loads the weights and encodes the image).
RUNS = [
    ("picture1_seed1234.npz", "center_box", "multi"),
    ("dogs_seed1234.npz", "point_pair", "multi"),
    ("dogs_seed1234.npz", "left_point_refine", "single"),
]


def prompt_args(ref: dict[str, np.ndarray], prompt: str, folder: Path) -> list[str]:
    args = []
    if f"{prompt}__point_coords" in ref:
        coords, labels = ref[f"{prompt}__point_coords"], ref[f"{prompt}__point_labels"]
        for (x, y), label in zip(coords.tolist(), labels.tolist(), strict=True):
            args += ["--point", f"{x!r},{y!r},{label}"]
    if f"{prompt}__box" in ref:
        args += ["--box", ",".join(repr(v) for v in ref[f"{prompt}__box"].tolist())]
    if f"{prompt}__mask_input" in ref:
        low_res = folder / "mask_input.npy"
        np.save(low_res, ref[f"{prompt}__mask_input"])
        args += ["--mask-input", str(low_res)]
    return args


@pytest.mark.slow
@pytest.mark.parametrize(("npz", "prompt", "tag"), RUNS, ids=[f"{f[:-13]}-{p}" for f, p, _ in RUNS])
def test_segment_gives_the_official_outputs(
    gpu_device, converted_weights, tmp_path, npz, prompt, tag
) -> None:
    from PIL import Image

    with np.load(require(npz)) as data:
        ref = {k: data[k] for k in data.files}
    image = tmp_path / "image.png"
    Image.fromarray(ref["image_rgb"]).save(image)
    out, coco = tmp_path / "out.npz", tmp_path / "out.json"
    args = ["segment", "--weights", str(converted_weights), "--image", str(image)]
    args += [*prompt_args(ref, prompt, tmp_path), "--out", str(out), "--coco", str(coco)]
    assert main([*args, "--multimask"] if tag == "multi" else args) == 0

    key = f"{prompt}__{tag}__"
    with np.load(out) as got:
        want_masks = ref[key + "masks"][0]
        assert got["masks"].shape == want_masks.shape
        for c, want in enumerate(want_masks):
            assert mask_iou(got["masks"][c], want) >= 0.999, f"{prompt} mask {c}"
        want_iou = ref[key + "iou_predictions"][0]
        np.testing.assert_allclose(got["iou_predictions"], want_iou, rtol=0, atol=1e-4)
        low_res, want_low = got["low_res_masks"], ref[key + "low_res_masks"][0]
        assert np.abs(low_res - want_low).max() <= 1e-4, describe(low_res, want_low)
        check_coco(json.loads(coco.read_text()), got["masks"], got["iou_predictions"])


def check_coco(document: dict, masks: np.ndarray, iou: np.ndarray) -> None:
    """--coco: one annotation per mask of the .npz, in its order, that pycocotools decodes
    to that mask pixel for pixel, scored with its predicted IoU."""
    count, height, width = masks.shape
    assert document["images"] == [
        {"id": 1, "file_name": "image.png", "width": width, "height": height}
    ]
    names = {c["id"]: c["name"] for c in document["categories"]}
    want_names = ["object 1"] if count == 1 else [f"object 1 (mask {k} of 3)" for k in (1, 2, 3)]
    assert [names[a["category_id"]] for a in document["annotations"]] == want_names
    for annotation, mask, score in zip(document["annotations"], masks, iou, strict=True):
        assert np.array_equal(annotation_mask(annotation, height, width), mask)
        assert annotation["score"] == pytest.approx(float(score), abs=1e-6)
