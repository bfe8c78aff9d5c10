"""`sandseg everything` end to end: COCO JSON that pycocotools decodes to the official
generator's masks (config A), progress on stderr, atomic output, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from sandseg.cli import main

from ..conftest import CONFORMANCE
from . import coco
from .conformance import assert_conforms
from .conftest import load_case

PICTURE1 = CONFORMANCE.parent / "images" / "picture1.jpg"


def _flags(config: dict) -> list[str]:
    return [a for k, v in config.items() for a in ("--" + k.replace("_", "-"), str(v))]


@pytest.mark.slow
def test_everything_writes_coco_json_of_the_reference_masks(
    gpu_device, converted_weights, tmp_path, capsys
):
    case = load_case("A")
    out, overlay = tmp_path / "masks.json", tmp_path / "masks.png"
    argv = ["everything", "--weights", str(converted_weights), "--image", str(PICTURE1)]
    argv += [*_flags(case["config"]), "--out", str(out), "--overlay", str(overlay)]
    assert main(argv) == 0
    assert "batch 1/1 of prompts decoded" in capsys.readouterr().err
    document = json.loads(out.read_text())
    assert document["image"] == {"file_name": "picture1.jpg", "height": 770, "width": 769}
    records = document["annotations"]
    for r in records:
        assert r["segmentation"]["size"] == [770, 769]
        r["segmentation"] = coco.decode(r["segmentation"])
    assert_conforms(records, case)
    with Image.open(overlay) as picture:
        assert picture.size == (769, 770)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masks.json", "masks.png"]


def _fails(argv: list[str], capsys, message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("sandseg: error: ") and message in lines[-1], err


@pytest.mark.requirement("AM-1")
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--points-per-side", "65"], "points_per_side must be between 1 and 64, got 65"),
        (["--crop-n-layers", "3"], "crop_n_layers must be between 0 and 2, got 3"),
        (["--box-nms-thresh", "1.5"], "box_nms_thresh must be between 0 and 1"),
    ],
)
def test_out_of_bound_options_are_refused_before_loading_anything(tmp_path, capsys, flags, message):
    out = tmp_path / "masks.json"
    # Neither the weights nor the image exist: the options are checked first.
    argv = ["everything", "--weights", str(tmp_path / "none.pt"), "--image", "none.jpg"]
    _fails([*argv, *flags, "--out", str(out)], capsys, message)
    assert not out.exists()


def test_missing_image_bad_weights_and_missing_folder_are_one_line_errors(tmp_path, capsys):
    image = tmp_path / "small.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(b"not a checkpoint at all")
    out = tmp_path / "masks.json"
    base = ["everything", "--weights", str(weights)]
    _fails([*base, "--image", str(tmp_path / "no.jpg"), "--out", str(out)], capsys, "no.jpg")
    _fails([*base, "--image", str(image), "--out", str(out)], capsys, "weights.safetensors")
    missing = tmp_path / "no" / "masks.json"
    _fails([*base, "--image", str(image), "--out", str(missing)], capsys, "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.png", "weights.safetensors"]
