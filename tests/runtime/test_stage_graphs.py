"""The stage graphs of `sandseg.export.stages`: valid opset-17 models in the wire format's
boundary layout (the model's own stage boundaries), exported once per weights file and
reused from the cache after."""

from __future__ import annotations

import onnx

from sandseg.export import BOUNDARIES, DECODER, OPSET, STAGES, stage_graphs
from sandseg.server.engine import _stage_infos
from sandseg.weights.files import sha256_file


def _shape(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_the_stages_are_the_models_stages_with_its_boundaries(predictor, graphs) -> None:
    infos = _stage_infos(predictor)
    assert list(STAGES) == [info.name for info in infos]
    assert list(BOUNDARIES) == [infos[0].input_shape, *(info.output_shape for info in infos)]
    for index, name in enumerate(STAGES):
        model = onnx.load(graphs.path(name))
        onnx.checker.check_model(model, full_check=True)
        assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
        assert [(v.name, _shape(v)) for v in model.graph.input] == [
            ("x", list(infos[index].input_shape))
        ]
        assert [(v.name, _shape(v)) for v in model.graph.output] == [
            ("y", list(infos[index].output_shape))
        ]


def test_the_decoder_takes_channels_last_embeddings(graphs, converted_weights) -> None:
    model = onnx.load(graphs.path(DECODER))
    inputs = {v.name: _shape(v) for v in model.graph.input}
    assert inputs["image_embeddings"] == [64, 64, 256]
    assert inputs["point_coords"] == [1, "num_points", 2]
    props = {p.key: p.value for p in model.metadata_props}
    assert props["weights_sha256"] == sha256_file(converted_weights) == graphs.weights_sha256


def test_a_second_call_reuses_the_export(graphs, converted_weights, onnx_cache) -> None:
    said: list[str] = []
    before = {name: graphs.path(name).stat().st_mtime_ns for name in [*STAGES, DECODER]}
    again = stage_graphs(converted_weights, onnx_cache, said.append)
    assert again == graphs
    assert said == [f"reusing the ONNX stage graphs in {graphs.folder}"]
    assert {name: graphs.path(name).stat().st_mtime_ns for name in before} == before
    assert graphs.folder.parent.name == graphs.weights_sha256


def test_an_export_cut_short_is_exported_again(converted_weights, tmp_path) -> None:
    graphs = stage_graphs(converted_weights, tmp_path)
    graphs.path("layers.2").unlink()  # as if the process died while writing
    said: list[str] = []
    again = stage_graphs(converted_weights, tmp_path, said.append)
    assert said[0].startswith("exporting the ONNX stage graphs")
    onnx.checker.check_model(onnx.load(again.path("layers.2")))


def test_the_core_imports_no_runtime() -> None:
    """onnxruntime, onnx and numpy are edge dependencies: loading the core loads none of them
    (DESIGN.md: the core runs in Pyodide with nothing installed)."""
    import subprocess
    import sys

    core = "sandseg.gpu, sandseg.ops, sandseg.model, sandseg.weights, sandseg.offload"
    edge = "{'onnx', 'onnxruntime', 'numpy', 'sandseg.runtime', 'sandseg.export'}"
    code = f"import sys, {core}, sandseg.predictor; print(sorted({edge} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
