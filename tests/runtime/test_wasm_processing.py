"""The browser's wasm runtime pre- and post-processes on JS typed arrays (web/ort_runtime.js):
run here in Node against the official outputs. Pre-processing: PIL's antialiased bilinear
resize from the WGSL kernel's fixed-point tables (ops.image), in Pillow's pass order, then
normalise and pad; post-processing: SAM's two bilinear resizes and the threshold."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sandseg.ops.image import pil_bilinear_table, resize_longest_side, resize_passes
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "web" / "ort_runtime.js"
HARNESS = Path(__file__).with_name("wasm_processing.mjs")
# Each photo with a prompt of its conformance file.
PHOTOS = {"picture1_seed1234.npz": "center_point", "dogs_seed1234.npz": "left_point"}


def run_node(folder: Path, job: dict) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("these tests need Node.js (apt-get install nodejs)", pytrace=False)
    (folder / "job.json").write_text(json.dumps(job))
    subprocess.run([node, str(HARNESS), str(folder), str(MODULE)], check=True, timeout=120)


def js_preprocess(image: np.ndarray, folder: Path) -> np.ndarray:
    """sandseg.browser.wasm's preprocess: the tables and passes from Python, the pixels in JS."""
    height, width, channels = image.shape
    new_h, new_w = resize_longest_side(height, width)
    passes, size = [], (height, width)
    for i, horizontal in enumerate(resize_passes(height, width, new_h, new_w)):
        out = (size[0], new_w) if horizontal else (new_h, size[1])
        taps, table = pil_bilinear_table(*((size[1], new_w) if horizontal else (size[0], new_h)))
        (folder / f"table{i}.bin").write_bytes(table)
        passes.append({"horizontal": horizontal, "outH": out[0], "outW": out[1], "taps": taps})
        size = out
    (folder / "pixels.bin").write_bytes(np.ascontiguousarray(image).tobytes())
    job = {"height": height, "width": width, "channels": channels, "passes": passes}
    run_node(folder, {"preprocess": {**job, "resized": [new_h, new_w]}})
    return np.fromfile(folder / "x.bin", np.float32).reshape(1024, 1024, 3)


@pytest.mark.parametrize("photo", PHOTOS)
def test_preprocessing_matches_the_official_input_tensor(photo: str, tmp_path: Path) -> None:
    """picture1's official input tensor; the landscape photo's file has none, so Pillow's own
    resize (runtime/host.py, the official code's operations) stands in."""
    from sandseg.runtime import host

    with np.load(require(photo)) as npz:
        image = npz["image_rgb"]
        if "input_tensor" in npz:
            want = npz["input_tensor"][0].transpose(1, 2, 0)
        else:
            want, _ = host.preprocess(image)
    got = js_preprocess(image, tmp_path)
    diff = np.abs(got - want)
    where = np.unravel_index(diff.argmax(), diff.shape)
    print(f"{photo}: JS pre-processing max abs diff {diff.max():.3g} at {where}")
    # One 8-bit step is 1/57 after normalising: anything but float rounding is a wrong pixel.
    assert diff.max() < 1e-5, f"max abs diff {diff.max()} at {where}"


def test_preprocessing_reads_gray_and_rgba_as_pil_converts(tmp_path: Path) -> None:
    from sandseg.runtime import host

    rng = np.random.default_rng(1234)
    for shape in [(300, 517), (517, 300, 4), (1024, 1024, 3)]:
        image = rng.integers(0, 256, shape, np.uint8)
        want, _ = host.preprocess(image)
        got = js_preprocess(image if image.ndim == 3 else image[:, :, None], tmp_path)
        assert np.abs(got - want).max() < 1e-5, shape


@pytest.mark.parametrize("photo", PHOTOS)
def test_postprocessing_gives_the_official_masks(photo: str, tmp_path: Path) -> None:
    with np.load(require(photo)) as npz:
        low_res = npz[f"{PHOTOS[photo]}__multi__low_res_masks"][0]
        want = npz[f"{PHOTOS[photo]}__multi__masks"][0]
        h, w = npz["image_rgb"].shape[:2]
    (tmp_path / "low_res.bin").write_bytes(np.ascontiguousarray(low_res, np.float32).tobytes())
    job = {"count": 3, "resized": list(resize_longest_side(h, w)), "original": [h, w]}
    run_node(tmp_path, {"upscale": job})
    got = np.fromfile(tmp_path / "masks.bin", np.uint8).reshape(3, h, w).astype(bool)
    for c in range(3):
        iou = (got[c] & want[c]).sum() / max((got[c] | want[c]).sum(), 1)
        print(f"{photo} mask {c}: IoU {iou:.6f}, {(got[c] != want[c]).sum()} pixels differ")
        assert iou >= 0.999, f"mask {c}: IoU {iou:.6f}"
