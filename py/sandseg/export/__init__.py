"""ONNX export of the package's MobileSAM graph (needs the `onnx` extra: onnx and numpy).

An edge module: the core never imports it. See `onnx_graph` for the models' inputs and
outputs."""

from .builder import OPSET
from .onnx_graph import (
    DECODER_FILE,
    ENCODER_FILE,
    decoder_model,
    encoder_model,
    export_decoder,
    export_encoder,
    export_onnx,
)
from .stages import (
    BOUNDARIES,
    DECODER,
    STAGES,
    StageGraphs,
    boundary_decoder_model,
    stage_graphs,
    stage_model,
)

__all__ = [
    "BOUNDARIES",
    "DECODER",
    "DECODER_FILE",
    "ENCODER_FILE",
    "OPSET",
    "STAGES",
    "StageGraphs",
    "boundary_decoder_model",
    "decoder_model",
    "encoder_model",
    "export_decoder",
    "export_encoder",
    "export_onnx",
    "stage_graphs",
    "stage_model",
]
