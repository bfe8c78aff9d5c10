"""The converter: exact bytes (CV-3), a manifest with both sha256s, all-or-nothing output."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from sandseg.weights import (
    HostTensor,
    LayoutError,
    SafetensorsReader,
    WeightsError,
    check_layout,
    convert_checkpoint,
    manifest_path,
    mobile_sam_layout,
    read_pt,
    verify_weights,
)
from sandseg.weights import convert as convert_module

from .ptwriter import write_checkpoint


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory, mobile_sam_pt: Path) -> tuple[Path, dict]:
    dst = tmp_path_factory.mktemp("convert") / "mobile_sam.safetensors"
    lines: list[str] = []
    manifest = convert_checkpoint(mobile_sam_pt, dst, progress=lines.append)
    assert lines[0].startswith("reading") and lines[-1] == "wrote mobile_sam.manifest.json"
    return dst, manifest


@pytest.mark.requirement("CV-3")
def test_output_tensors_equal_the_input_bit_for_bit(
    converted: tuple[Path, dict], mobile_sam_tensors: dict[str, HostTensor]
) -> None:
    dst, _ = converted
    with SafetensorsReader(dst) as reader:
        assert reader.keys() == list(mobile_sam_layout())
        for name, tensor in mobile_sam_tensors.items():
            assert reader.read(name) == tensor, name


@pytest.mark.requirement("CV-3")
def test_manifest_records_both_files(converted: tuple[Path, dict], mobile_sam_pt: Path) -> None:
    dst, manifest = converted
    assert json.loads(manifest_path(dst).read_text()) == manifest
    source_sha = sha256(mobile_sam_pt)
    assert manifest == {
        "format_version": 1,
        "source_name": "mobile_sam_seed1234.pt",
        "source_sha256": source_sha,
        "output_name": "mobile_sam.safetensors",
        "output_sha256": sha256(dst),
        "tensor_count": 439,
        "total_bytes": manifest["total_bytes"],
        "metadata": {"format": "sandseg-mobilesam", "source_sha256": source_sha},
    }
    with SafetensorsReader(dst) as reader:
        assert reader.metadata == manifest["metadata"]
        assert manifest["total_bytes"] == sum(reader.info(n)[3] - reader.info(n)[2] for n in reader)


def test_verify_weights(converted: tuple[Path, dict], tmp_path: Path) -> None:
    dst, manifest = converted
    assert verify_weights(dst) == manifest["output_sha256"]
    assert verify_weights(dst, manifest["output_sha256"].upper()) == manifest["output_sha256"]
    with pytest.raises(WeightsError, match="expected 00"):
        verify_weights(dst, "00" * 32)
    # One flipped byte in a copy is caught by its manifest.
    copy = tmp_path / dst.name
    data = bytearray(dst.read_bytes())
    data[len(data) // 2] ^= 1
    copy.write_bytes(data)
    manifest_path(copy).write_bytes(manifest_path(dst).read_bytes())
    with pytest.raises(WeightsError, match="its manifest records"):
        verify_weights(copy)
    manifest_path(copy).write_text("[]")
    with pytest.raises(WeightsError, match=r"manifest .* is unreadable"):
        verify_weights(copy)


def test_nested_model_checkpoint_converts(
    tmp_path: Path, mobile_sam_tensors: dict[str, HostTensor]
) -> None:
    src = write_checkpoint(tmp_path / "nested.pt", mobile_sam_tensors, wrap="model")
    manifest = convert_checkpoint(src, tmp_path / "out.safetensors")
    assert manifest["source_sha256"] == sha256(src)
    with SafetensorsReader(tmp_path / "out.safetensors") as reader:
        assert reader.read_all() == mobile_sam_tensors


def test_layout_errors_are_reported_together_and_nothing_is_written(
    tmp_path: Path, mobile_sam_tensors: dict[str, HostTensor]
) -> None:
    tensors = dict(mobile_sam_tensors)
    del tensors["mask_decoder.iou_token.weight"]
    tensors["extra.weight"] = HostTensor("F32", (1,), bytes(4))
    tensors["image_encoder.neck.1.bias"] = HostTensor("F32", (255,), bytes(4 * 255))
    src = write_checkpoint(tmp_path / "bad.pt", tensors)
    with pytest.raises(LayoutError) as info:
        convert_checkpoint(src, tmp_path / "out.safetensors")
    message = str(info.value)
    assert "1 missing: mask_decoder.iou_token.weight" in message
    assert "1 unknown: extra.weight" in message
    assert "image_encoder.neck.1.bias (expected (256,) F32, got (255,) F32)" in message
    assert info.value.missing == ("mask_decoder.iou_token.weight",)
    assert info.value.unknown == ("extra.weight",)
    assert info.value.mismatched == ("image_encoder.neck.1.bias",)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt"]


def test_long_lists_show_ten_names_and_a_count() -> None:
    layout = mobile_sam_layout()
    with pytest.raises(LayoutError) as info:
        check_layout({}, layout)
    message = str(info.value)
    assert "439 missing: image_encoder.patch_embed.seq.0.c.weight" in message
    assert "and 429 more" in message
    assert len(info.value.missing) == 439


def test_dtype_mismatch_is_reported() -> None:
    layout = {"a": ((), "I64")}
    with pytest.raises(LayoutError, match=r"a \(expected \(\) I64, got \(\) F32\)"):
        check_layout({"a": HostTensor("F32", (), bytes(4))}, layout)


def test_failure_after_writing_leaves_nothing_behind(
    tmp_path: Path, mobile_sam_pt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_hash(path: Path) -> str:
        raise OSError("disk error while hashing")

    monkeypatch.setattr(convert_module, "sha256_file", broken_hash)
    with pytest.raises(OSError, match="disk error"):
        convert_checkpoint(mobile_sam_pt, tmp_path / "out.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_unreadable_checkpoint_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "broken.pt"
    src.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable zip archive"):
        convert_checkpoint(src, tmp_path / "out.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["broken.pt"]


def test_read_pt_of_converted_source_is_unchanged(mobile_sam_pt: Path) -> None:
    # The converter reads the bytes it hashes; reading twice gives equal tensors.
    assert read_pt(mobile_sam_pt) == read_pt(mobile_sam_pt)
