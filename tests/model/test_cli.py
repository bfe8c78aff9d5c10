"""`sandseg convert` and `sandseg segment` as users run them: real files, real exit codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sandseg.cli import main

IMAGES = Path(__file__).resolve().parents[2].parent / "shared" / "images"


@pytest.mark.slow
def test_segment_a_photo_writes_the_documented_arrays(gpu_device, converted_weights, tmp_path):
    out = tmp_path / "dogs.npz"
    args = ["segment", "--weights", str(converted_weights), "--image", str(IMAGES / "dogs.jpg")]
    args += ["--point", "500,300,1", "--point", "100,100,0", "--box", "300,150,800,500"]
    overlay = tmp_path / "overlay.png"
    assert main([*args, "--multimask", "--out", str(out), "--overlay", str(overlay)]) == 0
    with np.load(out) as result:
        masks, logits = result["masks"], result["mask_logits"]
        assert masks.dtype == bool and masks.shape == (3, 603, 1072)
        assert logits.dtype == np.float32 and logits.shape == (3, 603, 1072)
        assert result["iou_predictions"].shape == (3,)
        assert result["low_res_masks"].shape == (3, 256, 256)
        np.testing.assert_array_equal(masks, logits > 0)
        assert 0 < masks.mean() < 1
    from PIL import Image

    with Image.open(overlay) as picture:
        assert picture.size == (1072, 603)

    # Refinement with the previous low-res mask, single output.
    low_res = tmp_path / "low.npy"
    with np.load(out) as result:
        np.save(low_res, result["low_res_masks"][:1])
    again = tmp_path / "again.npz"
    refine = ["--mask-input", str(low_res), "--out", str(again)]
    assert main([*args, *refine]) == 0
    with np.load(again) as result:
        assert result["masks"].shape == (1, 603, 1072)


def _segment(weights: Path, image: Path, out: Path, *extra: str) -> int:
    args = ["segment", "--weights", str(weights), "--image", str(image), "--out", str(out)]
    return main([*args, "--point", "10,10,1", *extra])


@pytest.mark.parametrize(
    ("content", "extra", "fragment"),
    [
        (b"", (), "cannot read image"),
        (b"not a jpeg at all", (), "cannot read image"),
        (b"\xff\xd8\xff\xe0" + bytes(100), (), "cannot read image"),  # truncated JPEG
        (None, ("--point", "1,2"), "3 comma-separated numbers"),
        (None, ("--box", "5,5,1,1"), "x0 <= x1"),
        (None, ("--point", "5000,5,1"), "outside the image"),
        (None, ("--point", "5,5,7"), "1 (foreground) or 0"),
    ],
)
def test_segment_bad_input_is_one_line_and_no_output(
    gpu_device, converted_weights, tmp_path, capsys, content, extra, fragment
):
    image = tmp_path / "image.jpg"
    if content is None:
        image.write_bytes((IMAGES / "picture2.jpg").read_bytes())
    else:
        image.write_bytes(content)
    out = tmp_path / "out.npz"
    assert _segment(converted_weights, image, out, *extra) == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert "Traceback" not in err
    assert not out.exists()


def test_segment_with_missing_image_says_so(converted_weights, tmp_path, capsys):
    assert _segment(converted_weights, tmp_path / "nope.jpg", tmp_path / "o.npz") == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("outputs", "fragment"),
    [
        ((), "nothing to write: give --out OUT.npz, --coco OUT.json or both"),
        (("--coco", "no/such/folder/out.json"), "output folder no/such/folder does not exist"),
        (("--coco", "out.json", "--polygon-tolerance", "-1"), "--polygon-tolerance must be >= 0"),
    ],
)
def test_segment_coco_options_are_checked_before_any_work(tmp_path, capsys, outputs, fragment):
    args = ["segment", "--weights", str(tmp_path / "not-read.safetensors")]
    args += ["--image", str(IMAGES / "picture2.jpg"), "--point", "10,10,1"]
    assert main([*args, *outputs]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_a_flipped_data_byte_is_caught_by_the_manifest(
    gpu_device, converted_weights, tmp_path, capsys
):
    from sandseg.weights.convert import manifest_path

    bad = tmp_path / "tampered.safetensors"
    data = bytearray(converted_weights.read_bytes())
    data[-1000] ^= 0x01  # inside a tensor: the file still parses
    bad.write_bytes(bytes(data))
    manifest_path(bad).write_bytes(manifest_path(converted_weights).read_bytes())
    out = tmp_path / "out.npz"
    assert _segment(bad, IMAGES / "picture2.jpg", out) == 2
    assert "manifest records" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("damage", ["truncate", "flip", "missing-key", "misshapen-key"])
def test_damaged_weights_are_refused_by_name(
    gpu_device, converted_weights, tmp_path, capsys, damage
):
    from sandseg.weights import HostTensor, SafetensorsReader, save_safetensors

    bad = tmp_path / "bad.safetensors"
    data = converted_weights.read_bytes()
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        # A flipped byte in the header's JSON breaks its structure.
        header_len = int.from_bytes(data[:8], "little")
        at = 8 + header_len // 2
        bad.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
    else:
        with SafetensorsReader(converted_weights) as reader:
            tensors = reader.read_all()
        key = "mask_decoder.iou_token.weight"
        if damage == "missing-key":
            del tensors[key]
        else:
            tensors[key] = HostTensor("F32", (2, 128), tensors[key].data)
        save_safetensors(bad, tensors)
    out = tmp_path / "out.npz"
    assert _segment(bad, IMAGES / "picture2.jpg", out) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("sandseg")
    if damage in ("missing-key", "misshapen-key"):
        assert "mask_decoder.iou_token.weight" in err
    assert not out.exists()


def test_convert_refuses_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    src = tmp_path / "fake.pt"
    src.write_bytes(b"PK\x03\x04 this is not really a zip")
    dst = tmp_path / "out.safetensors"
    assert main(["convert", str(src), str(dst)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not dst.exists()
