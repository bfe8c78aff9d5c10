"""sandseg.weights.identity: the demo weights are recognised by their tensors."""

from __future__ import annotations

import shutil

from sandseg.weights import HostTensor, SafetensorsReader, manifest_path, save_safetensors
from sandseg.weights.identity import DEMO_TENSOR_SHA256, is_demo, tensor_data_sha256, weights_info


def test_the_converted_demo_checkpoint_is_demo_as_float32_and_float16(
    converted_weights, converted_weights_f16
):
    """Also the converter's guard: if it ever writes other tensor bytes, the digests go stale."""
    assert tensor_data_sha256(converted_weights) in DEMO_TENSOR_SHA256
    assert is_demo(converted_weights) and is_demo(converted_weights_f16)


def test_the_same_tensors_under_another_header_are_still_demo(converted_weights, tmp_path):
    with SafetensorsReader(converted_weights) as reader:
        tensors = reader.read_all()
    copy = tmp_path / "renamed.safetensors"
    save_safetensors(copy, tensors, {"format": "something else", "source_sha256": "0" * 64})
    assert is_demo(copy)
    assert weights_info(copy)["name"] == "renamed.safetensors"  # no manifest: the file's name


def test_one_changed_value_is_not_demo(converted_weights, tmp_path):
    with SafetensorsReader(converted_weights) as reader:
        tensors = reader.read_all()
    key = "image_encoder.neck.0.weight"
    data = bytearray(tensors[key].data)
    data[-1] ^= 0x01
    tensors[key] = HostTensor(tensors[key].dtype, tensors[key].shape, bytes(data))
    changed = tmp_path / "changed.safetensors"
    save_safetensors(changed, tensors)
    assert not is_demo(changed)


def test_weights_info_names_the_source_checkpoint(converted_weights, tmp_path):
    copy = tmp_path / "w.safetensors"
    shutil.copy(converted_weights, copy)
    shutil.copy(manifest_path(converted_weights), manifest_path(copy))
    info = weights_info(copy)
    assert info["name"] == "mobile_sam_seed1234.pt" and info["demo"] is True
    assert info["sha256"] == weights_info(converted_weights)["sha256"]
