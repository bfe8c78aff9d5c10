"""`sandseg export-onnx`: the exported graphs run by onnxruntime (CPU) against the official
outputs (../shared/conformance, seed 1234) and against the package's own WGSL model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from sandseg.cli import main
from sandseg.export import (
    DECODER_FILE,
    ENCODER_FILE,
    OPSET,
    decoder_model,
    export_onnx,
)
from sandseg.weights import load_mobile_sam
from sandseg.weights.files import sha256_file
from tests.model.conftest import describe, rel_l2

PROMPTS = ["center_point", "two_points", "center_box"]
# Output channels of the decoder: 0 is SAM's single-mask output, 1..3 its multimask output.
CHANNELS = {"single": slice(0, 1), "multi": slice(1, 4)}
NO_MASK = np.zeros((1, 1, 256, 256), np.float32)


@pytest.fixture(scope="module")
def exported(converted_weights, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("onnx")
    paths = export_onnx(converted_weights, out)
    return {path.name: path for path in paths}


def _session(model: Path | bytes) -> ort.InferenceSession:
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def decoder(exported) -> ort.InferenceSession:
    return _session(exported[DECODER_FILE])


@pytest.fixture(scope="module")
def onnx_embeddings(exported, reference) -> np.ndarray:
    """The exported encoder on the official input tensor: (1, 256, 64, 64)."""
    (embeddings,) = _session(exported[ENCODER_FILE]).run(None, {"image": reference["input_tensor"]})
    return embeddings


def _prompt(reference, prompt: str) -> tuple[np.ndarray, np.ndarray]:
    """SAM's ONNX prompt convention in 1024-space: points, then the padding point (0, 0) with
    label -1 when there is no box, or the box's corners with labels 2 and 3."""
    if f"{prompt}__box_1024" in reference:
        coords = reference[f"{prompt}__box_1024"].reshape(2, 2)
        labels = np.array([2, 3])
    else:
        coords = np.concatenate([reference[f"{prompt}__point_coords_1024"], [[0.0, 0.0]]])
        labels = np.append(reference[f"{prompt}__point_labels"], -1)
    return coords[None].astype(np.float32), labels[None].astype(np.float32)


def _decode(session, embeddings, coords, labels, mask=NO_MASK, has_mask=0.0):
    feeds = {
        "image_embeddings": embeddings,
        "point_coords": coords,
        "point_labels": labels,
        "mask_input": mask,
        "has_mask_input": np.array([has_mask], np.float32),
    }
    low_res, iou = session.run(["low_res_masks", "iou_predictions"], feeds)
    return low_res[0], iou[0]  # (4, 256, 256), (4,)


def _package_predict(predictor, reference, prompt, multimask, mask_input=None):
    """The package's low-res logits and IoU from the reference embeddings."""
    h, w = reference["image_rgb"].shape[:2]
    hwc = np.ascontiguousarray(reference["image_embeddings"][0].transpose(1, 2, 0))
    predictor.set_image_embedding(hwc.tobytes(), (h, w))
    _, iou, low_res = predictor.predict(
        reference.get(f"{prompt}__point_coords"),
        reference.get(f"{prompt}__point_labels"),
        reference.get(f"{prompt}__box"),
        mask_input,
        multimask,
    )
    return low_res, iou


def test_models_are_valid_opset_17_and_record_the_weights(exported, converted_weights):
    sha256 = sha256_file(converted_weights)
    for name, inputs, outputs in [
        (ENCODER_FILE, {"image": [1, 3, 1024, 1024]}, {"image_embeddings": [1, 256, 64, 64]}),
        (
            DECODER_FILE,
            {
                "image_embeddings": [1, 256, 64, 64],
                "point_coords": [1, "num_points", 2],
                "point_labels": [1, "num_points"],
                "mask_input": [1, 1, 256, 256],
                "has_mask_input": [1],
            },
            {"low_res_masks": [1, 4, 256, 256], "iou_predictions": [1, 4]},
        ),
    ]:
        model = onnx.load(exported[name])
        onnx.checker.check_model(model, full_check=True)
        assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
        assert {p.key: p.value for p in model.metadata_props}["weights_sha256"] == sha256
        assert _shapes(model.graph.input) == inputs
        assert _shapes(model.graph.output) == outputs
        assert all(
            t.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
            for t in [*model.graph.input, *model.graph.output]
        )


def _shapes(values) -> dict[str, list[int | str]]:
    return {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values
    }


def test_encoder_matches_reference(onnx_embeddings, reference):
    want = reference["image_embeddings"]
    assert onnx_embeddings.shape == want.shape
    assert rel_l2(onnx_embeddings, want) <= 1e-4, describe(onnx_embeddings, want)
    assert np.abs(onnx_embeddings - want).max() <= 1e-3, describe(onnx_embeddings, want)


@pytest.mark.slow
def test_encoder_matches_the_package(onnx_embeddings, predictor, reference):
    """The package's full pipeline (resize, normalise, WGSL encoder) from the decoded photo."""
    predictor.set_image(reference["image_rgb"])
    ours = predictor.get_image_embedding()
    assert rel_l2(onnx_embeddings, ours) <= 1e-4, describe(onnx_embeddings, ours)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_decoder_matches_reference_and_package(decoder, predictor, reference, prompt):
    low_res, iou = _decode(decoder, reference["image_embeddings"], *_prompt(reference, prompt))
    for tag, channels in CHANNELS.items():
        key = f"{prompt}__{tag}__"
        want = reference[key + "low_res_masks"][0]
        assert np.abs(low_res[channels] - want).max() <= 1e-5, describe(low_res[channels], want)
        want_iou = reference[key + "iou_predictions"][0]
        assert np.abs(iou[channels] - want_iou).max() <= 1e-5, (iou[channels], want_iou)
        ours, our_iou = _package_predict(predictor, reference, prompt, tag == "multi")
        assert np.abs(low_res[channels] - ours).max() <= 1e-5, describe(low_res[channels], ours)
        assert np.abs(iou[channels] - our_iou).max() <= 1e-5, (iou[channels], our_iou)


def test_decoder_mask_input_matches_the_package(decoder, predictor, reference):
    """Refinement with a previous low-res mask (has_mask_input 1), which the official vector
    does not cover: checked against the package's own decoder."""
    previous = reference["two_points__single__low_res_masks"][0]  # (1, 256, 256)
    coords, labels = _prompt(reference, "two_points")
    low_res, iou = _decode(
        decoder, reference["image_embeddings"], coords, labels, previous[None], 1.0
    )
    ours, our_iou = _package_predict(
        predictor, reference, "two_points", False, np.ascontiguousarray(previous)
    )
    assert np.abs(low_res[:1] - ours).max() <= 1e-5, describe(low_res[:1], ours)
    assert np.abs(iou[:1] - our_iou).max() <= 1e-5, (iou[:1], our_iou)
    # has_mask_input 0 ignores mask_input entirely.
    without, _ = _decode(decoder, reference["image_embeddings"], coords, labels)
    ignored, _ = _decode(decoder, reference["image_embeddings"], coords, labels, previous[None])
    np.testing.assert_array_equal(ignored, without)
    assert np.abs(low_res - without).max() > 1e-3


def test_decoder_with_a_fixed_point_count(converted_weights, decoder, reference):
    coords, labels = _prompt(reference, "two_points")  # 2 points + padding
    tensors = load_mobile_sam(converted_weights)
    fixed = decoder_model(tensors, sha256_file(converted_weights), num_points=3)
    dims = fixed.graph.input[1].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 2]
    got = _decode(
        _session(fixed.SerializeToString()), reference["image_embeddings"], coords, labels
    )
    want = _decode(decoder, reference["image_embeddings"], coords, labels)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_cli_writes_both_models(converted_weights, tmp_path, capsys):
    out = tmp_path / "models"
    assert main(["export-onnx", "--weights", str(converted_weights), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([DECODER_FILE, ENCODER_FILE])
    for name in (ENCODER_FILE, DECODER_FILE):
        onnx.checker.check_model(onnx.load(out / name))
    err = capsys.readouterr().err
    assert f"wrote {out / ENCODER_FILE}" in err
    assert f"wrote {out / DECODER_FILE}" in err


def test_cli_bad_weights_is_one_line_and_writes_nothing(converted_weights, tmp_path, capsys):
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(converted_weights.read_bytes()[:100_000])
    out = tmp_path / "models"
    assert main(["export-onnx", "--weights", str(truncated), "--out", str(out)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("sandseg: error: "), errors
    assert not out.exists()


def test_the_core_does_not_import_the_exporter():
    """The exporter is an edge module: loading the core never loads it or onnx (DESIGN.md)."""
    core = "sandseg.gpu, sandseg.ops, sandseg.model, sandseg.weights, sandseg.offload"
    loaded = "sorted({'onnx', 'sandseg.export'} & set(sys.modules))"
    code = f"import sys, {core}, sandseg.predictor; print({loaded})"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
