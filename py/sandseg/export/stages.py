"""MobileSAM as one ONNX graph per encoder stage plus the prompt decoder, in the offload wire
format's boundary layout, so that a prefix of the encoder on one runtime composes with the
suffix on another (the package's own WGSL, onnxruntime, ...).

Stage `<stage>.onnx` (`patch_embed`, `layers.0` .. `layers.3`, `neck`; model/tiny_vit.py's
stages and boundaries):
  in   x (H, W, C): the channels-last float32 boundary tensor entering the stage
       (`BOUNDARIES[i]`; stage 0 takes the normalised, padded (1024, 1024, 3) image)
  out  y (H', W', C'): the boundary tensor leaving it (`BOUNDARIES[i + 1]`; the neck's is the
       (64, 64, 256) image embeddings)

Decoder `decoder.onnx`: `onnx_graph.decoder_model`'s inputs and outputs, except that
image_embeddings is channels-last (64, 64, 256), as the encoder's last stage leaves it.

`stage_graphs` exports them once per weights file into `<root>/<weights sha256>/v<N>/` and
reuses them after (a restart does not re-export).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import onnx

from ..weights import HostTensor, load_mobile_sam
from ..weights.files import atomic_writer, sha256_file
from ..weights.layout import STAGE_BOUNDARIES
from .builder import GraphBuilder, float_value
from .decoder import prompt_and_mask_decoder
from .encoder import STAGES, encoder_stage
from .onnx_graph import _model, _write
from .params import Params

# Boundary tensors, channels-last: BOUNDARIES[i] enters stage i, BOUNDARIES[i + 1] leaves it.
BOUNDARIES = STAGE_BOUNDARIES
DECODER = "decoder"
# Bump when the graphs change: cached exports of an older version are not reused.
EXPORT_VERSION = 1
_DONE = "complete.json"


def stage_model(
    tensors: Mapping[str, HostTensor], weights_sha256: str, index: int
) -> onnx.ModelProto:
    """Encoder stage `index` of STAGES: x BOUNDARIES[index] -> y BOUNDARIES[index + 1]."""
    if not 0 <= index < len(STAGES):
        raise ValueError(f"no encoder stage {index}; the stages are 0..{len(STAGES) - 1}")
    b = GraphBuilder()
    shape_in, shape_out = BOUNDARIES[index], BOUNDARIES[index + 1]
    x = b.reshape("x", (1, *shape_in))
    y = b.reshape(encoder_stage(Params(b, tensors), index, x), shape_out)
    b.output(y, "y")
    name = STAGES[index]
    graph = b.graph(
        f"mobile_sam_{name.replace('.', '_')}",
        [float_value("x", shape_in, f"channels-last boundary tensor entering {name}")],
        [float_value("y", shape_out, f"channels-last boundary tensor leaving {name}")],
    )
    return _model(graph, weights_sha256, f"MobileSAM (vit_t) image encoder stage {name}")


def boundary_decoder_model(
    tensors: Mapping[str, HostTensor], weights_sha256: str
) -> onnx.ModelProto:
    """Prompt encoder + mask decoder on channels-last (64, 64, 256) embeddings."""
    b = GraphBuilder()
    masks, iou = prompt_and_mask_decoder(
        Params(b, tensors),
        "image_embeddings",
        "point_coords",
        "point_labels",
        "mask_input",
        "has_mask_input",
        channels_last=True,
    )
    b.output(masks, "low_res_masks")
    b.output(iou, "iou_predictions")
    graph = b.graph(
        "mobile_sam_decoder_channels_last",
        [
            float_value("image_embeddings", BOUNDARIES[-1], "the encoder's output, (H, W, C)"),
            float_value("point_coords", (1, "num_points", 2), "(x, y) in 1024-space"),
            float_value("point_labels", (1, "num_points"), "1 fg, 0 bg, 2/3 box, -1 padding"),
            float_value("mask_input", (1, 1, 256, 256), "previous low-res logits"),
            float_value("has_mask_input", (1,), "1 uses mask_input, 0 ignores it"),
        ],
        [
            float_value("low_res_masks", (1, 4, 256, 256), "logits; 0 single, 1..3 multimask"),
            float_value("iou_predictions", (1, 4), "predicted IoU of each low-res mask"),
        ],
    )
    return _model(graph, weights_sha256, "MobileSAM (vit_t) prompt encoder + mask decoder")


@dataclass(frozen=True)
class StageGraphs:
    """The exported files of one weights file: `path(name)` for a stage or DECODER."""

    folder: Path
    weights_sha256: str

    def path(self, name: str) -> Path:
        if name != DECODER and name not in STAGES:
            raise ValueError(f"no graph {name!r}; there are {[*STAGES, DECODER]}")
        return self.folder / f"{name}.onnx"


def stage_graphs(
    weights: str | os.PathLike[str],
    root: str | os.PathLike[str],
    progress: Callable[[str], None] | None = None,
    tensors: Mapping[str, HostTensor] | None = None,
) -> StageGraphs:
    """The stage and decoder graphs of `weights`, exported into `root` on first use and reused
    after, keyed by the weights' sha256. `tensors`: the weights already loaded, if at hand."""
    say = progress or (lambda _message: None)
    sha256 = sha256_file(weights)
    graphs = StageGraphs(Path(root) / sha256 / f"v{EXPORT_VERSION}", sha256)
    if _complete(graphs):
        say(f"reusing the ONNX stage graphs in {graphs.folder}")
        return graphs
    say(f"exporting the ONNX stage graphs of {Path(weights).name} into {graphs.folder}")
    tensors = tensors if tensors is not None else load_mobile_sam(weights)
    graphs.folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(STAGES):
        _write(stage_model(tensors, sha256, index), graphs.path(name))
    _write(boundary_decoder_model(tensors, sha256), graphs.path(DECODER))
    # Written last: a folder without it (an export cut short) is exported again.
    with atomic_writer(graphs.folder / _DONE) as f:
        f.write(json.dumps({"weights_sha256": sha256, "version": EXPORT_VERSION}).encode())
    return graphs


def _complete(graphs: StageGraphs) -> bool:
    done = graphs.folder / _DONE
    if not done.is_file():
        return False
    record = json.loads(done.read_text(encoding="utf-8"))
    names = [*STAGES, DECODER]
    return record == {"weights_sha256": graphs.weights_sha256, "version": EXPORT_VERSION} and all(
        graphs.path(name).is_file() for name in names
    )
