"""MobileSAM as two ONNX models (opset 17, float32, batch 1), built node by node from the
package's own model code and a `.safetensors` (or `.pt`) checkpoint of MobileSAM `vit_t`.

Encoder `mobile_sam_encoder.onnx`:
  in   image (1, 3, 1024, 1024): RGB normalised with SAM's mean and std, resized so that the
       longest side is 1024, zero-padded right and bottom (the official `input_tensor`)
  out  image_embeddings (1, 256, 64, 64)

Decoder `mobile_sam_decoder.onnx` (prompt encoder + mask decoder; the official SAM ONNX
export's inputs, without `orig_im_size`, and its outputs before upscaling):
  in   image_embeddings (1, 256, 64, 64)
       point_coords (1, N, 2): (x, y) in 1024-space (original pixels times the resize scale)
       point_labels (1, N) float32 whole numbers: 1 foreground, 0 background, 2 and 3 the
            box's top-left and bottom-right corners (after the points), -1 the padding point
            (0, 0) that SAM appends when there is no box; N is dynamic (`num_points`) unless
            the export fixes it
       mask_input (1, 1, 256, 256): a previous low-res logits map, used where has_mask_input
       has_mask_input (1,): 1 to use mask_input, 0 for the learned `no_mask_embed`
  out  low_res_masks (1, 4, 256, 256): logits of all four mask tokens; channel 0 is SAM's
            single-mask output, channels 1..3 its multimask output
       iou_predictions (1, 4): the same four channels

Each file records the weights' sha256 in its metadata (`weights_sha256`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import onnx
from onnx import helper

from ..weights import HostTensor, load_mobile_sam
from ..weights.files import atomic_writer, sha256_file
from .builder import IR_VERSION, OPSET, GraphBuilder, float_value
from .decoder import prompt_and_mask_decoder
from .encoder import image_encoder
from .params import Params

ENCODER_FILE = "mobile_sam_encoder.onnx"
DECODER_FILE = "mobile_sam_decoder.onnx"
PRODUCER = "sandseg.export"


def encoder_model(tensors: Mapping[str, HostTensor], weights_sha256: str) -> onnx.ModelProto:
    """The image encoder: image (1, 3, 1024, 1024) -> image_embeddings (1, 256, 64, 64)."""
    b = GraphBuilder()
    embeddings = image_encoder(Params(b, tensors), "image")
    b.output(embeddings, "image_embeddings")
    graph = b.graph(
        "mobile_sam_encoder",
        [float_value("image", (1, 3, 1024, 1024), "normalised RGB, padded to 1024 x 1024")],
        [float_value("image_embeddings", (1, 256, 64, 64), "TinyViT + neck output")],
    )
    return _model(graph, weights_sha256, "MobileSAM (vit_t) image encoder")


def decoder_model(
    tensors: Mapping[str, HostTensor], weights_sha256: str, num_points: int | None = None
) -> onnx.ModelProto:
    """Prompt encoder + mask decoder; num_points None leaves the point count dynamic."""
    if num_points is not None and num_points < 1:
        raise ValueError(f"num_points must be at least 1 (or None for dynamic), got {num_points}")
    b = GraphBuilder()
    n: int | str = "num_points" if num_points is None else num_points
    masks, iou = prompt_and_mask_decoder(
        Params(b, tensors),
        "image_embeddings",
        "point_coords",
        "point_labels",
        "mask_input",
        "has_mask_input",
    )
    b.output(masks, "low_res_masks")
    b.output(iou, "iou_predictions")
    graph = b.graph(
        "mobile_sam_decoder",
        [
            float_value("image_embeddings", (1, 256, 64, 64), "the encoder's output"),
            float_value("point_coords", (1, n, 2), "(x, y) in 1024-space"),
            float_value("point_labels", (1, n), "1 fg, 0 bg, 2/3 box corners, -1 padding"),
            float_value("mask_input", (1, 1, 256, 256), "previous low-res logits"),
            float_value("has_mask_input", (1,), "1 uses mask_input, 0 ignores it"),
        ],
        [
            float_value("low_res_masks", (1, 4, 256, 256), "logits; 0 single, 1..3 multimask"),
            float_value("iou_predictions", (1, 4), "predicted IoU of each low-res mask"),
        ],
    )
    return _model(graph, weights_sha256, "MobileSAM (vit_t) prompt encoder + mask decoder")


def _model(graph: onnx.GraphProto, weights_sha256: str, doc: str) -> onnx.ModelProto:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER,
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {"weights_sha256": weights_sha256, "opset": str(OPSET)})
    onnx.checker.check_model(model, full_check=True)
    return model


def export_encoder(weights: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the image encoder of `weights` to the ONNX file `out`; returns its path."""
    model = encoder_model(load_mobile_sam(weights), sha256_file(weights))
    _write(model, Path(out))
    return Path(out)


def export_decoder(
    weights: str | os.PathLike[str], out: str | os.PathLike[str], num_points: int | None = None
) -> Path:
    """Write the prompt encoder + mask decoder of `weights` to the ONNX file `out`."""
    model = decoder_model(load_mobile_sam(weights), sha256_file(weights), num_points)
    _write(model, Path(out))
    return Path(out)


def export_onnx(
    weights: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    num_points: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write `out_dir/mobile_sam_encoder.onnx` and `out_dir/mobile_sam_decoder.onnx`.

    Both models are built and checked before either file is written, so bad weights leave
    nothing behind; each file is replaced atomically."""
    say = progress or (lambda _message: None)
    say(f"reading {weights}")
    tensors = load_mobile_sam(weights)
    sha256 = sha256_file(weights)
    say("building and checking the encoder graph (opset 17)")
    encoder = encoder_model(tensors, sha256)
    say("building and checking the decoder graph")
    decoder = decoder_model(tensors, sha256, num_points)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for model, name in ((encoder, ENCODER_FILE), (decoder, DECODER_FILE)):
        path = folder / name
        size = _write(model, path)
        say(f"wrote {path} ({size / 2**20:.1f} MiB)")
        written.append(path)
    return written


def _write(model: onnx.ModelProto, path: Path) -> int:
    data = model.SerializeToString()
    with atomic_writer(path) as f:
        f.write(data)
    return len(data)
